import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { allLines, entry, segmentNames, tempJournalDir } from './helpers.js';

test('Journal.append() writes one JSON line per record with seq first, in a 0700 dir and 0600 segment', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.equal(journal.head, 0);
  assert.equal(journal.firstSeq, 1);

  const record = await journal.append(entry(1));
  assert.equal(record.seq, 1);
  assert.deepEqual(Object.keys(record)[0], 'seq');
  assert.equal(journal.head, 1);

  assert.deepEqual(segmentNames(dir), ['00000000000000000001.jsonl']);
  // Open, the segment is followed by the writer's zeros ahead; closed, it ends with its last record.
  await journal.close();
  const text = readFileSync(join(dir, '00000000000000000001.jsonl'), 'utf8');
  assert.ok(text.startsWith('{"seq":1,"message_id":"msg-1","message_type":"notification",'), text);
  // Format 2: the record's JSON with its CRC-32 as the last field (the VERSION file says so).
  const crc = /,"crc32":"([0-9a-f]{8})"\}\n$/.exec(text);
  assert.ok(crc, text);
  const json = `${text.slice(0, crc.index)}}`;
  assert.equal(crc[1], crc32(json).toString(16).padStart(8, '0'));
  assert.deepEqual(JSON.parse(json), { ...entry(1), seq: 1 });
  assert.equal(readFileSync(join(dir, 'VERSION'), 'utf8'), '2\n');
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, '00000000000000000001.jsonl')).mode & 0o777, 0o600);
});

test('Journal keeps seq continuous across a reopen', async (t) => {
  const dir = tempJournalDir(t);
  const first = await Journal.open({ dir, clock: new FakeClock() });
  for (let i = 1; i <= 3; i++) await first.append(entry(i));
  await first.close();

  const second = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => second.close());
  assert.equal(second.head, 3);
  assert.equal((await second.append(entry(4))).seq, 4);
  assert.deepEqual(
    allLines(dir).map((l) => (JSON.parse(l) as { seq: number; message_id: string }).message_id),
    ['msg-1', 'msg-2', 'msg-3', 'msg-4'],
  );
});

test('Journal rolls over to a segment named after its first seq, and seq continues across segments and reopen', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100 });
  for (let i = 1; i <= 5; i++) await journal.append(entry(i));
  await journal.close();

  // Each line is more than 100 bytes, so every sequential append past the first starts a segment.
  assert.deepEqual(segmentNames(dir), [1, 2, 3, 4, 5].map((n) => `${String(n).padStart(20, '0')}.jsonl`));
  const reopened = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100 });
  t.after(() => reopened.close());
  assert.equal(reopened.head, 5);
  assert.equal(reopened.stats().segments, 5);
  assert.equal((await reopened.append(entry(6))).seq, 6);
  assert.deepEqual(
    allLines(dir).map((l) => (JSON.parse(l) as { seq: number }).seq),
    [1, 2, 3, 4, 5, 6],
  );
  assert.deepEqual((await reopened.read(0, 100)).map((r) => r.message_id), [1, 2, 3, 4, 5, 6].map((n) => `msg-${n}`));
});

test('Journal group commit: 200 concurrent appends share far fewer fsyncs and land in seq order', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());

  const records = await Promise.all(Array.from({ length: 200 }, (_, i) => journal.append(entry(i + 1))));
  assert.deepEqual(
    records.map((r) => r.seq),
    Array.from({ length: 200 }, (_, i) => i + 1),
  );
  assert.deepEqual(
    records.map((r) => r.message_id),
    Array.from({ length: 200 }, (_, i) => `msg-${i + 1}`),
  );
  const stats = journal.stats();
  assert.equal(stats.appends, 200);
  assert.ok(stats.fsyncs >= 1 && stats.fsyncs <= 10, `fsyncs: ${stats.fsyncs}`);
  assert.equal(stats.fsyncHistogram.count, stats.fsyncs);
  const lines = allLines(dir).map((l) => JSON.parse(l) as { seq: number; message_id: string });
  assert.deepEqual(
    lines.map((l) => [l.seq, l.message_id]),
    Array.from({ length: 200 }, (_, i) => [i + 1, `msg-${i + 1}`]),
  );
});

test('Journal group commit batches appends that arrive while an fsync is in flight', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());

  const firstWave = journal.append(entry(1));
  await new Promise<void>((r) => setImmediate(r));
  const secondWave = Array.from({ length: 50 }, (_, i) => journal.append(entry(i + 2)));
  await Promise.all([firstWave, ...secondWave]);
  assert.equal(journal.stats().appends, 51);
  assert.ok(journal.stats().fsyncs <= 3, `fsyncs: ${journal.stats().fsyncs}`);
});

test("Journal durability 'each' fsyncs once per append", async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock(), durability: 'each' });
  t.after(() => journal.close());

  const records = await Promise.all(Array.from({ length: 40 }, (_, i) => journal.append(entry(i + 1))));
  assert.deepEqual(
    records.map((r) => r.seq),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  assert.equal(journal.stats().appends, 40);
  assert.equal(journal.stats().fsyncs, 40);
});

test('Journal.close() flushes pending appends, is idempotent, and later appends reject with JOURNAL_UNWRITABLE', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  const pending = Array.from({ length: 10 }, (_, i) => journal.append(entry(i + 1)));
  const closed = journal.close();
  assert.equal(journal.close(), closed);
  await closed;
  assert.deepEqual(
    (await Promise.all(pending)).map((r) => r.seq),
    Array.from({ length: 10 }, (_, i) => i + 1),
  );
  assert.equal(allLines(dir).length, 10);
  await assert.rejects(journal.append(entry(11)), { code: 'JOURNAL_UNWRITABLE' });
  t.after(() => journal.close());
});

test('Journal.append() ignores a seq on the entry and rejects an entry that is not JSON', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  const record = await journal.append({ ...entry(1), seq: 99 } as ReturnType<typeof entry>);
  assert.equal(record.seq, 1);
  assert.equal(allLines(dir)[0]!.indexOf('"seq"'), allLines(dir)[0]!.lastIndexOf('"seq"'));
  await assert.rejects(journal.append({ ...entry(2), event: { big: 1n } }), TypeError);
  assert.equal((await journal.append(entry(3))).seq, 2);
});
