/**
 * Zeros ahead (writer.ts): the active segment is kept ahead of its last record with zeros written beforehand, so
 * that a commit overwrites allocated blocks instead of growing the file. They never show: cut when a segment is
 * sealed or the journal closes, cut by recovery after a crash together with what a batch in flight left in them
 * (its pages in any order), while a committed record damaged into a NUL byte stays corruption, kept.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open as fsOpen } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import { TORN_SPAN_MAX } from '../../src/journal/segment-io.js';
import type { JournalFileHandle, JournalFs } from '../../src/journal/types.js';
import { ZERO_AHEAD_BYTES } from '../../src/journal/writer.js';
import { captureLogs } from '../auth/fakes.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { allLines, entry, faultyFs, segmentNames, tempJournalDir } from './helpers.js';

const SEG1 = '00000000000000000001.jsonl';

/** The bytes of a closed journal holding records 1..count, and the offset just after each line. */
async function segmentOf(dir: string, count: number): Promise<{ bytes: Buffer; ends: number[] }> {
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  for (let i = 1; i <= count; i++) await journal.append(entry(i));
  await journal.close();
  const bytes = readFileSync(join(dir, SEG1));
  const ends: number[] = [];
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) ends.push(at + 1);
  return { bytes, ends };
}

const isZero = (buf: Buffer): boolean => buf.every((b) => b === 0);
const messages = (logs: ReturnType<typeof captureLogs>) => logs.records().map((r) => r.msg);

function enospc(): NodeJS.ErrnoException {
  const err = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException;
  err.code = 'ENOSPC';
  return err;
}

type Write = JournalFileHandle['write'];

/** A file system whose writes of zeros longer than 1 KiB (the zeros ahead) go to `onZeros`; other writes pass. */
async function zeroWritesFs(onZeros: (write: Write, ...args: Parameters<Write>) => ReturnType<Write>): Promise<Partial<JournalFs>> {
  const base = await faultyFs({ datasyncs: 0 });
  return {
    async open(path, flags, mode) {
      const handle = await base.open!(path, flags, mode);
      const write: Write = (b, o, l, p) => handle.write(b, o, l, p);
      return {
        ...handle,
        read: (b, o, l, p) => handle.read(b, o, l, p),
        write: (b, o, l, p) => (l > 1024 && isZero(b.subarray(o, o + l)) ? onZeros(write, b, o, l, p) : write(b, o, l, p)),
      };
    },
  };
}

test('Journal keeps zeros written ahead of the active segment while open, and cuts them when it closes', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  for (let i = 1; i <= 50; i++) await journal.append(entry(i));
  const path = join(dir, SEG1);
  const open = readFileSync(path);
  const records = open.subarray(0, open.lastIndexOf(0x0a) + 1);
  assert.equal(records.toString('utf8').split('\n').length, 51, 'the 50 records, then only zeros');
  assert.ok(open.length >= records.length + ZERO_AHEAD_BYTES / 2, `zeros ahead: ${open.length - records.length} bytes`);
  assert.ok(isZero(open.subarray(records.length)));
  await journal.close();
  assert.deepEqual(readFileSync(path), records, 'closed, the segment ends with its last record');
  const again = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => again.close());
  assert.equal(again.head, 50);
  assert.deepEqual((await again.read(0)).map((r) => r.message_id), Array.from({ length: 50 }, (_, i) => `msg-${i + 1}`));
});

test('Journal keeps writing zeros ahead as the segment fills, and seals a full segment without them', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock(), zeroAheadBytes: 2048, segmentMaxBytes: 16 * 1024 });
  t.after(() => journal.close());
  for (let i = 1; i <= 120; i++) await journal.append(entry(i));
  const names = segmentNames(dir);
  assert.ok(names.length >= 3, `rolled over: ${names.join(', ')}`);
  for (const name of names.slice(0, -1)) {
    const bytes = readFileSync(join(dir, name));
    assert.equal(bytes.at(-1), 0x0a, `${name} is sealed ending with its last record`);
    assert.equal(bytes.indexOf(0), -1, `${name} holds no zeros`);
  }
  const active = readFileSync(join(dir, names.at(-1)!));
  const end = active.lastIndexOf(0x0a) + 1;
  assert.ok(active.length > end && isZero(active.subarray(end)), 'the active one has its zeros ahead');
  assert.equal(allLines(dir).length, 120);
  assert.deepEqual((await journal.read(0)).map((r) => r.seq), Array.from({ length: 120 }, (_, i) => i + 1));
});

test('Journal.open() after a crash cuts the zeros ahead of the last record: nothing is lost, the next seq follows', async (t) => {
  const live = tempJournalDir(t);
  const journal = await Journal.open({ dir: live, clock: new FakeClock() });
  t.after(() => journal.close());
  for (let i = 1; i <= 7; i++) await journal.append(entry(i));
  // The files as a kill -9 would leave them: the journal never closed.
  const dir = join(dirname(live), 'crashed');
  cpSync(live, dir, { recursive: true });
  const records = readFileSync(join(dir, SEG1)).subarray(0, readFileSync(join(dir, SEG1)).lastIndexOf(0x0a) + 1);
  const logs = captureLogs();
  const reopened = await Journal.open({ dir, clock: new FakeClock(), logger: logs.logger });
  t.after(() => reopened.close());
  assert.equal(reopened.head, 7);
  assert.equal(reopened.stats().corrupt, 0);
  assert.deepEqual(readFileSync(join(dir, SEG1)), records, 'cut back to the last record');
  assert.ok(messages(logs).includes("Cut the zeros written ahead of the journal's last record (the last stop was not clean)"), messages(logs).join('; '));
  assert.equal((await reopened.append(entry(8))).seq, 8);
});

test('Journal.open() drops a batch torn over the zeros ahead (a sector never written, good lines after it): never acknowledged, not corruption', async (t) => {
  const dir = tempJournalDir(t);
  const { bytes, ends } = await segmentOf(dir, 12);
  const goodEnd = ends[2]!; // records 1-3 committed; 4-12 were the batch in flight
  const hole = Math.ceil((goodEnd + 1) / 512) * 512;
  assert.ok(hole + 512 < ends[8]!, 'whole records follow the missing sector');
  const torn = Buffer.concat([bytes, Buffer.alloc(8192)]);
  torn.fill(0, hole, hole + 512);
  writeFileSync(join(dir, SEG1), torn);
  const logs = captureLogs();
  const journal = await Journal.open({ dir, clock: new FakeClock(), logger: logs.logger });
  t.after(() => journal.close());
  assert.equal(journal.head, 3);
  assert.equal(journal.stats().corrupt, 0);
  assert.deepEqual(readFileSync(join(dir, SEG1)), bytes.subarray(0, goodEnd));
  assert.ok(messages(logs).includes('Dropped a torn tail from the journal (a write cut short by a crash)'), messages(logs).join('; '));
  assert.equal((await journal.append(entry(99))).seq, 4);
});

test('Journal.open() keeps a committed record with one byte damaged into a NUL, and the records after it, as corruption', async (t) => {
  const dir = tempJournalDir(t);
  const { bytes, ends } = await segmentOf(dir, 8);
  const damaged = Buffer.from(bytes);
  let at = ends[3]! + 40; // inside record 5
  if (at % 512 === 0 || at % 512 === 511) at += 2;
  damaged[at] = 0;
  writeFileSync(join(dir, SEG1), damaged);
  const journal = await Journal.open({ dir, clock: new FakeClock(), logger: captureLogs().logger });
  t.after(() => journal.close());
  assert.equal(journal.head, 8, 'records 6-8 were acknowledged: kept');
  assert.equal(journal.stats().corrupt, 1);
  assert.deepEqual(readFileSync(join(dir, SEG1)), damaged, 'nothing truncated');
  assert.deepEqual((await journal.read(0)).map((r) => r.seq), [1, 2, 3, 4, 6, 7, 8]);
});

test('Journal.open() keeps records lying further past zeros than a crash can leave (TORN_SPAN_MAX): corruption, not a torn tail', async (t) => {
  const dir = tempJournalDir(t);
  const { bytes, ends } = await segmentOf(dir, 5);
  const goodEnd = ends[2]!;
  const gapEnd = Math.ceil((goodEnd + TORN_SPAN_MAX) / 512) * 512;
  const path = join(dir, SEG1);
  writeFileSync(path, bytes.subarray(0, goodEnd));
  const handle = await fsOpen(path, 'r+');
  await handle.truncate(gapEnd); // zeros (a hole) up to a sector boundary
  await handle.write(Buffer.concat([Buffer.from('\n'), bytes.subarray(goodEnd)]), 0, undefined, gapEnd);
  await handle.close();
  const journal = await Journal.open({ dir, clock: new FakeClock(), logger: captureLogs().logger });
  t.after(() => journal.close());
  assert.equal(journal.head, 5);
  assert.equal(journal.stats().corrupt, 1, 'the zeros are reported');
  assert.deepEqual((await journal.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2', 'msg-3', 'msg-4', 'msg-5']);
  assert.equal(statSync(path).size, gapEnd + 1 + bytes.length - goodEnd, 'nothing truncated');
});

test('Journal never writes a batch where zeros are still being written: it waits for them', async (t) => {
  const dir = tempJournalDir(t);
  const held: Array<() => void> = [];
  let heldNow: (() => void) | undefined;
  const fs: Partial<JournalFs> = {
    async open(path, flags, mode) {
      const real = await fsOpen(path, flags, mode);
      const handle: JournalFileHandle = {
        read: (b, o, l, p) => real.read(b, o, l, p),
        async write(b, o, l, p) {
          // Zeros ahead are held before they reach the file: released late, they would land over a batch.
          if (String(path).endsWith('.jsonl') && isZero(b.subarray(o, o + l))) {
            await new Promise<void>((resolve) => {
              held.push(resolve);
              heldNow?.();
            });
          }
          return real.write(b, o, l, p);
        },
        datasync: () => real.datasync(),
        sync: () => real.sync(),
        truncate: (len) => real.truncate(len),
        stat: () => real.stat(),
        close: () => real.close(),
      };
      return handle;
    },
  };
  const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 4096 });
  t.after(() => journal.close());
  assert.equal((await journal.append(entry(1))).seq, 1);
  while (held.length === 0) await new Promise<void>((resolve) => (heldNow = resolve));
  let second = false;
  const appended = journal.append(entry(2)).then((r) => ((second = true), r.seq));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(second, false, 'the batch waits while zeros are written over its place');
  held.shift()!();
  assert.equal(await appended, 2);
  assert.deepEqual((await journal.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2']);
  assert.equal(allLines(dir).length, 2);
});

test('Journal writes the zeros ahead in chunks of 256 KiB, one after the other, so a commit never waits behind all of them', async (t) => {
  const dir = tempJournalDir(t);
  const writes: Array<[number, number]> = [];
  const fs = await zeroWritesFs((write, buffer, offset, length, position) => {
    writes.push([position, length]);
    return write(buffer, offset, length, position);
  });
  const journal = await Journal.open({ dir, clock: new FakeClock(), fs });
  t.after(() => journal.close());
  await journal.append(entry(1));
  await journal.append(entry(2));
  const end = readFileSync(join(dir, SEG1)).indexOf(0);
  assert.ok(writes.length >= ZERO_AHEAD_BYTES / (256 * 1024), `${writes.length} writes`);
  assert.ok(writes.every(([, length]) => length <= 256 * 1024), 'none larger than 256 KiB');
  writes.forEach(([position, length], i) => {
    assert.equal(position, i === 0 ? writes[0]![0] : writes[i - 1]![0] + writes[i - 1]![1], 'contiguous, in order');
    assert.ok(length > 0);
  });
  assert.ok(writes[0]![0] <= end, 'from the end of the records');
  assert.equal(writes.at(-1)![0] + writes.at(-1)![1] - writes[0]![0], ZERO_AHEAD_BYTES);
});

test('Journal keeps committing when the zeros ahead cannot be written (a full disk), growing the file instead', async (t) => {
  const dir = tempJournalDir(t);
  let zeroWrites = 0;
  const fs = await zeroWritesFs(() => {
    zeroWrites += 1;
    throw enospc();
  });
  const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 4096 });
  t.after(() => journal.close());
  for (let i = 1; i <= 30; i++) await journal.append(entry(i));
  assert.equal(zeroWrites, 1, 'not tried again on this segment');
  assert.equal(journal.stats().failures, 0);
  const bytes = readFileSync(join(dir, SEG1));
  assert.equal(bytes.indexOf(0), -1);
  assert.equal(allLines(dir).length, 30);
});

test('Journal writes no zeros ahead on a file system with less than 64 MiB free beyond them, and checks again at the next segment', async (t) => {
  const dir = tempJournalDir(t);
  let free = 60 * 1024 * 1024;
  const asked: string[] = [];
  const fs: Partial<JournalFs> = {
    async statfs(path) {
      asked.push(path);
      return { bavail: free / 4096, bsize: 4096 };
    },
  };
  const journal = await Journal.open({ dir, clock: new FakeClock(), fs, segmentMaxBytes: 64 * 1024 });
  t.after(() => journal.close());
  for (let i = 1; i <= 20; i++) await journal.append(entry(i));
  assert.equal(asked.length, 1, 'asked once for this segment');
  assert.equal(asked[0], dir);
  const bytes = readFileSync(join(dir, SEG1));
  assert.equal(bytes.indexOf(0), -1, 'no zeros on a disk close to full');
  assert.equal(allLines(dir).length, 20);
  free = 1024 * 1024 * 1024;
  while (segmentNames(dir).length < 2) await journal.append(entry(journal.head + 1));
  await journal.append(entry(journal.head + 1));
  assert.equal(asked.length, 2, 'asked again for the next segment');
  const active = readFileSync(join(dir, segmentNames(dir).at(-1)!));
  assert.ok(active.length > 60 * 1024 && isZero(active.subarray(active.lastIndexOf(0x0a) + 1)), 'zeros ahead once space is there');
});

test('Journal cuts off the part of the zeros ahead written before the disk filled, before the next batch', async (t) => {
  const dir = tempJournalDir(t);
  let partial = 0;
  // The first write of the zeros fits in part, the rest finds the disk full (write(2) returns short).
  const fs = await zeroWritesFs((write, buffer, offset, _length, position) => {
    if (partial++ === 0) return write(buffer, offset, 1024, position);
    throw enospc();
  });
  const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 64 * 1024 });
  t.after(() => journal.close());
  await journal.append(entry(1));
  await journal.append(entry(2));
  const path = join(dir, SEG1);
  assert.equal(partial, 2, 'the zeros were written in part, then refused');
  const bytes = readFileSync(path);
  assert.equal(bytes.indexOf(0), -1, 'the zeros written before the disk filled are gone');
  assert.equal(allLines(dir).length, 2);
});

test('A read-only journal follows a live one through its zeros ahead', async (t) => {
  const dir = tempJournalDir(t);
  const writer = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => writer.close());
  for (let i = 1; i <= 3; i++) await writer.append(entry(i));
  const reader = await Journal.open({ dir, clock: new FakeClock(), readOnly: true });
  t.after(() => reader.close());
  assert.deepEqual((await reader.read(0)).map((r) => r.seq), [1, 2, 3]);
  for (let i = 4; i <= 6; i++) await writer.append(entry(i));
  assert.deepEqual((await reader.read(0)).map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
  assert.equal(reader.stats().corrupt, 0);
});
