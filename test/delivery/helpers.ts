import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifiedJson } from '../../src/journal/format.js';
import type { TestContext } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import type { JournalEntry } from '../../src/journal/types.js';
import type { FakeClock } from '../helpers/fake-clock.js';

/** A fresh state directory, removed after the test. */
export function tempStateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-delivery-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
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
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter((l) => l.length > 0))
    .map((line) => verifiedJson(line) ?? `corrupt: ${line}`);
}

/** Polls `cond` (real time, every ms) until it holds; fails after `timeoutMs` with `what`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
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

/** Advances `clock` by `stepMs` on every real turn of the event loop until the returned function is called. */
export function driveClock(clock: FakeClock, stepMs: number): () => Promise<void> {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await clock.advance(stepMs);
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}
