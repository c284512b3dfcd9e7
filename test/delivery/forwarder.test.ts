import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Forwarder } from '../../src/delivery/forwarder.js';
import { signForward, verifyForwardSignature } from '../../src/delivery/signature.js';
import { CursorStore } from '../../src/journal/cursor.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { appendRange, driveClock, journalLines, openJournal, startTarget, tempStateDir, until } from './helpers.js';

const SECRET = 'forward-secret-for-tests';

test('Forwarder POSTs 50 records in seq order: body is the journal line, headers carry seq and message id, signature verifies', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 25);
  const target = await startTarget(t, () => 204);
  const cursor = new CursorStore({ stateDir, name: 'forward' });
  const fwd = new Forwarder({ journal, cursor, url: target.url, secret: SECRET, clock });
  t.after(() => fwd.close());
  await fwd.start();
  await appendRange(journal, 26, 50, { batch: 5 });
  await until(() => target.received.length >= 50 && fwd.stats().cursor === 50, '50 deliveries');

  const lines = journalLines(stateDir);
  assert.deepEqual(target.received.map((r) => r.seq), Array.from({ length: 50 }, (_, i) => i + 1));
  assert.deepEqual(target.received.map((r) => r.body), lines, 'each body is the exact journal line');
  for (const r of target.received) {
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.messageId, `msg-${r.seq}`);
    assert.ok(verifyForwardSignature(SECRET, r.body, r.headers['eventsubd-signature']), `signature of seq ${r.seq}`);
    assert.equal(verifyForwardSignature('another-secret', r.body, r.headers['eventsubd-signature']), false);
  }
  await fwd.close();
  assert.equal(await cursor.load(), 50);
  assert.deepEqual(
    { ...fwd.stats(), lastError: undefined },
    { cursor: 50, saved: 50, head: 50, lag: 0, inFlight: 0, attempts: 50, failures: 0, delivered: 50, lastError: undefined },
  );
});

test('Forwarder sends no signature header without a secret', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 2);
  const target = await startTarget(t, () => 200);
  const fwd = new Forwarder({ journal, cursor: new CursorStore({ stateDir, name: 'forward' }), url: target.url, clock });
  t.after(() => fwd.close());
  await fwd.start();
  await until(() => fwd.stats().cursor === 2, 'two deliveries');
  assert.deepEqual(target.received.map((r) => [r.seq, r.headers['eventsubd-signature']]), [[1, undefined], [2, undefined]]);
});

test('Forwarder retries through connection refused and 503, then delivers every record in order and persists the cursor', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 20);
  const port = await closedPort();
  const cursor = new CursorStore({ stateDir, name: 'forward' });
  const fwd = new Forwarder({ journal, cursor, url: `http://127.0.0.1:${port}/hook`, clock, timeoutMs: 600_000, backoff: { baseMs: 500, maxMs: 2000 } });
  t.after(() => fwd.close());
  const stop = driveClock(clock, 100);
  t.after(stop);
  await fwd.start();

  await until(() => fwd.stats().failures >= 3, 'three refused connections');
  assert.equal(fwd.stats().lastError?.code, 'ECONNREFUSED');
  assert.equal(fwd.stats().cursor, 0);
  const target = await startTarget(t, (_r, index) => (index < 5 ? 503 : 200), port);
  await until(() => fwd.stats().cursor === 20, 'all 20 delivered after the outage');
  await stop();

  const ok = target.received.slice(5);
  assert.deepEqual(target.received.slice(0, 5).map((r) => r.seq), [1, 1, 1, 1, 1], 'the 503s retried seq 1');
  assert.deepEqual(ok.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1));
  const stats = fwd.stats();
  assert.ok(stats.failures >= 8, `failures: ${stats.failures}`);
  assert.equal(stats.attempts, stats.failures + 20);
  assert.equal(stats.lastError?.status, 503);
  await fwd.close();
  assert.equal(await cursor.load(), 20);
});

test('Forwarder resumes from the saved cursor after a restart; an idempotent consumer sees each record exactly once, in order', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 50);
  // Seq 21 reaches the consumer, but the first forwarder is stopped before the answer comes back.
  const target = await startTarget(t, (r, index) => (r.seq === 21 && index === 20 ? undefined : 200));
  const first = new Forwarder({ journal, cursor: new CursorStore({ stateDir, name: 'forward' }), url: target.url, clock });
  await first.start();
  await until(() => target.received.length === 21, 'seq 21 held');
  await first.close();
  assert.equal(await new CursorStore({ stateDir, name: 'forward' }).load(), 20);

  const second = new Forwarder({ journal, cursor: new CursorStore({ stateDir, name: 'forward' }), url: target.url, clock });
  t.after(() => second.close());
  await second.start();
  await until(() => second.stats().cursor === 50, 'the rest delivered');

  const raw = target.received.map((r) => r.seq);
  assert.deepEqual(raw, [...Array.from({ length: 21 }, (_, i) => i + 1), ...Array.from({ length: 30 }, (_, i) => i + 21)]);
  const seen = new Set<string>();
  const once = target.received.filter((r) => !seen.has(r.messageId) && seen.add(r.messageId));
  assert.deepEqual(once.map((r) => r.seq), Array.from({ length: 50 }, (_, i) => i + 1), 'deduped by Eventsubd-Message-Id');
  await second.close();
  assert.equal(await new CursorStore({ stateDir, name: 'forward' }).load(), 50);
});

test('Forwarder backoff doubles from baseMs with jitter and is capped at maxMs', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 1);
  const target = await startTarget(t, () => 503);
  const timeoutMs = 60_000;
  const backoff = { baseMs: 400, maxMs: 3000 };
  const fwd = new Forwarder({ journal, cursor: new CursorStore({ stateDir, name: 'forward' }), url: target.url, clock, timeoutMs, backoff, random: () => 0.5 });
  t.after(() => fwd.close());
  await fwd.start();
  for (let k = 1; k <= 7; k++) {
    await until(() => fwd.stats().failures >= k, `failure ${k}`);
    assert.equal(clock.pending, 1, 'only the backoff sleep is pending');
    await clock.advance((clock.nextWake() as number) - clock.now());
  }
  // Delay = cap/2 + random * cap/2 with random 0.5, cap = min(3000, 400 * 2^(n-1)).
  assert.deepEqual(clock.sleeps.filter((ms) => ms !== timeoutMs).slice(0, 7), [300, 600, 1200, 2250, 2250, 2250, 2250]);
  assert.equal(fwd.stats().cursor, 0);
  assert.ok(target.received.length >= 7 && target.received.every((r) => r.seq === 1));
});

test('Forwarder counts a request that outlives timeoutMs as a failure and sends it again', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 1);
  const target = await startTarget(t, (_r, index) => (index === 0 ? undefined : 200));
  const fwd = new Forwarder({ journal, cursor: new CursorStore({ stateDir, name: 'forward' }), url: target.url, clock, timeoutMs: 5000, backoff: { baseMs: 100, maxMs: 100 } });
  t.after(() => fwd.close());
  await fwd.start();
  await until(() => target.held.size === 1, 'the first request held');
  const aborted = new Promise<void>((resolve) => target.held.get(0)?.on('close', () => resolve()));
  await clock.advance(4999);
  assert.equal(fwd.stats().failures, 0, 'not yet timed out');
  await clock.advance(1);
  await aborted;
  await until(() => fwd.stats().failures === 1, 'the timeout counted');
  assert.equal(fwd.stats().lastError?.code, 'TIMEOUT');
  await clock.advance(100);
  await until(() => fwd.stats().cursor === 1, 'the retry delivered');
  assert.deepEqual(target.received.map((r) => r.seq), [1, 1]);
  assert.equal(fwd.stats().attempts, 2);
});

test('Forwarder with concurrency 4 keeps at most 4 in flight and moves the cursor only over a contiguous prefix of 2xx', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 6);
  const target = await startTarget(t, (r) => (r.seq <= 4 ? undefined : 200));
  const fwd = new Forwarder({ journal, cursor: new CursorStore({ stateDir, name: 'forward' }), url: target.url, clock, concurrency: 4 });
  t.after(() => fwd.close());
  await fwd.start();
  await until(() => target.held.size === 4, 'four requests in flight');
  for (const index of [3, 2, 1]) target.held.get(index)?.writeHead(200).end();
  await until(() => fwd.stats().delivered === 3, 'seqs 2-4 acknowledged');
  assert.equal(fwd.stats().cursor, 0, 'seq 1 is still unanswered');
  assert.equal(target.received.length, 4, 'the window is full until seq 1 is answered');
  target.held.get(0)?.writeHead(200).end();
  await until(() => fwd.stats().cursor === 6, 'all six delivered');
  assert.deepEqual(target.received.map((r) => r.seq).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
});

test('Forwarder refuses a non-http URL and a zero concurrency with CONFIG_INVALID', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  const cursor = new CursorStore({ stateDir, name: 'forward' });
  assert.throws(() => new Forwarder({ journal, cursor, url: 'ftp://example.test/x', clock }), { code: 'CONFIG_INVALID', message: /http: or https:/ });
  assert.throws(() => new Forwarder({ journal, cursor, url: 'http://127.0.0.1:1/', clock, concurrency: 0 }), {
    code: 'CONFIG_INVALID',
    message: /'concurrency' must be a positive integer: current value is 0/,
  });
});

test('verifyForwardSignature() accepts only sha256= plus the exact lower-case hex HMAC of the raw body', () => {
  const body = '{"seq":1,"message_id":"m"}';
  // Computed independently: printf '%s' "$body" | openssl dgst -sha256 -hmac k
  const real = 'sha256=581a9366b9a5076dc7be2b366666899b2bf507f1cbc016ad3c8f77aae34be015';
  assert.equal(signForward('k', body), real);
  assert.equal(verifyForwardSignature('k', body, real), true);
  assert.equal(verifyForwardSignature('k', Buffer.from(body), real), true);
  assert.equal(verifyForwardSignature('k', `${body} `, real), false);
  assert.equal(verifyForwardSignature('other', body, real), false);
  assert.equal(verifyForwardSignature('k', body, real.toUpperCase()), false);
  assert.equal(verifyForwardSignature('k', body, real.slice(7)), false);
  assert.equal(verifyForwardSignature('k', body, `sha1=${real.slice(7)}`), false);
  assert.equal(verifyForwardSignature('k', body, [real]), false);
  assert.equal(verifyForwardSignature('k', body, undefined), false);
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
