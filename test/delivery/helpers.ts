import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifiedJson } from '../../src/journal/format.js';
import type { TestContext } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import type { JournalEntry } from '../../src/journal/types.js';
import type { FakeClock } from '../helpers/fake-clock.js';
import { onSleep, untilTurn } from '../helpers/wait.js';
import { segmentText } from '../journal/helpers.js';

/** Every state directory made here, removed once more when the process exits. */
const stateDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh state directory, removed after the test. Hooks run in the order they were added, so a component the
 * test closes in a later hook (a forwarder saving its cursor) may still write into it, or create it again:
 * what is left then goes when the process exits.
 */
export function tempStateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-delivery-'));
  stateDirs.add(dir);
  t.after(() => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Still being written: removed at exit.
    }
  });
  return dir;
}

/** A real journal in `<stateDir>/journal`, closed after the test. */
export async function openJournal(t: TestContext, stateDir: string, clock: FakeClock): Promise<Journal> {
  const journal = await Journal.open({ dir: join(stateDir, 'journal'), clock });
  t.after(() => journal.close());
  return journal;
}

/** A notification numbered `i`; `pad` characters of filler make it bigger. Quotes, unicode and a newline test the bytes. */
export function entry(i: number, pad = 0): JournalEntry {
  return {
    message_id: `msg-${i}`,
    message_type: 'notification',
    received_at: '2026-11-24T10:00:00.000Z',
    subscription: { id: 'sub-1', type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1234', moderator_user_id: '1234' } },
    event: { user_id: String(1000 + i), user_name: `caf\u00e9 \u2603 "viewer" ${i}\n`, filler: 'x'.repeat(pad) },
  };
}

/** Appends entries `from`..`to` (inclusive), `batch` at a time concurrently (one group commit each). */
export async function appendRange(journal: Journal, from: number, to: number, options: { pad?: number; batch?: number } = {}): Promise<void> {
  const batch = options.batch ?? 100;
  for (let start = from; start <= to; start += batch) {
    const end = Math.min(to, start + batch - 1);
    const appends: Promise<unknown>[] = [];
    for (let i = start; i <= end; i++) appends.push(journal.append(entry(i, options.pad ?? 0)));
    await Promise.all(appends);
  }
}

/** The record JSON of every journal line in `<stateDir>/journal` (checksum field and newline off), in seq order. */
export function journalLines(stateDir: string): string[] {
  const dir = join(stateDir, 'journal');
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
    .flatMap((n) => segmentText(join(dir, n)).split('\n').filter((l) => l.length > 0))
    .map((line) => verifiedJson(line) ?? `corrupt: ${line}`);
}

/**
 * Waits until `cond` holds; fails after `timeoutMs` with `what`. The forwarder and the stream announce no
 * event for their counters, so this is the last resort: `cond` is checked on every turn of the event loop
 * (no timed sleep). Where an event exists (a client's 'message', a sleep on the clock), wait on that instead.
 */
export function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  return untilTurn(cond, what, timeoutMs);
}

/** One request as the test target saw it. */
export interface Received {
  seq: number;
  messageId: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * A local HTTP target on 127.0.0.1. `respond` decides each answer (return a status, or undefined to hold the
 * response in `held`); every request is recorded in `received`.
 */
export async function startTarget(
  t: TestContext,
  respond: (r: Received, index: number) => number | undefined,
  port = 0,
): Promise<{ url: string; port: number; received: Received[]; held: Map<number, ServerResponse>; server: Server }> {
  const received: Received[] = [];
  const held = new Map<number, ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        seq: Number(req.headers['eventsubd-seq']),
        messageId: String(req.headers['eventsubd-message-id']),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(r);
      const status = respond(r, received.length - 1);
      if (status === undefined) held.set(received.length - 1, res);
      else res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const actual = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${actual}/hook`, port: actual, received, held, server };
}

/**
 * Lets the code's short waits on `clock` (backoffs) pass, `stepMs` at a time, as soon as the code starts them;
 * a wait ending more than `horizonMs` ahead (a request timeout) is never reached this way. Driven by the code's
 * sleep() calls, not by real time; runs until the returned function is called.
 */
export function driveClock(clock: FakeClock, stepMs: number, horizonMs = 60_000): () => Promise<void> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stopWatching = onSleep(clock, () => wake?.());
  const loop = (async () => {
    while (!stopped) {
      const next = clock.nextWake();
      if (next !== undefined && next - clock.now() <= horizonMs) {
        await clock.advance(Math.min(stepMs, next - clock.now()));
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  })();
  return async () => {
    stopped = true;
    wake?.();
    stopWatching();
    await loop;
  };
}
