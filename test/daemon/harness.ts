/**
 * Fixtures for the daemon's end-to-end tests: an in-process emulator that delivers its verification
 * challenges to the daemon, the daemon itself as a child process (`node dist/main.js run`) on a loopback
 * port, and helpers to poll it and read its journal (messages are in messages.ts). Build first:
 * `npx tsc -p tsconfig.build.json` (the child runs dist/).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { verifiedJson } from '../../src/journal/format.js';
import type { JournalRecord } from '../../src/journal/types.js';
import { BIN, emulatorSettings, ROOT, runCli, tempDir, type CliResult } from '../helpers/cli.js';

export const WEBHOOK_SECRET = 'daemon-e2e-secret-0123456789';
export const CALLBACK = 'https://events.example.com/twitch/eventsub';
export const WEBHOOK_PATH = '/twitch/eventsub';
export const BROADCASTER = '12345';

export interface DesiredEntry {
  type: string;
  version: string;
  condition: Record<string, string>;
}

/** The default subscriptions file: two entries. */
export const DEFAULT_SUBSCRIPTIONS: readonly DesiredEntry[] = Object.freeze([
  { type: 'stream.online', version: '1', condition: { broadcaster_user_id: BROADCASTER } },
  { type: 'stream.offline', version: '1', condition: { broadcaster_user_id: BROADCASTER } },
]);

/** Resolves with a port that was free a moment ago on 127.0.0.1 (the emulator needs it before the daemon starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Everything one daemon needs: emulator, listen port, state dir, subscriptions file, an HTTP agent. */
export interface Fixture {
  emulator: Emulator;
  port: number;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `origin` + WEBHOOK_PATH */
  webhookUrl: string;
  stateDir: string;
  subscriptionsFile: string;
  agent: Agent;
  /** The daemon's environment (exactly this, plus PATH), with `extra` on top. */
  env(extra?: Record<string, string>): Record<string, string>;
  writeSubscriptions(entries: readonly DesiredEntry[]): void;
  close(): Promise<void>;
}

/**
 * Starts the emulator (delivering to a free loopback port that the daemon will listen on), writes the
 * subscriptions file (default DEFAULT_SUBSCRIPTIONS) and makes a fresh state dir. `close()` undoes it all.
 */
export async function startFixture(
  options: {
    subscriptions?: readonly DesiredEntry[];
    /** Emulator options beyond where it listens and delivers. */
    emulator?: Omit<EmulatorOptions, 'host' | 'port' | 'deliverTo' | 'dispatcher'>;
  } = {},
): Promise<Fixture> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const agent = new Agent({ connections: 64, keepAliveTimeout: 1_000 });
  const emulator = await startEmulator({ ...options.emulator, host: '127.0.0.1', port: 0, deliverTo: origin, dispatcher: agent });
  const dir = tempDir('eventsubd-daemon-');
  const stateDir = join(dir.path, 'state');
  const subscriptionsFile = join(dir.path, 'subscriptions.json');
  const writeSubscriptions = (entries: readonly DesiredEntry[]): void =>
    writeFileSync(subscriptionsFile, JSON.stringify({ subscriptions: entries }, null, 2));
  writeSubscriptions(options.subscriptions ?? DEFAULT_SUBSCRIPTIONS);
  return {
    emulator,
    port,
    origin,
    webhookUrl: origin + WEBHOOK_PATH,
    stateDir,
    subscriptionsFile,
    agent,
    env: (extra = {}) => ({
      ...emulatorSettings(emulator),
      EVENTSUB_SECRET: WEBHOOK_SECRET,
      EVENTSUB_CALLBACK_URL: CALLBACK,
      EVENTSUBD_LISTEN: `127.0.0.1:${port}`,
      EVENTSUBD_STATE_DIR: stateDir,
      EVENTSUBD_SUBSCRIPTIONS: subscriptionsFile,
      EVENTSUBD_LOG_LEVEL: 'info',
      // The default (every 10 minutes, on the clock) would now and then run a sync in the middle of a test
      // that expects a sync for another reason (revocation, SIGHUP): once a year instead.
      EVENTSUBD_RECONCILE_CRON: '0 0 1 1 *',
      ...extra,
    }),
    writeSubscriptions,
    async close() {
      await emulator.close();
      await agent.close().catch(() => {});
      dir.cleanup();
    },
  };
}

/**
 * One more replica beside `base` (several replicas on one Redis): the same emulator, client and subscriptions file,
 * its own port and state directory.
 */
export async function replicaFixture(base: Fixture, name: string): Promise<Fixture> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const stateDir = join(base.stateDir, '..', `state-${name}`);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  return {
    ...base,
    port,
    origin,
    webhookUrl: origin + WEBHOOK_PATH,
    stateDir,
    env: (extra = {}) => base.env({ EVENTSUBD_LISTEN: `127.0.0.1:${port}`, EVENTSUBD_STATE_DIR: stateDir, ...extra }),
    // The emulator and the directory are the base fixture's to close.
    close: async () => {},
  };
}

/** One parsed JSON log line of the daemon's stderr. */
export type LogLine = { level: string; msg: string } & Record<string, unknown>;

/** `node dist/main.js run` as a child process, with its stderr kept. */
export class DaemonProcess {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  /** Settles when the process has exited: its code, or null and the signal that killed it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #fixture: Fixture;

  constructor(fixture: Fixture, extraEnv: Record<string, string> = {}) {
    this.#fixture = fixture;
    this.child = spawn(process.execPath, [BIN, 'run'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...fixture.env(extraEnv) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Every JSON log line so far (a line that is not JSON is a test failure: logs are one JSON object per line). */
  logs(): LogLine[] {
    return this.stderr
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          throw new Error(`Daemon stderr line is not JSON: ${l}`);
        }
      });
  }

  /** Waits for the READY log line and `/readyz` 200; fails early (with the stderr) if the daemon exits. */
  async waitReady(timeoutMs = 10_000): Promise<void> {
    await waitFor(
      'the daemon to be ready',
      async () => {
        if (!this.running) throw new Error(`The daemon exited before it was ready:\n${this.stderr}`);
        if (!this.logs().some((l) => l.msg === 'eventsubd is ready')) return false;
        return (await httpGet(this.#fixture, '/readyz')).status === 200;
      },
      { timeoutMs },
    );
  }

  /** Sends `signal` and resolves with the exit code (fails after `timeoutMs`, killing the process). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (!this.running) return (await this.exited).code;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const { code, signal: killedBy } = await this.exited;
    clearTimeout(timer);
    if (killedBy === 'SIGKILL') throw new Error(`The daemon did not exit within ${timeoutMs} ms of ${signal}:\n${this.stderr}`);
    return code;
  }

  /** SIGKILL (no cleanup at all, as in a crash) and waits for the exit. */
  async kill9(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts a daemon and waits until it is ready. Registers nothing: the caller stops it (see `useFixture`). */
export async function startDaemon(fixture: Fixture, extraEnv: Record<string, string> = {}): Promise<DaemonProcess> {
  const d = new DaemonProcess(fixture, extraEnv);
  try {
    await d.waitReady();
  } catch (err) {
    await d.kill9();
    throw err;
  }
  return d;
}

/**
 * A fixture for one test, and `start()` for its daemons; after the test, every daemon still running is
 * killed, then the fixture is closed (in that order, so no daemon outlives its state dir).
 */
export async function useFixture(
  t: TestContext,
  options: Parameters<typeof startFixture>[0] = {},
): Promise<{ f: Fixture; start: (extraEnv?: Record<string, string>) => Promise<DaemonProcess> }> {
  const f = await startFixture(options);
  const daemons: DaemonProcess[] = [];
  t.after(async () => {
    for (const d of daemons) await d.kill9();
    await f.close();
  });
  return {
    f,
    start: async (extraEnv = {}) => {
      const d = await startDaemon(f, extraEnv);
      daemons.push(d);
      return d;
    },
  };
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than false/undefined/null, which is
 * returned. A thrown error ends the wait at once. @throws Error naming `what` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | false | undefined | null> | T | false | undefined | null,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== false && v !== undefined && v !== null) return v;
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last instanceof Error ? last.message : JSON.stringify(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** An error `waitFor` keeps polling through (a connection refused while the daemon starts). */
class TransientError extends Error {}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET (or another method) on the daemon; a connection error is a TransientError. */
export async function httpGet(fixture: Fixture, path: string, method = 'GET'): Promise<HttpAnswer> {
  let res;
  try {
    res = await request(fixture.origin + path, { method: method as 'GET', dispatcher: fixture.agent, headersTimeout: 5_000 });
  } catch (err) {
    throw new TransientError(`${method} ${path} failed: ${(err as Error).message}`);
  }
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** GET /status, parsed. */
export async function status(fixture: Fixture): Promise<StatusDoc> {
  const res = await httpGet(fixture, '/status');
  if (res.status !== 200) throw new Error(`/status answered ${res.status}`);
  return JSON.parse(res.body) as StatusDoc;
}

/** The parts of the daemon's /status document the tests read. */
export interface StatusDoc {
  token: { state: string; expires_at: string | null; validated_at: string | null; error: { code: string; message: string } | null };
  sync: {
    managed: boolean;
    reason?: string;
    result: string | null;
    finished_at?: string | null;
    counts?: Record<string, number> | null;
    blocked?: Array<{ id: string; type: string; status: string }>;
    applied?: { created: number; adopted: number; recreated: number; deleted: number; failed: number } | null;
    waiting_for_authorization?: number;
    error?: { code: string } | null;
  };
  authorization: {
    missing: Array<{ user_id: string; fields: string[]; scopes: string[]; subscriptions: string[]; command: string; retry_at: string | null }>;
    revoked: Array<{ user_id: string; login: string | null; revoked_at: string }>;
  };
  journal: { head: number; first_seq: number; writable: boolean; appends: number; fsyncs: number };
  delivery: Record<string, unknown>;
  receiver: { in_flight: number; reading: number; requests: number; too_slow: number } | null;
}

/**
 * Every complete record in `STATE_DIR/journal/*.jsonl`, read straight from the files (a torn last line is
 * skipped), each checked against its checksum (a line that fails fails the test).
 */
export function readJournal(stateDir: string): JournalRecord[] {
  const dir = join(stateDir, 'journal');
  if (!existsSync(dir)) return [];
  const out: JournalRecord[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    const text = readFileSync(join(dir, name), 'utf8');
    const lines = text.split('\n');
    if (!text.endsWith('\n')) lines.pop(); // torn tail of a crash: not a record
    for (const line of lines) {
      if (line.length === 0) continue;
      const json = verifiedJson(line);
      assert.ok(json, `a journal line in ${name} fails its checksum: ${line.slice(0, 120)}`);
      out.push(JSON.parse(json) as JournalRecord);
    }
  }
  return out;
}

/** Asserts the fixture's journal holds exactly these message ids, in this order. */
export function assertJournalIds(fixture: Fixture, expected: readonly string[]): void {
  assert.deepEqual(
    readJournal(fixture.stateDir).map((r) => r.message_id),
    expected,
  );
}

/** `eventsubd events tail ARGS` against the fixture's state dir. */
export function eventsTail(fixture: Fixture, args: readonly string[]): Promise<CliResult> {
  return runCli(['events', 'tail', ...args], { env: fixture.env() });
}

/** The JSON lines of stdout, parsed. */
export function jsonLines<T = JournalRecord>(stdout: string): T[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as T);
}

/** The emulator's DELETE requests on Helix EventSub so far. */
export function deletes(emulator: Emulator): number {
  return emulator.stats.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/eventsub/subscriptions')).length;
}

/** Waits until every subscription of the file is enabled in the emulator (the daemon answered the challenges). */
export async function waitEnabled(fixture: Fixture, count: number, timeoutMs = 10_000): Promise<ReturnType<Emulator['subscriptions']>> {
  return waitFor(
    `${count} enabled subscriptions in the emulator`,
    () => {
      const subs = fixture.emulator.subscriptions();
      return subs.length === count && subs.every((s) => s.status === 'enabled') ? subs : false;
    },
    { timeoutMs },
  );
}

/** No webhook secret, client secret or cached token value in `text`. */
export function assertNoSecrets(fixture: Fixture, text: string, where: string): void {
  const tokenFile = join(fixture.stateDir, 'token.json');
  const token = existsSync(tokenFile) ? (JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string }).access_token : undefined;
  for (const secret of [WEBHOOK_SECRET, fixture.emulator.clients[0]!.clientSecret, token]) {
    if (secret !== undefined && text.includes(secret)) throw new Error(`${where} leaks a secret`);
  }
}

/** The value of one sample of a Prometheus text exposition, e.g. `metric(body, 'x_total', '{outcome="a"}')`. */
export function metric(exposition: string, name: string, labels = ''): number | undefined {
  const line = exposition.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
