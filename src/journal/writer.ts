/**
 * Group commit. Appends queue up while a write + fdatasync is in flight; the next batch takes them all (up
 * to a size cap), gets consecutive seqs, is written as one buffer at the end of the active segment and
 * covered by one fdatasync, and then every waiter of the batch resolves.
 *
 * Failure: when the write or the fdatasync of a batch fails, every waiter of that batch is rejected with
 * JOURNAL_UNWRITABLE, the segment is truncated back to its last committed size (retried before the next
 * batch if the truncate itself fails), and the seqs of the failed batch are given to the next appends:
 * seqs stay dense and a failed line never becomes visible. Later appends simply try again, so the journal
 * recovers by itself when the disk has room again.
 */
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { formatLine, receivedAtMs, segmentName, serializeEntry, toRecord } from './format.js';
import type { LatencyHistogram } from './latency-histogram.js';
import { syncDir } from './segment-io.js';
import type { Segment, SegmentSet } from './segment-set.js';
import { errMessage, JournalError, type JournalEntry, type JournalFileHandle, type JournalFs, type JournalRecord } from './types.js';

interface Pending {
  entry: JournalEntry;
  body: string;
  resolve: (record: JournalRecord) => void;
  reject: (err: Error) => void;
}

export interface WriterOptions {
  fs: JournalFs;
  dir: string;
  set: SegmentSet;
  logger: Logger;
  segmentMaxBytes: number;
  /** 1 for durability 'each'. */
  maxBatchEntries: number;
  histogram: LatencyHistogram;
  monotonicNow: () => number;
  /** Called after each committed batch (wakes followers). */
  onCommit: () => void;
  /** Called after a batch that started a new segment (retention). Must not throw. */
  onRoll: () => Promise<void>;
}

const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/** The single writer of a journal directory: queue, batches, roll-over, repair after a failure. */
export class SegmentWriter {
  readonly #o: WriterOptions;
  #queue: Pending[] = [];
  #running: Promise<void> | undefined;
  #handle: JournalFileHandle | undefined;
  /** The active segment may hold bytes past its committed size (a failed batch): truncate before writing. */
  #dirty = false;
  #rolled = false;
  #failing = false;
  readonly counters = { appends: 0, fsyncs: 0, failures: 0, lastFsyncMs: 0 };

  constructor(options: WriterOptions) {
    this.#o = options;
  }

  /** True from a failed batch until the next batch succeeds. */
  get failing(): boolean {
    return this.#failing;
  }

  /** Queues one entry; resolves with its record once it is on disk. */
  enqueue(entry: JournalEntry): Promise<JournalRecord> {
    const body = serializeEntry(entry);
    return new Promise((resolve, reject) => {
      this.#queue.push({ entry, body, resolve, reject });
      // A microtask later, so that appends made in the same tick share the first batch.
      this.#running ??= Promise.resolve().then(() => this.#drain());
    });
  }

  /** Resolves when every queued append has been committed or rejected. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Flushes, then closes the active file. Idempotent. */
  async close(): Promise<void> {
    await this.flush();
    const active = this.#o.set.list.at(-1);
    if (this.#dirty && active) await this.#repair(active).catch(() => undefined);
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        await this.#commit(this.#takeBatch());
      }
    } finally {
      this.#running = undefined;
    }
  }

  #takeBatch(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.#queue.length && n < this.#o.maxBatchEntries && (n === 0 || bytes < MAX_BATCH_BYTES)) {
      bytes += this.#queue[n]!.body.length;
      n += 1;
    }
    return this.#queue.splice(0, n);
  }

  async #commit(batch: Pending[]): Promise<void> {
    const { set } = this.#o;
    const first = set.head + 1;
    const buf = Buffer.from(batch.map((p, i) => formatLine(first + i, p.body)).join(''), 'utf8');
    let seg: Segment | undefined;
    try {
      seg = await this.#prepare();
      const handle = this.#handle!;
      this.#dirty = true;
      await writeAll(handle, buf, seg.size);
      const t0 = this.#o.monotonicNow();
      await handle.datasync();
      const ms = this.#o.monotonicNow() - t0;
      this.counters.fsyncs += 1;
      this.counters.lastFsyncMs = ms;
      this.#o.histogram.observe(ms);
      this.#dirty = false;
    } catch (err) {
      await this.#fail(batch, seg, err);
      return;
    }
    const last = first + batch.length - 1;
    seg.size += buf.length;
    seg.lastSeq = last;
    seg.lastReceivedAtMs = receivedAtMs(batch[batch.length - 1]!.entry);
    set.head = last;
    this.counters.appends += batch.length;
    if (this.#failing) {
      this.#failing = false;
      this.#o.logger.info('Journal appends succeed again', { seq: first });
    }
    if (this.#rolled) {
      // Before resolving, so that callers see retention done; it costs one batch an unlink per old segment.
      this.#rolled = false;
      await this.#o.onRoll();
    }
    batch.forEach((p, i) => p.resolve(toRecord(first + i, p.entry)));
    this.#o.onCommit();
  }

  async #fail(batch: Pending[], seg: Segment | undefined, cause: unknown): Promise<void> {
    this.counters.failures += 1;
    if (seg && this.#dirty) await this.#repair(seg).catch(() => undefined);
    const path = seg?.path ?? this.#o.dir;
    const err = new JournalError(`Cannot append to the journal in ${path}: ${errMessage(cause)}`, { cause, path });
    if (!this.#failing) {
      this.#failing = true;
      this.#o.logger.error('Journal append failed; the batch was rejected', { err, records: batch.length, path });
    }
    for (const p of batch) p.reject(err);
  }

  /** Makes the active segment ready for the next batch: repaired, rolled over if full, open. */
  async #prepare(): Promise<Segment> {
    let seg = this.#o.set.list.at(-1);
    if (seg && this.#dirty) await this.#repair(seg);
    if (!seg || (seg.size > 0 && seg.size >= this.#o.segmentMaxBytes)) seg = await this.#roll();
    this.#handle ??= await this.#o.fs.open(seg.path, 'r+');
    return seg;
  }

  /** Truncates the active segment back to its committed size. On failure, closes the file to reopen it later. */
  async #repair(seg: Segment): Promise<void> {
    try {
      this.#handle ??= await this.#o.fs.open(seg.path, 'r+');
      await this.#handle.truncate(seg.size);
      await this.#handle.datasync();
      this.#dirty = false;
    } catch (err) {
      const handle = this.#handle;
      this.#handle = undefined;
      await handle?.close().catch(() => undefined);
      throw err;
    }
  }

  /** Seals the active segment and creates the next one, named after the next seq, durably (directory fsync). */
  async #roll(): Promise<Segment> {
    const { fs, dir, set } = this.#o;
    const old = this.#handle;
    this.#handle = undefined;
    await old?.close().catch(() => undefined);
    const firstSeq = set.head + 1;
    const path = join(dir, segmentName(firstSeq));
    let handle: JournalFileHandle;
    try {
      handle = await fs.open(path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Left by an earlier failed roll of this process: it holds nothing committed.
      handle = await fs.open(path, 'r+');
      await handle.truncate(0).catch(async (e: unknown) => {
        await handle.close().catch(() => undefined);
        throw e;
      });
    }
    try {
      await syncDir(fs, dir);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    this.#handle = handle;
    const seg: Segment = { firstSeq, path, size: 0, lastSeq: firstSeq - 1, lastReceivedAtMs: Number.NaN };
    set.list.push(seg);
    this.#rolled = true;
    return seg;
  }
}

async function writeAll(handle: JournalFileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`Short write: ${done} of ${buf.length} bytes`);
    done += bytesWritten;
  }
}
