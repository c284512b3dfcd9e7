import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedError } from '../../src/lib/errors.js';
import { RateLimitPacer } from '../../src/twitch/pacer.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';

/** Twitch's app bucket as the contract describes it: `limit` points, refilled continuously per window. */
class ServerBucket {
  #points: number;
  #at: number;
  accepted = 0;
  rejected = 0;
  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly clock: FakeClock,
  ) {
    this.#points = limit;
    this.#at = clock.now();
  }

  handle(): { status: number; headers: Record<string, string> } {
    const now = this.clock.now();
    this.#points = Math.min(this.limit, this.#points + ((now - this.#at) * this.limit) / this.windowMs);
    this.#at = now;
    const ok = this.#points >= 1;
    if (ok) {
      this.#points -= 1;
      this.accepted += 1;
    } else {
      this.rejected += 1;
    }
    const fullAt = now + ((this.limit - this.#points) * this.windowMs) / this.limit;
    return {
      status: ok ? 200 : 429,
      headers: {
        'ratelimit-limit': String(this.limit),
        'ratelimit-remaining': String(Math.floor(this.#points)),
        'ratelimit-reset': String(Math.ceil(fullAt / 1000)),
      },
    };
  }
}

function headers(limit: number, remaining: number, reset?: number): Record<string, string> {
  const h: Record<string, string> = { 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(remaining) };
  if (reset !== undefined) h['ratelimit-reset'] = String(reset);
  return h;
}

test('RateLimitPacer.take() never waits before any Ratelimit header has been seen', async () => {
  const clock = new FakeClock();
  const pacer = new RateLimitPacer({ clock });
  for (let i = 0; i < 5; i++) await pacer.take();
  assert.deepEqual(clock.sleeps, []);
  assert.deepEqual(pacer.snapshot(), { limit: undefined, remaining: undefined, resetAt: undefined });
});

test('RateLimitPacer paces 50 concurrent takes against a 10-per-second bucket in ~4 s with zero 429s', async () => {
  const clock = new FakeClock(Date.parse('2026-11-24T10:00:00.000Z'), { autoAdvance: true });
  const start = clock.now();
  const pacer = new RateLimitPacer({ clock, windowMs: 1000 });
  const server = new ServerBucket(10, 1000, clock);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < 50) {
      next += 1;
      await pacer.take();
      await new Promise<void>((r) => setImmediate(r)); // the request is in flight
      const res = server.handle();
      if (res.status === 429) pacer.onEmpty429(res.headers);
      else pacer.observe(res.headers);
    }
  };
  await Promise.all(Array.from({ length: 5 }, worker));
  const elapsed = clock.now() - start;
  assert.equal(server.rejected, 0, 'no 429 from the simulated bucket');
  assert.equal(server.accepted, 50);
  // 10 points at once, then 40 more at 100 ms each: the bucket's own bound is 4 000 ms.
  assert.ok(elapsed >= 4000 && elapsed <= 4000 * 1.05, `elapsed ${elapsed} ms`);
});

test('RateLimitPacer.observe() resyncs down to the server remaining minus other requests in flight', async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const pacer = new RateLimitPacer({ clock, windowMs: 1000 });
  await pacer.take();
  await pacer.take();
  await pacer.take();
  // First answer: 10-point bucket, 3 left according to Twitch; two of our requests are still in flight.
  pacer.observe(headers(10, 3));
  assert.equal(pacer.snapshot().remaining, 1);
  await pacer.take();
  assert.deepEqual(clock.sleeps, []);
  await pacer.take();
  assert.deepEqual(clock.sleeps, [100], 'waits exactly one point (100 ms) for the deficit');
});

test('RateLimitPacer.observe() ignores a late answer that reports more points than the model holds', async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const pacer = new RateLimitPacer({ clock, windowMs: 1000 });
  await pacer.take();
  pacer.observe(headers(10, 0));
  await pacer.take();
  pacer.observe(headers(10, 9)); // stale and optimistic
  assert.equal(pacer.snapshot().remaining, 0);
});

test('RateLimitPacer.take() serves concurrent callers FIFO, one point each', async () => {
  const clock = new FakeClock(0);
  const pacer = new RateLimitPacer({ clock, windowMs: 1000 });
  await pacer.take();
  pacer.observe(headers(10, 1));
  const order: number[] = [];
  const takes = [1, 2, 3].map((n) => pacer.take().then(() => order.push(n)));
  await flushMicrotasks();
  assert.deepEqual(order, [1], 'one point available: only the first caller goes');
  await clock.advance(99);
  assert.deepEqual(order, [1]);
  await clock.advance(1);
  assert.deepEqual(order, [1, 2]);
  await clock.advance(100);
  assert.deepEqual(order, [1, 2, 3]);
  await Promise.all(takes);
});

test('RateLimitPacer.onEmpty429() makes the next take wait until Ratelimit-Reset plus the margin', async () => {
  const clock = new FakeClock(1_000_000, { autoAdvance: true });
  const pacer = new RateLimitPacer({ clock, marginMs: 250 });
  await pacer.take();
  pacer.onEmpty429(headers(800, 0, 1_000 + 30));
  assert.equal(pacer.snapshot().remaining, 0);
  await pacer.take();
  assert.equal(clock.now(), 1_030_000 + 250);
});

test('RateLimitPacer.onEmpty429() without headers still waits at least one point and the margin', async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const pacer = new RateLimitPacer({ clock, windowMs: 60_000, marginMs: 250 });
  await pacer.take();
  pacer.observe(headers(800, 500));
  await pacer.take();
  pacer.onEmpty429(undefined);
  await pacer.take();
  assert.equal(clock.now(), 75 + 250);
});

test('RateLimitPacer.take() rejects with AbortedError while sleeping or queued, and reserves nothing', async () => {
  const clock = new FakeClock(0);
  const pacer = new RateLimitPacer({ clock, windowMs: 1000 });
  await pacer.take();
  pacer.observe(headers(10, 0));
  const sleeping = new AbortController();
  const queued = new AbortController();
  const first = pacer.take(sleeping.signal);
  const second = pacer.take(queued.signal);
  const third = pacer.take();
  await flushMicrotasks();
  assert.equal(clock.pending, 1, 'only the head of the queue sleeps');
  queued.abort();
  await assert.rejects(second, AbortedError);
  sleeping.abort();
  await assert.rejects(first, AbortedError);
  await clock.advance(100);
  await third; // the queue is not stuck, and gets the first point back
  assert.equal(clock.now(), 100);
  await assert.rejects(pacer.take(AbortSignal.abort()), AbortedError);
});

test('RateLimitPacer.snapshot() reports limit, whole points left and when the bucket will be full', async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const pacer = new RateLimitPacer({ clock });
  await pacer.take();
  pacer.observe(headers(800, 797));
  assert.deepEqual(pacer.snapshot(), { limit: 800, remaining: 797, resetAt: 3 * 75 });
  await clock.sleep(75);
  assert.deepEqual(pacer.snapshot(), { limit: 800, remaining: 798, resetAt: 3 * 75 });
});
