/**
 * The daemon in-process (src/daemon/daemon.ts): real journal, receiver and forwarder on loopback, an injected
 * clock, a recording notifier and captured logs. The emulator stands in for Twitch's token endpoint. Child
 * processes are for signals, exit codes and kill -9 (harness.ts); everything else is tested here.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { loadConfig } from '../../src/config/settings.js';
import { Daemon } from '../../src/daemon/daemon.js';
import type { Notifier } from '../../src/daemon/notify.js';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import type { JournalRecord } from '../../src/journal/types.js';
import { captureLogs, type LogCapture } from '../auth/fakes.js';
import { emulatorSettings } from '../helpers/cli.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { signedRequest } from '../receiver/helpers.js';
import { freePort } from './harness.js';

export const SECRET = 'in-process-secret-0123456789';
export const WEBHOOK_PATH = '/twitch/eventsub';

/** Every `notify()` call, in order; `next()` waits for one that matches. */
export class RecordingNotifier implements Notifier {
  readonly sent: Array<Record<string, string>> = [];
  readonly #waiters: Array<{ match: (s: Record<string, string>) => boolean; resolve: (s: Record<string, string>) => void }> = [];
  closed = false;
  async notify(state: Record<string, string>): Promise<void> {
    this.sent.push({ ...state });
    for (const w of [...this.#waiters]) {
      if (!w.match(state)) continue;
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve(state);
    }
  }
  /** Resolves with the first notification from now on for which `match` is true. */
  next(match: (state: Record<string, string>) => boolean): Promise<Record<string, string>> {
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }
  close(): void {
    this.closed = true;
  }
}

/** A loopback HTTP server that answers 204 and keeps every body it receives, with a wait for the n-th. */
export class ForwardSink {
  readonly bodies: string[] = [];
  readonly #waiters: Array<{ n: number; resolve: () => void }> = [];
  readonly server: Server;
  constructor() {
    this.server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.bodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(204).end();
        for (const w of this.#waiters.filter((x) => this.bodies.length >= x.n)) w.resolve();
      });
    });
  }
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }
  /** Resolves once `n` bodies have arrived. */
  received(n: number): Promise<void> {
    if (this.bodies.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }
  records(): JournalRecord[] {
    return this.bodies.map((b) => JSON.parse(b) as JournalRecord);
  }
}

export interface InProcessDaemon {
  daemon: Daemon;
  clock: FakeClock;
  notifier: RecordingNotifier;
  logs: LogCapture;
  emulator: Emulator;
  stateDir: string;
  agent: Agent;
  /** POSTs a notification signed as Twitch signs it, timestamped by the fake clock; resolves with the status. */
  deliver(body: string, options?: { messageId?: string; type?: string }): Promise<number>;
}

let counter = 0;

/**
 * Starts the emulator and a daemon on a loopback port with `env` on top of the defaults. With `subscriptions`,
 * they are written to a subscriptions file the daemon manages, and the emulator delivers its verification
 * challenges to the daemon.
 */
export async function startInProcessDaemon(
  t: TestContext,
  env: Record<string, string> = {},
  options: {
    subscriptions?: ReadonlyArray<{ type: string; version: string; condition: Record<string, string> }>;
    /** This state directory (removed at the end of the test) rather than a new one: to start again where a closed daemon left off. */
    stateDir?: string;
    /** Wraps how the Twitch side gets its HTTP agent (to hold its start back, say). */
    dispatcher?: (agent: Agent) => Promise<Agent>;
  } = {},
): Promise<InProcessDaemon> {
  const port = await freePort();
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0, deliverTo: `http://127.0.0.1:${port}` });
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'eventsubd-inproc-'));
  const managed: Record<string, string> = {};
  if (options.subscriptions) {
    managed.EVENTSUBD_SUBSCRIPTIONS = join(stateDir, '..', `${stateDir.split('/').pop()}-subscriptions.json`);
    writeFileSync(managed.EVENTSUBD_SUBSCRIPTIONS, JSON.stringify({ subscriptions: options.subscriptions }));
    t.after(() => rmSync(managed.EVENTSUBD_SUBSCRIPTIONS!, { force: true }));
  }
  const agent = new Agent({ connections: 32 });
  const clock = new FakeClock(Date.now());
  const notifier = new RecordingNotifier();
  const logs = captureLogs();
  const config = loadConfig({
    ...emulatorSettings(emulator),
    EVENTSUB_SECRET: SECRET,
    EVENTSUB_CALLBACK_URL: `https://events.example.com${WEBHOOK_PATH}`,
    EVENTSUBD_LISTEN: `127.0.0.1:${port}`,
    EVENTSUBD_STATE_DIR: stateDir,
    ...managed,
    ...env,
  });
  const started: { daemon?: Daemon } = {};
  t.after(async () => {
    await started.daemon?.close();
    await agent.close();
    await emulator.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const daemon = (started.daemon = await Daemon.start({
    config: config as typeof config & { clientId: string },
    clock,
    logger: logs.logger,
    notifier,
    dispatcher: options.dispatcher ? () => options.dispatcher!(agent) : async () => agent,
    pid: process.pid,
    uid: process.getuid?.(),
  }));
  const url = daemon.url;
  const deliver = async (body: string, options: { messageId?: string; type?: string } = {}): Promise<number> => {
    const signed = signedRequest(clock, { body, secret: SECRET, messageId: options.messageId ?? `in-process-${++counter}`, type: options.type });
    const res = await request(url + WEBHOOK_PATH, {
      method: 'POST',
      dispatcher: agent,
      headers: signed.headers as Record<string, string>,
      body: signed.body,
    });
    await res.body.dump();
    return res.statusCode;
  };
  return { daemon, clock, notifier, logs, emulator, stateDir, agent, deliver };
}
