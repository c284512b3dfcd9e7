import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { entry, segmentNames, tempJournalDir } from './helpers.js';

const seg = (n: number): string => `${String(n).padStart(20, '0')}.jsonl`;

test('Journal retention by maxBytes removes the oldest whole segments on roll-over, never the active one', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100, retention: { maxBytes: 600 } });
  t.after(() => journal.close());
  for (let i = 1; i <= 8; i++) await journal.append(entry(i));

  const stats = journal.stats();
  assert.ok(stats.bytes <= 600, `bytes: ${stats.bytes}`);
  assert.ok(stats.segments >= 2, `segments: ${stats.segments}`);
  assert.equal(journal.head, 8);
  assert.equal(journal.firstSeq, 8 - stats.segments + 1);
  assert.deepEqual(segmentNames(dir), Array.from({ length: stats.segments }, (_, i) => seg(journal.firstSeq + i)));
  // Reading from 0 starts at the oldest retained record.
  assert.deepEqual(
    (await journal.read(0)).map((r) => r.seq),
    Array.from({ length: stats.segments }, (_, i) => journal.firstSeq + i),
  );
});

test('Journal retention keeps the active segment even when it alone is over maxBytes', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100, retention: { maxBytes: 10 } });
  t.after(() => journal.close());
  for (let i = 1; i <= 3; i++) await journal.append(entry(i));
  assert.deepEqual(segmentNames(dir), [seg(3)]);
  assert.equal(journal.firstSeq, 3);
  assert.equal((await journal.append(entry(4))).seq, 4);
});

test('Journal retention by age removes segments whose newest record is older than maxAgeMs', async (t) => {
  const dir = tempJournalDir(t);
  const clock = new FakeClock();
  const journal = await Journal.open({ dir, clock, segmentMaxBytes: 100, retention: { maxAgeMs: 3_600_000 } });
  t.after(() => journal.close());
  const at = (): string => new Date(clock.now()).toISOString();
  for (let i = 1; i <= 3; i++) await journal.append(entry(i, at()));
  assert.deepEqual(segmentNames(dir), [seg(1), seg(2), seg(3)]);

  await clock.advance(30 * 60_000);
  await journal.append(entry(4, at()));
  assert.deepEqual(segmentNames(dir), [seg(1), seg(2), seg(3), seg(4)], 'nothing is an hour old yet');

  await clock.advance(31 * 60_000);
  await journal.append(entry(5, at()));
  assert.deepEqual(segmentNames(dir), [seg(4), seg(5)]);
  assert.equal(journal.firstSeq, 4);
});

test('Journal.open() applies retention to old segments (the last one stays)', async (t) => {
  const dir = tempJournalDir(t);
  const clock = new FakeClock();
  const writer = await Journal.open({ dir, clock, segmentMaxBytes: 100 });
  for (let i = 1; i <= 3; i++) await writer.append(entry(i, new Date(clock.now()).toISOString()));
  await writer.close();

  clock.set(clock.now() + 2 * 3_600_000);
  const journal = await Journal.open({ dir, clock, segmentMaxBytes: 100, retention: { maxAgeMs: 3_600_000 } });
  t.after(() => journal.close());
  assert.deepEqual(segmentNames(dir), [seg(3)]);
  assert.equal(journal.firstSeq, 3);
  assert.equal(journal.head, 3);
  assert.equal(await journal.prune(), 0);
});
