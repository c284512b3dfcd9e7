import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import { PROBE_INTERVAL_MS } from '../../src/journal/writer.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { allLines, entry, faultyFs, segmentNames, tempJournalDir, type FaultSwitch } from './helpers.js';

const ids = (dir: string): string[] => allLines(dir).map((l) => (JSON.parse(l) as { message_id: string }).message_id);
const seqs = (dir: string): number[] => allLines(dir).map((l) => (JSON.parse(l) as { seq: number }).seq);

for (const mode of ['throw', 'partial'] as const) {
  test(`Journal.append() rejects a whole batch with JOURNAL_UNWRITABLE when the write fails (${mode}), then recovers`, async (t) => {
    const dir = tempJournalDir(t);
    const faults: FaultSwitch = { datasyncs: 0 };
    const journal = await Journal.open({ dir, clock: new FakeClock(), fs: await faultyFs(faults) });
    t.after(() => journal.close());
    await journal.append(entry(1));

    faults.failWrite = mode;
    const results = await Promise.allSettled([2, 3, 4].map((i) => journal.append(entry(i))));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r.reason as { code: string }).code, 'JOURNAL_UNWRITABLE');
      assert.match((r.reason as Error).message, /ENOSPC/);
    }
    assert.equal(journal.head, 1);
    assert.deepEqual(ids(dir), ['msg-1'], 'the failed lines were truncated away');
    assert.equal(journal.stats().failures, 1);
    assert.equal(journal.writable, false);

    faults.failWrite = undefined;
    const record = await journal.append(entry(5));
    assert.equal(journal.writable, true);
    assert.equal(record.seq, 2, 'the seqs of the failed batch are reused');
    assert.deepEqual(ids(dir), ['msg-1', 'msg-5']);
    assert.deepEqual(seqs(dir), [1, 2]);
  });
}

test('Journal.append() rejects with JOURNAL_UNWRITABLE when fdatasync fails, and nothing of the batch stays', async (t) => {
  const dir = tempJournalDir(t);
  const faults: FaultSwitch = { datasyncs: 0 };
  const journal = await Journal.open({ dir, clock: new FakeClock(), fs: await faultyFs(faults) });
  t.after(() => journal.close());
  await journal.append(entry(1));
  faults.failDatasync = true;
  await assert.rejects(journal.append(entry(2)), { code: 'JOURNAL_UNWRITABLE' });
  // The repair truncate is fsynced too: with fsync still failing it is retried before the next write.
  assert.deepEqual(seqs(dir), [1]);
  faults.failDatasync = false;
  assert.equal((await journal.append(entry(3))).seq, 2);
  assert.deepEqual(ids(dir), ['msg-1', 'msg-3']);

  const reopened = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => reopened.close());
  assert.equal(reopened.head, 2);
});

test('Journal retries the truncate of a failed batch before the next write when the truncate itself failed', async (t) => {
  const dir = tempJournalDir(t);
  const faults: FaultSwitch = { datasyncs: 0 };
  const journal = await Journal.open({ dir, clock: new FakeClock(), fs: await faultyFs(faults) });
  t.after(() => journal.close());
  await journal.append(entry(1));
  faults.failDatasync = true;
  faults.failTruncate = true;
  await assert.rejects(journal.append(entry(2)), { code: 'JOURNAL_UNWRITABLE' });
  assert.deepEqual(ids(dir), ['msg-1', 'msg-2'], 'the unsynced line is still in the file');
  assert.deepEqual(await journal.read(0), [{ ...entry(1), seq: 1 }], 'but never visible to readers');

  await assert.rejects(journal.append(entry(3)), { code: 'JOURNAL_UNWRITABLE' }, 'repair still impossible');
  faults.failDatasync = false;
  faults.failTruncate = false;
  assert.equal((await journal.append(entry(4))).seq, 2);
  assert.deepEqual(ids(dir), ['msg-1', 'msg-4']);
});

test('Journal.append() rejects with JOURNAL_UNWRITABLE when a new segment cannot be created, and rolls later', async (t) => {
  const dir = tempJournalDir(t);
  const faults: FaultSwitch = { datasyncs: 0 };
  const journal = await Journal.open({ dir, clock: new FakeClock(), segmentMaxBytes: 100, fs: await faultyFs(faults) });
  t.after(() => journal.close());
  await journal.append(entry(1));

  faults.failOpenWx = true;
  const results = await Promise.allSettled([journal.append(entry(2)), journal.append(entry(3))]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(((results[0] as PromiseRejectedResult).reason as { code: string }).code, 'JOURNAL_UNWRITABLE');
  assert.deepEqual(segmentNames(dir), ['00000000000000000001.jsonl']);

  faults.failOpenWx = false;
  assert.equal((await journal.append(entry(4))).seq, 2);
  assert.deepEqual(segmentNames(dir), ['00000000000000000001.jsonl', '00000000000000000002.jsonl']);
  assert.match(readFileSync(join(dir, '00000000000000000002.jsonl'), 'utf8'), /^\{"seq":2,"message_id":"msg-4"/);
});

test('Journal.open() fails with JOURNAL_UNWRITABLE when the directory cannot be created', async (t) => {
  const dir = tempJournalDir(t);
  const fs = {
    mkdir: async (): Promise<never> => {
      throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    },
  };
  await assert.rejects(Journal.open({ dir, clock: new FakeClock(), fs }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'JOURNAL_UNWRITABLE');
    assert.match(err.message, /EACCES/);
    return true;
  });
});

test('Journal.writable turns true again by itself once a probe write succeeds, without another append', async (t) => {
  const dir = tempJournalDir(t);
  const faults: FaultSwitch = { datasyncs: 0 };
  const clock = new FakeClock();
  const journal = await Journal.open({ dir, clock, fs: await faultyFs(faults) });
  t.after(() => journal.close());
  await journal.append(entry(1));
  faults.failWrite = 'throw';
  await assert.rejects(journal.append(entry(2)), { code: 'JOURNAL_UNWRITABLE' });
  assert.equal(journal.writable, false);

  /** Lets one probe run to its end: it then either sleeps again (one more sleep recorded) or clears the failure. */
  const probeRound = async (ms = PROBE_INTERVAL_MS): Promise<void> => {
    const sleeps = clock.sleeps.length;
    await clock.advance(ms);
    while (clock.sleeps.length === sleeps && !journal.writable) await new Promise((resolve) => setImmediate(resolve));
  };
  await probeRound();
  assert.equal(journal.writable, false, 'the probe write failed too: still failing');
  faults.failWrite = undefined;
  await clock.advance(PROBE_INTERVAL_MS - 1);
  assert.equal(journal.writable, false, 'not before the next probe');
  await probeRound(1);
  assert.equal(journal.writable, true, 'a successful probe clears the failure');
  assert.deepEqual(segmentNames(dir), ['00000000000000000001.jsonl'], 'the probe file is gone');
  assert.equal(journal.head, 1);
  assert.equal((await journal.append(entry(3))).seq, 2);
});
