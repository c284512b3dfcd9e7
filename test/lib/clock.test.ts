import assert from 'node:assert/strict';
import { test } from 'node:test';
import { settleWithin } from '../../src/lib/clock.js';
import { FakeClock } from '../helpers/fake-clock.js';

test('settleWithin() is done when the work settles in time (resolved or rejected), late when the time runs out first', async () => {
  const clock = new FakeClock();
  assert.equal(await settleWithin(Promise.resolve(1), 1_000, clock), 'done');
  assert.equal(await settleWithin(Promise.reject(new Error('x')), 1_000, clock), 'done');
  assert.equal(clock.pending, 0, 'no timer left behind');
  const never = new Promise(() => {});
  const outcome = settleWithin(never, 15_000, clock);
  await clock.advance(14_999);
  let settled = false;
  void outcome.then(() => (settled = true));
  await clock.advance(0);
  assert.equal(settled, false, 'not before the deadline');
  await clock.advance(1);
  assert.equal(await outcome, 'late');
});
