import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dedup } from '../../src/receiver/dedup.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { mulberry32 } from '../helpers/prng.js';

test('Dedup.has() is true for an added key and false for others', () => {
  const dedup = new Dedup({ clock: new FakeClock() });
  dedup.add('a');
  assert.equal(dedup.has('a'), true);
  assert.equal(dedup.has('b'), false);
  assert.equal(dedup.size, 1);
});

test('Dedup keeps a key for the default 21 minutes, then forgets it', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock });
  dedup.add('a');
  await clock.advance(21 * 60_000 - 1);
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

/** Keys `k<n>`: a digest whose first word (the hash bucket) is one of four buckets next to the table's end. */
function collidingDigest(key: string): number[] {
  const n = Number(key.slice(1));
  return [1020 + (n % 4), n, n ^ 0x5bd1e995];
}

test('Dedup grows through several doublings and still finds every live key', () => {
  const dedup = new Dedup({ clock: new FakeClock(), maxEntries: 15_000 });
  for (let i = 0; i < 20_000; i++) dedup.add(`k${i}`);
  assert.equal(dedup.size, 15_000);
  const found = (from: number, to: number) => {
    let n = 0;
    for (let i = from; i < to; i++) if (dedup.has(`k${i}`)) n++;
    return n;
  };
  assert.equal(found(0, 5_000), 0);
  assert.equal(found(5_000, 20_000), 15_000);
  assert.equal(found(20_000, 30_000), 0);
});

test('Dedup evicts by time in insertion order across the ring wrapping around, then shrinks and refills', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000 });
  const batch = (name: string, n: number) => Array.from({ length: n }, (_, i) => `${name}${i}`);
  const held = (keys: string[]) => keys.filter((k) => dedup.has(k)).length;
  const [a, b, c] = [batch('a', 800), batch('b', 200), batch('c', 700)];
  for (const k of a) dedup.add(k);
  await clock.advance(500);
  for (const k of b) dedup.add(k);
  await clock.advance(500);
  assert.deepEqual([held(a), held(b), dedup.size], [0, 200, 200]);
  for (const k of c) dedup.add(k);
  await clock.advance(499);
  assert.deepEqual([held(b), held(c), dedup.size], [200, 700, 900]);
  await clock.advance(1);
  assert.deepEqual([held(b), held(c), dedup.size], [0, 700, 700]);
  await clock.advance(500);
  assert.equal(dedup.size, 0);
  for (const k of batch('d', 3_000)) dedup.add(k);
  await clock.advance(999);
  assert.deepEqual([held(batch('d', 3_000)), held(c)], [3_000, 0]);
});

test('Dedup past maxEntries forgets the oldest keys first across many wrap-arounds', () => {
  const dedup = new Dedup({ clock: new FakeClock(), maxEntries: 1_000 });
  for (let i = 0; i < 5_000; i++) dedup.add(`k${i}`);
  assert.equal(dedup.size, 1_000);
  assert.deepEqual([3_999, 4_000, 4_999].map((i) => dedup.has(`k${i}`)), [false, true, true]);
});

test('Dedup re-adding a key moves it to the tail and keeps the later of its times', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000, maxEntries: 3 });
  for (const k of ['a', 'b', 'c']) dedup.add(k);
  dedup.add('a', clock.now() - 500);
  dedup.add('d');
  assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => dedup.has(k)), [true, false, true, true]);
  await clock.advance(999);
  assert.equal(dedup.has('a'), true);
  await clock.advance(1);
  assert.equal(dedup.size, 0);
});

test('Dedup re-adding the same keys many times compacts its dead slots and keeps every key', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000, maxEntries: 100 });
  for (let round = 0; round < 200; round++) for (let i = 0; i < 100; i++) dedup.add(`k${i}`);
  assert.equal(dedup.size, 100);
  assert.equal(Array.from({ length: 100 }, (_, i) => dedup.has(`k${i}`)).filter(Boolean).length, 100);
  await clock.advance(1_000);
  assert.equal(dedup.size, 0);
});

test('Dedup with colliding digests finds every other key after deletions in the middle of probe runs', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000, maxEntries: 300, digest: collidingDigest });
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const held = () => range(0, 400).filter((i) => dedup.has(`k${i}`));
  for (const i of range(0, 300)) dedup.add(`k${i}`);
  await clock.advance(500);
  const thirds = range(0, 300).filter((i) => i % 3 === 0);
  for (const i of thirds) dedup.add(`k${i}`);
  for (const i of range(300, 350)) dedup.add(`k${i}`);
  const evicted = range(0, 75).filter((i) => i % 3 !== 0);
  assert.deepEqual(held(), range(0, 350).filter((i) => !evicted.includes(i)));
  await clock.advance(500);
  assert.deepEqual(held(), [...thirds, ...range(300, 350)]);
  assert.equal(dedup.size, 150);
});

test('Dedup tells apart keys that differ in one lone surrogate or in the last code unit of a long key', () => {
  const dedup = new Dedup({ clock: new FakeClock() });
  const long = 'ev:'.padEnd(5_000, 'x');
  for (const k of ['a\ud800', long, 'x\u0000']) dedup.add(k);
  assert.deepEqual(['a\ud800', long, 'x\u0000'].map((k) => dedup.has(k)), [true, true, true]);
  assert.deepEqual(['a\ud801', 'a\ufffd', 'a', `${long.slice(0, -1)}y`, `${long}x`, 'x'].map((k) => dedup.has(k)), [
    false, false, false, false, false, false,
  ]);
});

/** The specification, written plainly: a queue of entries and a map from key to its latest entry. */
class ModelDedup {
  readonly #queue: { key: string; at: number }[] = [];
  #head = 0;
  readonly #latest = new Map<string, { key: string; at: number }>();
  constructor(private readonly clock: FakeClock, private readonly retentionMs: number, private readonly maxEntries: number) {}
  has(key: string): boolean {
    const now = this.#expire();
    const e = this.#latest.get(key);
    return e !== undefined && now - e.at < this.retentionMs;
  }
  add(key: string, atMs = this.clock.now()): void {
    const now = this.#expire();
    if (now - atMs >= this.retentionMs) return;
    const e = { key, at: Math.max(this.#latest.get(key)?.at ?? atMs, atMs) };
    this.#latest.set(key, e);
    this.#queue.push(e);
    while (this.#latest.size > this.maxEntries) this.#shift();
  }
  get size(): number {
    this.#expire();
    return this.#latest.size;
  }
  #expire(): number {
    const now = this.clock.now();
    while (this.#head < this.#queue.length && now - this.#queue[this.#head]!.at >= this.retentionMs) this.#shift();
    return now;
  }
  #shift(): void {
    const e = this.#queue[this.#head++]!;
    if (this.#latest.get(e.key) === e) this.#latest.delete(e.key);
  }
}

test('Dedup dropping dead slots keeps a later-timed one that holds back time-based eviction, as the model does', async () => {
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 1_000, maxEntries: 3 });
  const model = new ModelDedup(clock, 1_000, 3);
  for (const [key, at] of [['x', 0], ['y', -900], ['x', 0], ['w', 0], ['w', 0]] as const) {
    dedup.add(key, clock.now() + at);
    model.add(key, clock.now() + at);
  }
  await clock.advance(100);
  assert.deepEqual([dedup.has('y'), dedup.size], [false, 3]);
  assert.deepEqual([model.has('y'), model.size], [false, 3]);
});

for (const [label, maxEntries, pool, retentionMs, digest] of [
  ['tiny cap', 5, 12, 1_000, undefined],
  ['small cap', 700, 1_500, 10_000, undefined],
  ['growing', 4_000, 6_000, 10_000, undefined],
  ['colliding digests', 700, 1_500, 10_000, collidingDigest],
] as const) {
  test(`Dedup matches a reference model over 12,500 random operations (${label})`, async () => {
    const seed = 0x5eed + maxEntries;
    const random = mulberry32(seed);
    const int = (n: number) => Math.floor(random() * n);
    const clock = new FakeClock();
    const dedup = new Dedup({ clock, retentionMs, maxEntries, ...(digest ? { digest } : {}) });
    const model = new ModelDedup(clock, retentionMs, maxEntries);
    for (let op = 0; op < 12_500; op++) {
      const key = `k${int(pool)}`;
      const roll = random();
      if (roll < 0.45) {
        dedup.add(key);
        model.add(key);
      } else if (roll < 0.6) {
        const at = clock.now() - 1.2 * retentionMs + int(1.5 * retentionMs);
        dedup.add(key, at);
        model.add(key, at);
      } else if (roll < 0.97) {
        assert.equal(dedup.has(key), model.has(key), `seed ${seed}, op ${op}: has(${key})`);
      } else {
        await clock.advance(int(roll < 0.995 ? retentionMs / 50 : 1.2 * retentionMs));
      }
      if (op % 10 === 0) assert.equal(dedup.size, model.size, `seed ${seed}, op ${op}: size`);
    }
    assert.equal(dedup.size, model.size);
  });
}
