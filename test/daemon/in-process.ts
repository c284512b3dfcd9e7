/**
 * The daemon in-process (src/daemon/daemon.ts): real journal, receiver and forwarder on loopback, an injected
 * clock, a recording notifier and captured logs. The emulator stands in for Twitch's token endpoint. Child
 * processes are for signals, exit codes and kill -9 (harness.ts); everything else is tested here.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
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
import { FakeClock } from '../helpers/fake-clock.js';
import { signedRequest } from '../receiver/helpers.js';

export const SECRET = 'in-process-secret-0123456789';
export const WEBHOOK_PATH = '/twitch/eventsub';

/** Every `notify()` call, in order. */
export class RecordingNotifier implements Notifier {
  readonly sent: Array<Record<string, string>> = [];
  closed = false;
  async notify(state: Record<string, string>): Promise<void> {
    this.sent.push({ ...state });
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

/** Starts the emulator (token endpoint only) and a daemon on 127.0.0.1:0 with `env` on top of the defaults. */
export async function startInProcessDaemon(t: TestContext, env: Record<string, string> = {}): Promise<InProcessDaemon> {
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
  const stateDir = mkdtempSync(join(tmpdir(), 'eventsubd-inproc-'));
  const agent = new Agent({ connections: 32 });
  const clock = new FakeClock(Date.now());
  const notifier = new RecordingNotifier();
  const logs = captureLogs();
  const client = emulator.clients[0]!;
  const config = loadConfig({
    TWITCH_CLIENT_ID: client.clientId,
    TWITCH_CLIENT_SECRET: client.clientSecret,
    TWITCH_AUTH_URL: emulator.authUrl,
    TWITCH_API_URL: emulator.apiUrl,
    EVENTSUB_SECRET: SECRET,
    EVENTSUB_CALLBACK_URL: `https://events.example.com${WEBHOOK_PATH}`,
    EVENTSUBD_LISTEN: '127.0.0.1:0',
    EVENTSUBD_STATE_DIR: stateDir,
    ...env,
  });
  let daemon: Daemon | undefined;
  t.after(async () => {
    await daemon?.close();
    await agent.close();
    await emulator.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  daemon = await Daemon.start({
    config: config as typeof config & { clientId: string },
    clock,
    logger: logs.logger,
    notifier,
    dispatcher: agent,
    pid: process.pid,
    uid: process.getuid?.(),
  });
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
