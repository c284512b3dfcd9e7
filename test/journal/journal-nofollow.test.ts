/**
 * The journal never follows a symbolic link in its directory: recovery, roll-over and the write probe open
 * their files with O_NOFOLLOW, so a link planted there cannot make eventsubd truncate or overwrite another file.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { segmentName } from '../../src/journal/format.js';
import { Journal } from '../../src/journal/journal.js';
import { PROBE_INTERVAL_MS } from '../../src/journal/writer.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { entry, faultyFs, tempJournalDir, type FaultSwitch } from './helpers.js';

function victim(dir: string): string {
  const path = join(dirname(dir), 'victim.txt');
  writeFileSync(path, 'a line that is not a journal record\n');
  return path;
}

test('Journal.open() refuses a segment that is a symbolic link and leaves its target untouched', async (t) => {
  const dir = tempJournalDir(t);
  mkdirSync(dir, { mode: 0o700 });
  const target = victim(dir);
  symlinkSync(target, join(dir, segmentName(1)));
  await assert.rejects(Journal.open({ dir, clock: new FakeClock() }), { code: 'JOURNAL_UNWRITABLE', message: /ELOOP/ });
  assert.equal(readFileSync(target, 'utf8'), 'a line that is not a journal record\n');
});

test('Journal roll-over refuses a symbolic link planted under the next segment\'s name; appends resume once it is gone', async (t) => {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100 });
  t.after(() => journal.close());
  await journal.append(entry(1)); // one record fills the first segment: the next append rolls
  const target = victim(dir);
  const link = join(dir, segmentName(2));
  symlinkSync(target, link);
  await assert.rejects(journal.append(entry(2)), { code: 'JOURNAL_UNWRITABLE', message: /ELOOP/ });
  assert.equal(readFileSync(target, 'utf8'), 'a line that is not a journal record\n');
  unlinkSync(link);
  assert.equal((await journal.append(entry(3))).seq, 2);
  assert.equal(readFileSync(target, 'utf8'), 'a line that is not a journal record\n');
});

test('Journal write probe refuses a symbolic link planted as .write-probe while the disk fails', async (t) => {
  const dir = tempJournalDir(t);
  const faults: FaultSwitch = { datasyncs: 0 };
  const clock = new FakeClock();
  const journal = await Journal.open({ dir, clock, fs: await faultyFs(faults) });
  t.after(() => journal.close());
  await journal.append(entry(1));
  faults.failWrite = 'throw';
  await assert.rejects(journal.append(entry(2)), { code: 'JOURNAL_UNWRITABLE' });
  const target = victim(dir);
  symlinkSync(target, join(dir, '.write-probe'));
  faults.failWrite = undefined; // a probe through the link would now succeed, and overwrite the target
  const sleeps = clock.sleeps.length;
  await clock.advance(PROBE_INTERVAL_MS);
  while (clock.sleeps.length === sleeps && !journal.writable) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(journal.writable, false, 'the probe through a link failed');
  assert.equal(readFileSync(target, 'utf8'), 'a line that is not a journal record\n');
});
