import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dedup } from '../../src/receiver/dedup.js';
import { FakeClock } from '../helpers/fake-clock.js';

test('Dedup.has() is true for an added key and false for others', () => {
  const dedup = new Dedup({ clock: new FakeClock() });
  dedup.add('a');
  assert.equal(dedup.has('a'), true);
  assert.equal(dedup.has('b'), false);
  assert.equal(dedup.size, 1);
});

test('Dedup keeps a key for the default 20 minutes, then forgets it', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock });
  dedup.add('a');
  await clock.advance(20 * 60_000 - 1);
  assert.equal(dedup.has('a'), true);
  await clock.advance(1);
  assert.equal(dedup.has('a'), false);
  assert.equal(dedup.size, 0);
});

test('Dedup.add() with a past time keeps the key only for the rest of its retention', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 60_000 });
  dedup.add('old', clock.now() - 50_000);
  assert.equal(dedup.has('old'), true);
  await clock.advance(10_000);
  assert.equal(dedup.has('old'), false);
  dedup.add('ancient', clock.now() - 60_000);
  assert.equal(dedup.has('ancient'), false);
  assert.equal(dedup.size, 0);
});

test('Dedup evicts in insertion order as time passes', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000 });
  dedup.add('a');
  await clock.advance(500);
  dedup.add('b');
  await clock.advance(600);
  assert.equal(dedup.size, 1);
  assert.equal(dedup.has('a'), false);
  assert.equal(dedup.has('b'), true);
});

test('Dedup re-adding a key refreshes its time', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000 });
  dedup.add('a');
  await clock.advance(900);
  dedup.add('a');
  await clock.advance(900);
  assert.equal(dedup.has('a'), true);
  assert.equal(dedup.size, 1);
});

test('Dedup past maxEntries forgets the oldest key first', () => {
  const dedup = new Dedup({ clock: new FakeClock(), maxEntries: 3 });
  for (const k of ['a', 'b', 'c', 'd']) dedup.add(k);
  assert.equal(dedup.size, 3);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => dedup.has(k)), [false, true, true, true]);
});

test('Dedup past maxEntries treats a re-added key as recent', () => {
  const dedup = new Dedup({ clock: new FakeClock(), maxEntries: 2 });
  for (const k of ['a', 'b', 'a', 'c']) dedup.add(k);
  assert.deepEqual(['a', 'b', 'c'].map((k) => dedup.has(k)), [true, false, true]);
  assert.equal(dedup.size, 2);
});

test('Dedup holds 50 000 keys at its cap and evicts them all once expired', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000, maxEntries: 50_000 });
  for (let i = 0; i < 100_000; i++) dedup.add(`k${i}`);
  assert.equal(dedup.size, 50_000);
  assert.equal(dedup.has('k49999'), false);
  assert.equal(dedup.has('k50000'), true);
  await clock.advance(1_000);
  assert.equal(dedup.size, 0);
});

test('new Dedup() rejects a non-positive retention and a bad cap', () => {
  const clock = new FakeClock();
  assert.throws(() => new Dedup({ clock, retentionMs: 0 }), /retention must be positive: current value is 0/);
  assert.throws(() => new Dedup({ clock, maxEntries: 0.5 }), /maxEntries must be a positive integer/);
});
