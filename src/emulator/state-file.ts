/**
 * The emulator's state file (`eventsubd emulate --state FILE`): what a restart must keep for the clients of
 * the emulated Twitch to go on working — the registered apps and their redirect URLs, the tokens issued, the
 * users' grants and consents, the subscriptions (with their secrets, to sign deliveries) and the users of the
 * directory. Short-lived things (authorization and device codes, faults, counters) are not kept.
 *
 * Written atomically (temporary file, fsync, rename; mode 0600, it holds secrets of the emulated apps) after
 * every change, one write at a time: changes made while a write runs are written by the next one.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { EmulatorState } from './state.js';
import type { EmulatorClient } from './types.js';

const FORMAT = 'eventsubd-emulator-state';

const Snapshot = z.object({
  format: z.literal(FORMAT),
  version: z.literal(1),
  clients: z.array(z.object({ clientId: z.string().min(1), clientSecret: z.string().min(1), redirectUris: z.array(z.string()).optional() })),
  tokens: z.array(
    z.object({
      value: z.string().min(1),
      clientId: z.string(),
      kind: z.enum(['app', 'user']),
      userId: z.string().optional(),
      login: z.string().optional(),
      scopes: z.array(z.string()),
      expiresAt: z.number(),
      invalid: z.boolean(),
    }),
  ),
  grants: z.array(z.object({ clientId: z.string(), userId: z.string(), login: z.string(), scopes: z.array(z.string()) })),
  consents: z.array(
    z.object({
      clientId: z.string(),
      consent: z.union([z.literal('deny'), z.object({ userId: z.string(), login: z.string(), scopes: z.array(z.string()).optional() })]),
    }),
  ),
  subscriptions: z.array(
    z.object({
      clientId: z.string(),
      secret: z.string(),
      wire: z.object({
        id: z.string(),
        status: z.string(),
        type: z.string(),
        version: z.string(),
        condition: z.record(z.string(), z.string()),
        created_at: z.string(),
        transport: z.union([z.object({ method: z.literal('webhook'), callback: z.string() }), z.object({ method: z.literal('conduit'), conduit_id: z.string() })]),
        cost: z.number(),
      }),
    }),
  ),
  users: z.array(z.object({ id: z.string().min(1), login: z.string().min(1), display_name: z.string() })),
  /** Absent in files written before conduits existed. */
  conduits: z
    .array(
      z.object({
        id: z.string().min(1),
        clientId: z.string(),
        shards: z.array(z.object({ id: z.string(), status: z.string(), webhook: z.object({ callback: z.string(), secret: z.string() }).optional() })),
      }),
    )
    .optional(),
});
export type StateSnapshot = z.infer<typeof Snapshot>;

/** What the state file keeps of `state`. */
export function snapshotOf(state: EmulatorState): StateSnapshot {
  return {
    format: FORMAT,
    version: 1,
    clients: state.clients.map((c) => ({ ...c, redirectUris: [...(c.redirectUris ?? [])] })),
    tokens: state.tokenRecords().map((t) => ({ ...t, scopes: [...t.scopes] })),
    grants: state.grants.records(),
    consents: state.grants.consents().map(({ clientId, consent }) =>
      consent === 'deny' ? { clientId, consent } : { clientId, consent: { ...consent, scopes: consent.scopes ? [...consent.scopes] : undefined } },
    ),
    subscriptions: state.subscriptionsOf(undefined).map((s) => ({ clientId: s.clientId, secret: s.secret, wire: structuredClone(s.wire) })),
    users: state.registeredUsers(),
    // A WebSocket session does not outlive the emulator: only webhook shard transports are kept.
    conduits: [...state.conduits.values()].map((c) => ({
      id: c.id,
      clientId: c.clientId,
      shards: c.shards.map((sh) => ({
        id: sh.id,
        status: sh.transport?.method === 'websocket' ? 'websocket_disconnected' : sh.status,
        ...(sh.transport?.method === 'webhook' ? { webhook: { callback: sh.transport.callback, secret: sh.transport.secret } } : {}),
      })),
    })),
  };
}

/**
 * Reads the state file; undefined when it does not exist yet.
 * @throws ConfigError (exit 78, naming --state) when it cannot be read or is not a state file.
 */
export function readStateFile(path: string): StateSnapshot | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`--state: cannot read ${path}: ${(err as Error).message}`, { setting: '--state', cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--state: ${path} is corrupt (not JSON): fix it, or delete it to start afresh`, { setting: '--state', cause: err });
  }
  const parsed = Snapshot.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`--state: ${path} is not an emulator state file (${issue.path.join('.') || 'top level'}: ${issue.message}): fix it, or delete it to start afresh`, {
      setting: '--state',
    });
  }
  return parsed.data;
}

/**
 * Puts a snapshot back into a fresh state. `clients` (the options') come first and win over the file's
 * clients of the same ID; a client without an ID only brings its redirect URLs to the file's first client.
 */
export function restoreState(state: EmulatorState, snapshot: StateSnapshot | undefined, clients: Partial<EmulatorClient>[] | undefined): void {
  const fromFile = new Map((snapshot?.clients ?? []).map((c) => [c.clientId, c]));
  for (const given of clients ?? []) {
    const key = given.clientId ?? snapshot?.clients[0]?.clientId;
    const saved = key === undefined ? undefined : fromFile.get(key);
    state.addClient({ ...saved, ...definedOnly(given) });
    if (saved) fromFile.delete(saved.clientId);
  }
  for (const c of fromFile.values()) state.addClient(c);
  if (state.clients.length === 0) state.addClient({});
  if (!snapshot) return;
  for (const t of snapshot.tokens) state.restoreToken(t);
  for (const g of snapshot.grants) state.grants.grant(g.clientId, { userId: g.userId, login: g.login }, g.scopes);
  for (const { clientId, consent } of snapshot.consents) state.grants.setConsent(clientId, consent);
  for (const s of snapshot.subscriptions) state.addSubscription({ wire: s.wire, clientId: s.clientId, secret: s.secret });
  for (const u of snapshot.users) state.registerUser(u);
  for (const c of snapshot.conduits ?? []) {
    const shards = c.shards.map((sh) => ({
      id: sh.id,
      status: sh.status,
      ...(sh.webhook ? { transport: { method: 'webhook' as const, ...sh.webhook } } : {}),
    }));
    state.conduits.set(c.id, { id: c.id, clientId: c.clientId, shards });
  }
}

function definedOnly(client: Partial<EmulatorClient>): Partial<EmulatorClient> {
  return Object.fromEntries(Object.entries(client).filter(([, v]) => v !== undefined));
}

/** Writes the state after changes, one atomic write at a time; `flush()` waits for the last one. */
export class StateFileWriter {
  readonly #path: string;
  readonly #state: EmulatorState;
  readonly #logger: Logger;
  #running: Promise<void> | undefined;
  #again = false;
  #written = '';

  constructor(options: { path: string; state: EmulatorState; logger: Logger }) {
    this.#path = options.path;
    this.#state = options.state;
    this.#logger = options.logger;
  }

  /** Notes a change: a write starts now, or after the one running. */
  schedule(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => (this.#running = undefined));
  }

  /** Resolves once every change noted so far is on disk (or its write failed and was logged). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #loop(): Promise<void> {
    // Let the change that scheduled this write finish (a request makes several) before the snapshot.
    await Promise.resolve();
    do {
      this.#again = false;
      const text = JSON.stringify(snapshotOf(this.#state), null, 1) + '\n';
      if (text === this.#written) continue;
      try {
        await writeFileAtomic(this.#path, text);
        this.#written = text;
      } catch (err) {
        this.#logger.error('Cannot write the emulator state file (--state)', { path: this.#path, err: err instanceof Error ? err : new Error(String(err)) });
      }
    } while (this.#again);
  }
}
