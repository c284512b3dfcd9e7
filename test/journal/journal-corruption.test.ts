/**
 * Issue #10.5: corruption is not a torn write. A complete line that fails its checksum keeps its seq (it may
 * have been acknowledged) and is set aside; only what a crash can leave (a last line without its newline,
 * NUL-filled debris) is dropped. Readers skip a corrupt record with a warning instead of stopping, and a
 * format-1 journal (no checksums) is migrated in place.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import type { JournalRecord } from '../../src/journal/types.js';
import { captureLogs } from '../auth/fakes.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { entry, faultyFs, segmentNames, tempJournalDir, type FaultSwitch } from './helpers.js';

const SEG1 = '00000000000000000001.jsonl';

async function journalWith(dir: string, count: number, options: { segmentMaxBytes?: number } = {}): Promise<void> {
  const journal = await Journal.open({ dir, clock: new FakeClock(), ...options });
  for (let i = 1; i <= count; i++) await journal.append(entry(i));
  await journal.close();
}

/** Flips one bit of line `index` (0-based) of `file`, in the middle of the line. */
function flipByteOfLine(file: string, index: number): void {
  const bytes = readFileSync(file);
  let start = 0;
  for (let i = 0; i < index; i++) start = bytes.indexOf(0x0a, start) + 1;
  const end = bytes.indexOf(0x0a, start);
  const at = start + Math.floor((end - start) / 2);
  bytes[at] = bytes[at]! ^ 0x04;
  writeFileSync(file, bytes);
}

async function all(iterable: AsyncIterable<JournalRecord>): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const r of iterable) out.push(r);
  return out;
}

const corruptWarnings = (logs: ReturnType<typeof captureLogs>) =>
  logs.records().filter((r) => r.msg === 'A journal record failed its check: kept in place, its seq is not reused, readers skip it');

test('Journal.open() keeps a complete last line with one flipped byte: its seq is not reused, it is set aside and reported once', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 3);
  const path = join(dir, SEG1);
  flipByteOfLine(path, 2); // the acknowledged record of seq 3
  const damaged = readFileSync(path);
  const logs = captureLogs();
  const journal = await Journal.open({ dir, clock: new FakeClock(), logger: logs.logger });
  t.after(() => journal.close());
  assert.equal(journal.head, 3, 'the corrupt record keeps seq 3');
  assert.deepEqual(readFileSync(path), damaged, 'nothing was truncated');
  assert.equal((await journal.append(entry(4))).seq, 4);
  assert.deepEqual((await journal.read(0)).map((r) => r.seq), [1, 2, 4], 'readers skip the corrupt record');
  assert.deepEqual((await journal.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2', 'msg-4']);
  assert.equal(journal.stats().corrupt, 1);
  const warned = corruptWarnings(logs);
  assert.equal(warned.length, 1, 'reported once, however often it is read');
  assert.equal(warned[0]!.seqs, '3');
  await journal.close();
  const copies = readdirSync(join(dir, 'quarantine'));
  assert.equal(copies.length, 1);
  const damagedLine = damaged.toString('utf8').split('\n')[2];
  assert.equal(readFileSync(join(dir, 'quarantine', copies[0]!), 'utf8'), damagedLine, 'the bad bytes are copied aside');
});

test('Journal.open() still drops a torn tail: a last line without newline, and NUL-filled debris after the last good line', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 2);
  const path = join(dir, SEG1);
  const good = readFileSync(path);
  writeFileSync(path, Buffer.concat([good, Buffer.from('\0\0\0\0{"seq":3,"mess\n{"seq":4,"message_id":"x"')]));
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.equal(journal.head, 2);
  assert.deepEqual(readFileSync(path), good);
  assert.equal(journal.stats().corrupt, 0);
  assert.equal((await journal.append(entry(3))).seq, 3);
});

test('Journal with a bad line in the middle of an older segment opens, and every reader skips it: read, follow, range, recent', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 9, { segmentMaxBytes: 1000 });
  const names = segmentNames(dir);
  assert.ok(names.length >= 3, `several segments (${names.length})`);
  flipByteOfLine(join(dir, names[0]!), 1); // seq 2, in the oldest segment
  const clock = new FakeClock();
  const logs = captureLogs();
  const journal = await Journal.open({ dir, clock, logger: logs.logger, segmentMaxBytes: 1000 });
  t.after(() => journal.close());
  assert.equal(journal.head, 9);
  const expected = [1, 3, 4, 5, 6, 7, 8, 9];
  assert.deepEqual((await journal.read(0)).map((r) => r.seq), expected);
  assert.deepEqual((await all(journal.range(0))).map((r) => r.seq), expected);
  assert.deepEqual((await all(journal.recent(clock.now() - 60 * 60_000))).map((r) => r.seq), expected);
  const ac = new AbortController();
  const followed: number[] = [];
  for await (const r of journal.follow(0, ac.signal)) {
    followed.push(r.seq);
    if (r.seq === 9) ac.abort();
  }
  assert.deepEqual(followed, expected);
  // A follower positioned on the corrupt record itself moves past it.
  assert.deepEqual((await journal.read(1, 1)).map((r) => r.seq), [3]);
  assert.equal(corruptWarnings(logs).length, 1);
  assert.equal((await journal.append(entry(10))).seq, 10);
});

test('Journal with a whole segment missing opens, reports the missing seqs, and readers continue after them', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 4, { segmentMaxBytes: 100 });
  const names = segmentNames(dir);
  assert.equal(names.length, 4);
  rmSync(join(dir, names[2]!));
  const logs = captureLogs();
  const journal = await Journal.open({ dir, clock: new FakeClock(), logger: logs.logger });
  t.after(() => journal.close());
  assert.equal(journal.head, 4);
  assert.deepEqual((await journal.read(0)).map((r) => r.seq), [1, 2, 4]);
  assert.ok(logs.records().some((r) => r.msg === 'Journal records are missing; readers skip their seqs' && r.seqs === '3'));
  assert.equal(journal.stats().corrupt, 1);
});

/** A segment as the format-1 writer (before checksums) wrote it. */
function legacyLines(from: number, to: number): string {
  let text = '';
  for (let i = from; i <= to; i++) text += `${JSON.stringify({ seq: i, ...entry(i) })}\n`;
  return text;
}

test('Journal.open() migrates a format-1 journal: every record gets its checksum, seqs and content kept, VERSION written', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 0); // creates the directory
  rmSync(join(dir, 'VERSION'));
  writeFileSync(join(dir, '00000000000000000001.jsonl'), legacyLines(1, 3), { mode: 0o600 });
  writeFileSync(join(dir, '00000000000000000004.jsonl'), legacyLines(4, 5) + '{"seq":6,"message_id":"torn', { mode: 0o600 });
  // A read-only opener (events tail beside an old daemon) reads format 1 as it is, and changes nothing.
  const reader = await Journal.open({ dir, clock: new FakeClock(), readOnly: true });
  assert.deepEqual((await reader.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2', 'msg-3', 'msg-4', 'msg-5']);
  await reader.close();
  assert.equal(existsSync(join(dir, 'VERSION')), false);

  const logs = captureLogs();
  const journal = await Journal.open({ dir, clock: new FakeClock(), logger: logs.logger });
  t.after(() => journal.close());
  assert.equal(readFileSync(join(dir, 'VERSION'), 'utf8'), '2\n');
  assert.equal(journal.head, 5, 'the torn tail of the active segment is dropped as before');
  for (const name of segmentNames(dir)) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n').filter((l) => l)) assert.match(line, /,"crc32":"[0-9a-f]{8}"\}$/);
  }
  assert.deepEqual(await journal.read(0), [1, 2, 3, 4, 5].map((i) => ({ seq: i, ...entry(i) })));
  assert.equal(logs.records().filter((r) => r.msg === 'Migrated a journal segment to format 2 (a checksum per record)').length, 2);
  assert.equal((await journal.append(entry(6))).seq, 6);
});

test('Journal migration interrupted by a crash (one segment done, a temporary file left) finishes on the next open', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 2, { segmentMaxBytes: 100 }); // two format-2 segments: as if the first migration did them
  rmSync(join(dir, 'VERSION'));
  writeFileSync(join(dir, '00000000000000000003.jsonl'), legacyLines(3, 4), { mode: 0o600 });
  writeFileSync(join(dir, '00000000000000000003.jsonl.migrating'), '{"seq":3,"mess', { mode: 0o600 });
  const before = readFileSync(join(dir, SEG1));
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.deepEqual(readFileSync(join(dir, SEG1)), before, 'a migrated segment is kept byte for byte');
  assert.equal(existsSync(join(dir, '00000000000000000003.jsonl.migrating')), false);
  assert.deepEqual((await journal.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2', 'msg-3', 'msg-4']);
  assert.equal(journal.stats().corrupt, 0);
});

test('Journal.open() that cannot write VERSION (a full disk) keeps going as format 1, and the next open migrates', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 0);
  rmSync(join(dir, 'VERSION'));
  writeFileSync(join(dir, SEG1), legacyLines(1, 2), { mode: 0o600 });
  const faults: FaultSwitch = { datasyncs: 0, failOpenWx: true };
  const logs = captureLogs();
  const first = await Journal.open({ dir, clock: new FakeClock(), logger: logs.logger, fs: await faultyFs(faults) });
  assert.ok(logs.records().some((r) => r.msg === 'Cannot migrate the journal to format 2 now: read as format 1 until a later start'));
  assert.equal(existsSync(join(dir, 'VERSION')), false);
  faults.failOpenWx = false;
  assert.equal((await first.append(entry(3))).seq, 3);
  assert.deepEqual((await first.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2', 'msg-3']);
  await first.close();
  const second = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => second.close());
  assert.equal(readFileSync(join(dir, 'VERSION'), 'utf8'), '2\n');
  assert.deepEqual((await second.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2', 'msg-3']);
});
