import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../../src/lib/errors.js';
import { backoffDelay, retry } from '../../src/lib/retry.js';
import { FakeClock } from '../helpers/fake-clock.js';

test('backoffDelay() is equal jitter: uniform in [cap/2, cap], cap doubling from baseMs up to maxMs', () => {
  const at = (attempt: number, r: number) => backoffDelay(attempt, { baseMs: 100, maxMs: 1_000, random: () => r });
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => at(n, 0)), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => at(n, 0.999999)), [100, 200, 400, 800, 1000, 1000]);
});

test('retry() retries a retriable failure with the backoff, and returns the first success', async () => {
  const clock = new FakeClock(undefined, { autoAdvance: true });
  const seen: Array<[number, number]> = [];
  const result = await retry(
    async (attempt) => {
      if (attempt < 3) throw new Error(`fail ${attempt}`);
      return `ok after ${attempt}`;
    },
    { clock, backoff: { baseMs: 100, maxMs: 1_000, random: () => 0 }, onRetry: (_err, attempt, delay) => seen.push([attempt, delay]) },
  );
  assert.equal(result, 'ok after 3');
  assert.deepEqual(seen, [
    [1, 50],
    [2, 100],
  ]);
  assert.deepEqual(clock.sleeps, [50, 100]);
});

test('retry() throws a failure that is not retriable at once, and the last one when the attempts run out', async () => {
  const clock = new FakeClock(undefined, { autoAdvance: true });
  let calls = 0;
  const fatal = new AppError('TWITCH_AUTH_FAILED', 'no');
  await assert.rejects(
    retry(
      async () => {
        calls += 1;
        throw fatal;
      },
      { clock, backoff: { baseMs: 1, maxMs: 1 }, isRetriable: (e) => (e as AppError).code !== 'TWITCH_AUTH_FAILED' },
    ),
    (err) => err === fatal,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    retry(
      async (attempt) => {
        calls += 1;
        throw new Error(`attempt ${attempt}`);
      },
      { clock, attempts: 3, backoff: { baseMs: 1, maxMs: 1 } },
    ),
    /attempt 3/,
  );
  assert.equal(calls, 3);
});

test('retry() stops with ABORTED when its signal aborts during a wait, without another attempt', async () => {
  const clock = new FakeClock();
  const ac = new AbortController();
  let calls = 0;
  const running = retry(
    async () => {
      calls += 1;
      throw new Error('down');
    },
    { clock, signal: ac.signal, backoff: { baseMs: 1_000, maxMs: 1_000 } },
  );
  while (clock.pending === 0) await new Promise((r) => setImmediate(r));
  ac.abort();
  await assert.rejects(running, { code: 'ABORTED' });
  assert.equal(calls, 1);
});
