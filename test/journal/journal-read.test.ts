import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import type { JournalRecord } from '../../src/journal/types.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { nextCall } from '../helpers/wait.js';
import { entry, tempJournalDir } from './helpers.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function filled(dir: string, count: number, segmentMaxBytes = 700): Promise<Journal> {
  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes });
  for (let i = 1; i <= count; i++) await journal.append(entry(i));
  return journal;
}

test('Journal.read(since, limit) returns the records after since, in order, at most limit, across segments', async (t) => {
  const journal = await filled(tempJournalDir(t), 10);
  t.after(() => journal.close());
  assert.ok(journal.stats().segments >= 3, `segments: ${journal.stats().segments}`);

  assert.deepEqual((await journal.read(3, 4)).map((r) => r.seq), [4, 5, 6, 7]);
  assert.deepEqual((await journal.read(0)).map((r) => r.seq), range(1, 10));
  assert.deepEqual((await journal.read(8, 100)).map((r) => r.seq), [9, 10]);
  assert.deepEqual(await journal.read(10), []);
  assert.deepEqual(await journal.read(50), []);
  const [fifth] = await journal.read(4, 1);
  assert.deepEqual(fifth, { ...entry(5), seq: 5 });
});

async function collect(iterable: AsyncIterable<JournalRecord>, until: (r: JournalRecord) => boolean): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const r of iterable) {
    out.push(r);
    if (until(r)) break;
  }
  return out;
}

/** Resolves when something starts listening for `signal`'s abort: a follower does once it waits for new records. */
function listenedTo(signal: AbortSignal): Promise<void> {
  return nextCall(signal, 'addEventListener');
}

test('Journal.follow() replays from since, then continues live with no gap and no duplicate', async (t) => {
  const journal = await filled(tempJournalDir(t), 5);
  t.after(() => journal.close());
  const ac = new AbortController();
  const seen: number[] = [];
  for await (const r of journal.follow(2, ac.signal)) {
    seen.push(r.seq);
    if (r.seq === 5) void Promise.all([journal.append(entry(6)), journal.append(entry(7))]);
    if (r.seq === 7) ac.abort();
  }
  assert.deepEqual(seen, [3, 4, 5, 6, 7]);
});

test('Journal.follow() sees every record exactly once while appends race with the replay', async (t) => {
  const journal = await filled(tempJournalDir(t), 100, 4096);
  t.after(() => journal.close());
  const producer = (async () => {
    for (let i = 101; i <= 600; i += 25) {
      await Promise.all(range(i, i + 24).map((n) => journal.append(entry(n))));
    }
  })();
  const records = await collect(journal.follow(0, new AbortController().signal), (r) => r.seq === 600);
  await producer;
  assert.deepEqual(records.map((r) => r.seq), range(1, 600));
  assert.deepEqual(records.map((r) => r.message_id), range(1, 600).map((n) => `msg-${n}`));
});

test('Journal.follow() ends when its signal aborts while waiting, and when the journal closes', async (t) => {
  const journal = await filled(tempJournalDir(t), 2);
  t.after(() => journal.close());
  const ac = new AbortController();
  const it = journal.follow(0, ac.signal)[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.seq, 1);
  assert.equal((await it.next()).value?.seq, 2);
  const waits = listenedTo(ac.signal);
  const waiting = it.next();
  await waits;
  ac.abort();
  assert.deepEqual(await waiting, { done: true, value: undefined });

  const liveSignal = new AbortController().signal;
  const live = journal.follow(2, liveSignal)[Symbol.asyncIterator]();
  const waitsLive = listenedTo(liveSignal);
  const waitingLive = live.next();
  await waitsLive;
  await journal.close();
  assert.deepEqual(await waitingLive, { done: true, value: undefined });
});

test('Journal.recent() yields the records received at or after a time, oldest first', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100 });
  t.after(() => journal.close());
  const t0 = Date.parse('2026-11-24T10:00:00.000Z');
  for (let i = 1; i <= 6; i++) await journal.append(entry(i, new Date(t0 + i * 60_000).toISOString()));
  const seen: number[] = [];
  for await (const r of journal.recent(t0 + 4 * 60_000)) seen.push(r.seq);
  assert.deepEqual(seen, [4, 5, 6]);
  const all: number[] = [];
  for await (const r of journal.recent(0)) all.push(r.seq);
  assert.deepEqual(all, range(1, 6));
  const none: number[] = [];
  for await (const r of journal.recent(t0 + 3_600_000)) none.push(r.seq);
  assert.deepEqual(none, []);
});

test('Journal opened readOnly reads what a writer appends, and refuses to append', async (t) => {
  const dir = tempJournalDir(t);
  const writer = await filled(dir, 3, 100);
  t.after(() => writer.close());
  const reader = await Journal.open({ dir, clock: new FakeClock(0, { autoAdvance: true }), readOnly: true, pollIntervalMs: 1 });
  t.after(() => reader.close());
  assert.equal(reader.head, 3);
  assert.deepEqual((await reader.read(0)).map((r) => r.seq), [1, 2, 3]);
  await assert.rejects(reader.append(entry(9)), { code: 'JOURNAL_UNWRITABLE' });

  await writer.append(entry(4));
  assert.deepEqual((await reader.read(2)).map((r) => r.seq), [3, 4]);
  const followed = collect(reader.follow(0, new AbortController().signal), (r) => r.seq === 6);
  await writer.append(entry(5));
  await writer.append(entry(6));
  assert.deepEqual((await followed).map((r) => r.seq), range(1, 6));
});

test('Journal reads and recovers records larger than its read chunk (multi-byte text across chunk edges)', async (t) => {
  const dir = tempJournalDir(t);
  const big = { ...entry(2), events: Array.from({ length: 3000 }, (_, i) => ({ id: `e${i}`, note: '\u00e9\u2603'.repeat(60) })) };
  // One record per segment: the big one is a sealed segment, whose last line recovery reads backwards.
  const writer = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100 });
  await writer.append(entry(1));
  await writer.append(big);
  await writer.append(entry(3));
  await writer.close();

  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100 });
  t.after(() => journal.close());
  assert.equal(journal.head, 3);
  assert.equal(journal.stats().segments, 3);
  assert.ok(journal.stats().bytes > 600_000, `bytes: ${journal.stats().bytes}`);
  const records = await journal.read(0);
  assert.deepEqual(records.map((r) => r.seq), [1, 2, 3]);
  assert.deepEqual(records[1], { ...big, seq: 2 });
});

test('Journal.follow() misses no record when commits land while it reads a segment', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  const ac = new AbortController();
  const seen: number[] = [];
  const following = (async () => {
    for await (const r of journal.follow(0, ac.signal)) {
      seen.push(r.seq);
      if (r.seq === 600) ac.abort();
    }
  })();
  // One append at a time: each commit moves the active segment's end while the follower may be reading it.
  for (let i = 1; i <= 600; i++) await journal.append(entry(i));
  await following;
  assert.deepEqual(seen, Array.from({ length: 600 }, (_, i) => i + 1));
});
