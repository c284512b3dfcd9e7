/**
 * The pipelined group commit (a journal opened with a pipeline depth of 2; the default is 1): the next batch is written and its fdatasync issued while the previous one is
 * in flight, batches resolve in seq order, and a failed fdatasync takes every later batch in flight with it.
 * Without zeros ahead (`zeroAheadBytes: 0`), so that every segment write is a commit: journal-zero-ahead.test.ts
 * tests them.
 */
import assert from 'node:assert/strict';
import { open as fsOpen } from 'node:fs/promises';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import type { JournalFileHandle, JournalFs } from '../../src/journal/types.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { allLines, entry, isDsync, tempJournalDir } from './helpers.js';

/**
 * A file system whose segment commits wait until the test releases them, one by one, with success or an error:
 * each fdatasync, and each write to a segment opened with O_DSYNC (after its bytes reach the file, as the
 * durable part of such a write comes last).
 */
function gatedFs() {
  const gates: { release: (err?: Error) => void; sizeAtCall: number }[] = [];
  let waiting: (() => void) | undefined;
  /** Segment writes begun (a commit's first step in both modes). */
  const writes = { started: 0 };
  const fs: Partial<JournalFs> = {
    async open(path, flags, mode) {
      const real = await fsOpen(path, flags, mode);
      const segment = String(path).endsWith('.jsonl'); // not VERSION, written at open
      const gate = async (): Promise<void> => {
        const sizeAtCall = (await real.stat()).size;
        await new Promise<void>((resolve, reject) => {
          gates.push({ release: (err) => (err ? reject(err) : resolve()), sizeAtCall });
          waiting?.();
        });
      };
      const handle: JournalFileHandle = {
        read: (b, o, l, p) => real.read(b, o, l, p),
        async write(b, o, l, p) {
          if (segment) writes.started += 1;
          const r = await real.write(b, o, l, p);
          if (segment && isDsync(flags)) await gate();
          return r;
        },
        async datasync() {
          if (segment) await gate();
          return real.datasync();
        },
        sync: () => real.sync(),
        truncate: (len) => real.truncate(len),
        stat: () => real.stat(),
        close: () => real.close(),
      };
      return handle;
    },
  };
  /** Resolves once `n` fdatasyncs are waiting (released or not). */
  const syncsIssued = async (n: number): Promise<void> => {
    while (gates.length < n) await new Promise<void>((resolve) => (waiting = resolve));
  };
  return { fs, gates, syncsIssued, writes };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

for (const syncWith of ['o_dsync', 'fdatasync'] as const) {
  test(`Journal pipelines commits: a second batch is written and synced while the first commit is in flight; seq order holds (${syncWith})`, async (t) => {
    const dir = tempJournalDir(t);
    const { fs, gates, syncsIssued } = gatedFs();
    const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 0, syncWith, pipelineDepth: 2 });
    t.after(() => journal.close());

    const resolved: number[] = [];
    const track = (p: Promise<{ seq: number }>) => p.then((r) => (resolved.push(r.seq), r.seq));
    const firstBatch = [track(journal.append(entry(1))), track(journal.append(entry(2)))];
    await syncsIssued(1);
    const secondBatch = [track(journal.append(entry(3))), track(journal.append(entry(4))), track(journal.append(entry(5)))];
    await syncsIssued(2);
    assert.equal(gates.length, 2, 'the second fdatasync was issued before the first returned');
    assert.equal(allLines(dir).length, 5, 'both batches are written');
    assert.ok(gates[1]!.sizeAtCall > gates[0]!.sizeAtCall);

    gates[1]!.release();
    await settle();
    assert.deepEqual(resolved, [], 'the later batch waits for the earlier one');
    assert.equal(journal.head, 0);
    gates[0]!.release();
    assert.deepEqual(await Promise.all([...firstBatch, ...secondBatch]), [1, 2, 3, 4, 5]);
    assert.deepEqual(resolved, [1, 2, 3, 4, 5]);
    assert.equal(journal.head, 5);
    assert.equal(journal.stats().fsyncs, 2);
    assert.deepEqual((await journal.read(0)).map((r) => r.message_id), ['msg-1', 'msg-2', 'msg-3', 'msg-4', 'msg-5']);
  });

  test(`Journal pipeline: a failed commit rejects its batch and the batch in flight after it, truncates both, and seqs are reused (${syncWith})`, async (t) => {
    const dir = tempJournalDir(t);
    const { fs, gates, syncsIssued } = gatedFs();
    const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 0, syncWith, pipelineDepth: 2 });
    t.after(() => journal.close());

    const one = journal.append(entry(1));
    await syncsIssued(1);
    gates[0]!.release();
    assert.equal((await one).seq, 1);

    const failing = [journal.append(entry(2))];
    await syncsIssued(2);
    const following = [journal.append(entry(3)), journal.append(entry(4))];
    await syncsIssued(3);
    assert.equal(allLines(dir).length, 4);
    gates[2]!.release(); // the later fdatasync succeeds, but its bytes follow the failed batch's
    gates[1]!.release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    // The repair truncates and fdatasyncs before the appends are rejected; let that fdatasync through.
    await syncsIssued(4);
    gates[3]!.release();
    const results = await Promise.allSettled([...failing, ...following]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    for (const r of results) assert.equal(((r as PromiseRejectedResult).reason as { code: string }).code, 'JOURNAL_UNWRITABLE');
    assert.equal(journal.stats().failures, 1);
    assert.equal(journal.writable, false);

    assert.deepEqual(allLines(dir).map((l) => JSON.parse(l).message_id), ['msg-1'], 'nothing of the failed batches stays');
    const again = journal.append(entry(5));
    await syncsIssued(5);
    gates[4]!.release();
    assert.equal((await again).seq, 2, 'the seqs of the failed batches are reused');
    assert.equal(journal.writable, true);
    assert.deepEqual(allLines(dir).map((l) => JSON.parse(l).seq), [1, 2]);
  });

  test(`Journal durability 'each' never overlaps commits (${syncWith})`, async (t) => {
    const dir = tempJournalDir(t);
    const { fs, gates, syncsIssued } = gatedFs();
    const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 0, syncWith, durability: 'each' });
    t.after(() => journal.close());
    const all = [1, 2, 3].map((i) => journal.append(entry(i)));
    for (let i = 0; i < 3; i++) {
      await syncsIssued(i + 1);
      await settle();
      assert.equal(gates.length, i + 1, 'one fdatasync at a time');
      assert.equal(allLines(dir).length, i + 1, 'one line per write');
      gates[i]!.release();
    }
    assert.deepEqual((await Promise.all(all)).map((r) => r.seq), [1, 2, 3]);
  });

  test(`Journal by default (durability 'group') commits one batch at a time: what arrives meanwhile is the next batch, whole (${syncWith})`, async (t) => {
    const dir = tempJournalDir(t);
    const { fs, gates, syncsIssued } = gatedFs();
    const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 0, syncWith });
    t.after(() => journal.close());
    const first = journal.append(entry(1));
    await syncsIssued(1);
    const next = [2, 3, 4].map((i) => journal.append(entry(i)));
    await settle();
    await settle();
    assert.equal(gates.length, 1, 'no second fdatasync while the first is in flight');
    assert.equal(allLines(dir).length, 1, 'nor a second write');
    gates[0]!.release();
    assert.equal((await first).seq, 1);
    await syncsIssued(2);
    assert.equal(allLines(dir).length, 4, 'the three that waited are one batch');
    gates[1]!.release();
    assert.deepEqual((await Promise.all(next)).map((r) => r.seq), [2, 3, 4]);
    assert.equal(journal.stats().fsyncs, 2);
  });

  test(`Journal issues the next commit before it answers the batch just committed (${syncWith})`, async (t) => {
    const dir = tempJournalDir(t);
    const { fs, gates, syncsIssued, writes } = gatedFs();
    const journal = await Journal.open({ dir, clock: new FakeClock(), fs, zeroAheadBytes: 0, syncWith });
    t.after(() => journal.close());
    const first = journal.append(entry(1));
    await syncsIssued(1);
    const second = journal.append(entry(2));
    await settle();
    assert.equal(writes.started, 1, 'the second waits for the first commit');
    let writesWhenAnswered = 0;
    const answered = first.then((r) => ((writesWhenAnswered = writes.started), r.seq));
    gates[0]!.release();
    assert.equal(await answered, 1);
    assert.equal(writesWhenAnswered, 2, 'the second commit was under way before the first append resolved');
    await syncsIssued(2);
    gates[1]!.release();
    assert.equal((await second).seq, 2);
  });
}
