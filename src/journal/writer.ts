/**
 * Group commit. Appends queue up; each batch takes every queued append (up to a size cap), gets consecutive
 * seqs, is written as one buffer at the end of the active segment and made durable by one commit, and then every
 * waiter of the batch resolves. A commit is that write itself when the segment is open with O_DSYNC (the
 * default), else the write and an fdatasync. The next batch's commit is issued as soon as the last one returns,
 * before its waiters are answered. With a pipeline depth above 1 (PIPELINE_DEPTH says why the default is 1), the
 * next batch is committed while the previous commit is still in flight; batches still resolve strictly in order.
 *
 * Zeros ahead: the active segment is kept `zeroAheadBytes` ahead of its last batch with zeros written and made
 * durable beforehand (ZERO_AHEAD_BYTES), so that a commit overwrites blocks the file already has instead of
 * growing it: on ext4 growing a file makes every commit also commit the file system's journal (the new size),
 * measured at about a third more time and CPU per commit (BENCHMARKS.md, "What bounds the receiver"). The zeros
 * are cut off when the segment is sealed and when the journal closes; after a crash, recovery cuts them
 * (recovery.ts), together with what a batch in flight left in them.
 *
 * Failure: when the write or the fdatasync (the commit) of a batch fails, that batch and every later batch in flight are
 * rejected with JOURNAL_UNWRITABLE, the segment is truncated back to its last committed size (retried before
 * the next batch if the truncate itself fails), and their seqs are given to the next appends: seqs stay dense
 * and a failed line never becomes visible. Later appends simply try again, so the journal recovers by itself
 * when the disk has room again.
 */
import { join } from 'node:path';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { crc32 } from 'node:zlib';
import { CRC_FIELD, segmentName } from './format.js';
import type { Histogram } from '../lib/metrics.js';
import { syncDir, writeAll } from './segment-io.js';
import type { Segment, SegmentSet } from './segment-set.js';
import { errMessage, JournalError, OPEN_CREATE_DSYNC, OPEN_REPLACE, OPEN_WRITE, OPEN_WRITE_DSYNC, type JournalFileHandle, type JournalFs } from './types.js';

interface Pending {
  /** The record's JSON after `{"seq":N,` (UTF-8, closing brace included): see format.ts `recordTail`. */
  tail: Buffer;
  /** The record's `received_at`, for the segment's age (retention). */
  receivedAt: string;
  resolve: (seq: number) => void;
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
  /** Batches whose fdatasync may overlap: PIPELINE_DEPTH, or 1 for durability 'each'. */
  pipelineDepth: number;
  /** `o_dsync`: the active segment is opened with O_DSYNC and each batch's write is its commit; else write, then fdatasync. */
  syncWith: 'o_dsync' | 'fdatasync';
  histogram: Histogram;
  monotonicNow: () => number;
  /** Paces the probe that clears `failing` once the directory takes writes again (see PROBE_INTERVAL_MS). */
  clock: Clock;
  /** Zeros kept written ahead of the active segment's last batch; 0: none, the file grows with each commit. */
  zeroAheadBytes: number;
  /** Called after each committed batch (wakes followers). */
  onCommit: () => void;
  /** Called after a batch that started a new segment (retention). Must not throw. */
  onRoll: () => Promise<void>;
}

const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/**
 * Zeros written ahead of the active segment's end, by default; the next zeros are written once less than half
 * of them is left, while the batches go on (a batch never overlaps zeros still being written). 2 MiB: about
 * 3,000 notifications, one growth of the file (one file-system journal commit) per about 200 commits.
 */
export const ZERO_AHEAD_BYTES = 2 * 1024 * 1024;
/**
 * The zeros ahead are written this much at a time. Measured on ext4, 10 KB O_DSYNC commits back to back while
 * 2 MiB of zeros are written ahead every 1 MiB: one 2 MiB write held commits up to 8-75 ms (p99.9 8.4-8.7 ms);
 * 128-256 KiB chunks, p99.9 2.9-5.3 ms; 32 KiB chunks cost more CPU per commit and held them as long as one write.
 */
const ZERO_CHUNK_BYTES = 256 * 1024;
/** Free space left beyond the zeros ahead, or none are written (#writeZeros). */
const ZERO_HEADROOM_BYTES = 64 * 1024 * 1024;
/**
 * Batches written whose fdatasync may still be running, by default. 1: a batch takes everything that arrived
 * while the previous one committed. Measured on ext4 (BENCHMARKS.md, bench/profile-receiver.mjs), letting two
 * overlap halves the batches (8 notifications per fdatasync at 32 connections instead of 15), and each
 * fdatasync costs the same CPU whatever it carries (about 0.2 ms of kernel time here): 10-20 µs more CPU per
 * notification, 10-15% fewer notifications a second, and a p99 at 5,000 req/s of 27-121 ms instead of 11-19 ms.
 */
export const PIPELINE_DEPTH = 1;
/**
 * While appends fail, a probe file is written and fdatasynced this often; when that succeeds `failing` clears,
 * so /readyz turns ready again without waiting for a notification (a load balancer sends none to an unready one).
 */
export const PROBE_INTERVAL_MS = 2_000;
const PROBE_FILE = '.write-probe';
const PROBE_BYTES = 4096;

/** A batch written to the active segment, its fdatasync under way (`synced` never rejects). */
interface InFlight {
  batch: Pending[];
  first: number;
  bytes: number;
  seg: Segment;
  synced: Promise<unknown>;
}

/** The single writer of a journal directory: queue, pipelined batches, roll-over, repair after a failure. */
export class SegmentWriter {
  readonly #o: WriterOptions;
  #queue: Pending[] = [];
  readonly #inFlight: InFlight[] = [];
  #running: Promise<void> | undefined;
  #arrival: Promise<boolean> | undefined;
  #wakeOnArrival: ((arrived: boolean) => void) | undefined;
  #handle: JournalFileHandle | undefined;
  /** Bytes written past the active segment's committed size by batches in flight. */
  #pendingBytes = 0;
  /** The active segment may hold bytes past its committed size (a failed batch): truncate before writing. */
  #dirty = false;
  #rolled = false;
  #failing = false;
  /** End of what was written to the active file (committed, in flight, or zeros ahead). */
  #allocEnd = 0;
  /** Zeros being written from `#allocEnd` on (which stays there meanwhile: see #start); never rejects. */
  #zeroing: Promise<void> | undefined;
  /** Zeros ahead failed (a full disk): not tried again on this segment until it is repaired or rolled. */
  #zeroFailed = false;
  #probeStop: AbortController | undefined;
  readonly counters = { appends: 0, fsyncs: 0, failures: 0, lastFsyncMs: 0 };

  constructor(options: WriterOptions) {
    this.#o = options;
  }

  get #writeFlags(): number {
    return this.#o.syncWith === 'o_dsync' ? OPEN_WRITE_DSYNC : OPEN_WRITE;
  }

  /** True from a failed batch until the next batch succeeds. */
  get failing(): boolean {
    return this.#failing;
  }

  /** Queues one record (its JSON after `{"seq":N,`); resolves with its seq once it is on disk. */
  enqueue(tail: Buffer, receivedAt: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ tail, receivedAt, resolve, reject });
      if (this.#wakeOnArrival) {
        this.#wakeOnArrival(true);
        this.#wakeOnArrival = undefined;
        this.#arrival = undefined;
      }
      // After the event loop's current I/O phase, so that every request read in it shares the first batch
      // (a microtask would start a batch of one after the first request's callback).
      this.#running ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#drain());
    });
  }

  /** Resolves when every queued append has been committed or rejected. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Flushes, then closes the active file. Idempotent. */
  async close(): Promise<void> {
    this.#probeStop?.abort();
    await this.flush();
    await this.#zeroing;
    const active = this.#o.set.list.at(-1);
    if (this.#dirty && active) await this.#repair(active).catch(() => undefined);
    // The zeros ahead go: the file ends with its last record, as an appended one does (a failure leaves them to
    // the next start's recovery).
    if (this.#handle && active && this.#allocEnd > active.size) await this.#trim(this.#handle, active).catch(() => undefined);
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 || this.#inFlight.length > 0) {
        const room = this.#inFlight.length < this.#o.pipelineDepth;
        if (room && this.#queue.length > 0) {
          await this.#start(this.#takeBatch());
          continue;
        }
        // With room for another batch, the first append to arrive starts it, even before the oldest commit returns.
        if (room && (await Promise.race([this.#inFlight[0]!.synced.then(() => false), this.#nextArrival()]))) continue;
        await this.#settleOldest(true);
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** Resolves true at the next `enqueue()`. */
  #nextArrival(): Promise<boolean> {
    return (this.#arrival ??= new Promise<boolean>((resolve) => (this.#wakeOnArrival = resolve)));
  }

  #takeBatch(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.#queue.length && n < this.#o.maxBatchEntries && (n === 0 || bytes < MAX_BATCH_BYTES)) {
      bytes += this.#queue[n]!.tail.length;
      n += 1;
    }
    return this.#queue.splice(0, n);
  }

  /** Writes a batch after those in flight and issues its fdatasync; a failure rejects it (and those in flight). */
  async #start(batch: Pending[]): Promise<void> {
    const first = this.#o.set.head + 1 + this.#inFlight.reduce((n, f) => n + f.batch.length, 0);
    let buf: Buffer | undefined;
    let seg: Segment | undefined;
    let written: Promise<void> | undefined;
    try {
      buf = formatBatch(batch, first);
      seg = await this.#prepare();
      const position = seg.size + this.#pendingBytes;
      const end = position + buf.length;
      // Zeros still being written there would land over the batch. So #allocEnd, where they start, stays put
      // while they are written.
      if (this.#zeroing && end > this.#allocEnd) await this.#zeroing;
      this.#pendingBytes += buf.length;
      written = writeAll(this.#handle!, buf, position);
      if (end > this.#allocEnd) this.#allocEnd = end;
      this.#zeroAhead(end);
      // With O_DSYNC the write is the commit: it is in flight now, like an fdatasync (its failure is the batch's).
      if (this.#o.syncWith !== 'o_dsync') await written;
    } catch (err) {
      // The batches in flight before this one may still commit: settle them first, then cut this one off.
      while (this.#inFlight.length > 0) await this.#settleOldest();
      await this.#failAll(seg, err, batch);
      return;
    }
    const t0 = this.#o.monotonicNow();
    const synced = (this.#o.syncWith === 'o_dsync' ? written : this.#handle!.datasync()).then(
      () => {
        const ms = this.#o.monotonicNow() - t0;
        this.counters.fsyncs += 1;
        this.counters.lastFsyncMs = ms;
        this.#o.histogram.observe(ms);
        return undefined;
      },
      (err: unknown) => err ?? new Error('fdatasync failed'),
    );
    this.#inFlight.push({ batch, first, bytes: buf.length, seg, synced });
  }

  /**
   * Waits for the oldest batch in flight and resolves its appends, or rejects it and every later one. With
   * `startNext`, the next batch (what queued meanwhile) is written and its fdatasync issued before the appends
   * resolve: the disk works while the event loop answers the batch just committed, and the commit cycle does not
   * include those answers.
   */
  async #settleOldest(startNext = false): Promise<void> {
    const oldest = this.#inFlight[0]!;
    const err = await oldest.synced;
    if (err !== undefined) {
      await this.#failAll(oldest.seg, err);
      return;
    }
    this.#inFlight.shift();
    const { batch, first, bytes, seg } = oldest;
    const { set } = this.#o;
    const last = first + batch.length - 1;
    seg.size += bytes;
    this.#pendingBytes -= bytes;
    seg.lastSeq = last;
    seg.lastReceivedAtMs = Date.parse(batch[batch.length - 1]!.receivedAt);
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
    const next = startNext && this.#queue.length > 0 && this.#inFlight.length < this.#o.pipelineDepth ? this.#start(this.#takeBatch()) : undefined;
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(first + i);
    this.#o.onCommit();
    await next;
  }

  /**
   * Rejects every batch in flight (the oldest failed, and the later ones' bytes follow its bytes) and
   * `notStarted`, once every fdatasync they issued has returned, then truncates the segment back to its
   * committed size. Callers settle the batches that may still commit first.
   */
  async #failAll(seg: Segment | undefined, cause: unknown, notStarted: Pending[] = []): Promise<void> {
    const failed = this.#inFlight.splice(0);
    await Promise.all(failed.map((f) => f.synced));
    const rejected = [...failed.flatMap((f) => f.batch), ...notStarted];
    this.#pendingBytes = 0;
    this.#dirty = true;
    this.counters.failures += 1;
    if (seg) await this.#repair(seg).catch(() => undefined);
    const path = seg?.path ?? this.#o.dir;
    const err = new JournalError(`Cannot append to the journal in ${path}: ${errMessage(cause)}`, { cause, path });
    if (!this.#failing) {
      this.#failing = true;
      this.#o.logger.error('Journal append failed; the batch was rejected', { err, records: rejected.length, path });
      this.#probeUntilWritable();
    }
    for (const p of rejected) p.reject(err);
  }

  /** Every PROBE_INTERVAL_MS while failing and idle: a probe write that succeeds clears `failing`. */
  #probeUntilWritable(): void {
    if (this.#probeStop) return;
    const stop = new AbortController();
    this.#probeStop = stop;
    const loop = async (): Promise<void> => {
      while (this.#failing && !stop.signal.aborted) {
        await this.#o.clock.sleep(PROBE_INTERVAL_MS, stop.signal);
        if (!this.#failing || this.#running || !(await this.#probe())) continue;
        this.#failing = false;
        this.#o.logger.info('Journal directory takes writes again');
      }
    };
    loop()
      .catch(() => undefined)
      .finally(() => {
        if (this.#probeStop === stop) this.#probeStop = undefined;
      });
  }

  /** Writes, fdatasyncs and removes a small file next to the segments; true when all of it worked. */
  async #probe(): Promise<boolean> {
    const path = join(this.#o.dir, PROBE_FILE);
    let handle: JournalFileHandle | undefined;
    try {
      handle = await this.#o.fs.open(path, OPEN_REPLACE, 0o600);
      await writeAll(handle, Buffer.alloc(PROBE_BYTES), 0);
      await handle.datasync();
      return true;
    } catch {
      return false;
    } finally {
      await handle?.close().catch(() => undefined);
      await this.#o.fs.unlink(path).catch(() => undefined);
    }
  }

  /**
   * Makes the active segment ready for the next batch: repaired, rolled over if full, open. A roll waits for
   * the batches in flight first, since it closes the segment they are written to.
   */
  async #prepare(): Promise<Segment> {
    let seg = this.#o.set.list.at(-1);
    if (seg && this.#dirty) await this.#repair(seg);
    if (!seg || (seg.size > 0 && seg.size + this.#pendingBytes >= this.#o.segmentMaxBytes)) {
      while (this.#inFlight.length > 0) await this.#settleOldest();
      seg = this.#o.set.list.at(-1);
      if (seg && this.#dirty) await this.#repair(seg);
      if (!seg || (seg.size > 0 && seg.size >= this.#o.segmentMaxBytes)) seg = await this.#roll();
    }
    if (!this.#handle) {
      // Recovery (or a repair) left the file ending with its last record.
      this.#handle = await this.#o.fs.open(seg.path, this.#writeFlags);
      this.#allocEnd = seg.size;
    }
    return seg;
  }

  /**
   * Writes the next zeros ahead once a batch ending at `end` has left less than half of them, without waiting
   * for them. Up to the segment's size limit only: the batch that crosses it grows the file, and is its last.
   */
  #zeroAhead(end: number): void {
    const ahead = this.#o.zeroAheadBytes;
    if (ahead <= 0 || this.#zeroing || this.#zeroFailed || this.#allocEnd - end >= ahead / 2) return;
    const from = this.#allocEnd;
    const to = Math.min(this.#o.segmentMaxBytes, from + ahead);
    if (to <= from) return;
    const handle = this.#handle!;
    this.#zeroing = this.#writeZeros(handle, from, to).then(
      () => {
        if (this.#handle === handle) this.#allocEnd = Math.max(this.#allocEnd, to);
        this.#zeroing = undefined;
      },
      async (err: unknown) => {
        // Commits still work, growing the file; the next repair or segment tries again. What part of the zeros
        // was written is cut off first, before any batch writes there: a full disk gets its space back.
        this.#zeroFailed = true;
        await handle.truncate(from).catch(() => undefined);
        this.#zeroing = undefined;
        this.#o.logger.debug('No zeros written ahead in the journal segment', { err });
      },
    );
  }

  /**
   * Writes zeros over [from, to) once the file system keeps ZERO_HEADROOM_BYTES free beyond them: on a disk close
   * to full, the zeros would take the last space the dedup snapshot and the token cache need, and would keep
   * accepting notifications past the point where a full disk answers 503.
   */
  async #writeZeros(handle: JournalFileHandle, from: number, to: number): Promise<void> {
    const { fs, dir } = this.#o;
    if (fs.statfs) {
      const { bavail, bsize } = await fs.statfs(dir);
      const free = Number(bavail) * Number(bsize);
      if (free < to - from + ZERO_HEADROOM_BYTES) throw new Error(`only ${free} bytes free in ${dir}`);
    }
    // In chunks: the file system serialises writes to one file, and a commit issued meanwhile waits for the
    // write in progress, not for all the zeros.
    const zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, to - from));
    for (let at = from; at < to; at += zeros.length) await writeAll(handle, zeros.subarray(0, Math.min(zeros.length, to - at)), at);
  }

  /** Cuts the zeros ahead off `seg` (its committed size), durably. */
  async #trim(handle: JournalFileHandle, seg: Segment): Promise<void> {
    await handle.truncate(seg.size);
    await handle.datasync();
    this.#allocEnd = seg.size;
  }

  /** Truncates the active segment back to its committed size. On failure, closes the file to reopen it later. */
  async #repair(seg: Segment): Promise<void> {
    await this.#zeroing;
    try {
      if (!this.#handle) {
        this.#handle = await this.#o.fs.open(seg.path, this.#writeFlags);
        this.#allocEnd = seg.size;
      }
      await this.#trim(this.#handle, seg);
      this.#zeroFailed = false;
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
    await this.#zeroing;
    const old = this.#handle;
    const sealed = set.list.at(-1);
    // Sealed without its zeros, before the next segment exists: recovery looks for a torn tail in the last one only.
    if (old && sealed && this.#allocEnd > sealed.size) await this.#trim(old, sealed);
    this.#handle = undefined;
    await old?.close().catch(() => undefined);
    const firstSeq = set.head + 1;
    const path = join(dir, segmentName(firstSeq));
    let handle: JournalFileHandle;
    try {
      handle = await fs.open(path, this.#o.syncWith === 'o_dsync' ? OPEN_CREATE_DSYNC : 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Left by an earlier failed roll of this process: it holds nothing committed.
      handle = await fs.open(path, this.#writeFlags);
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
    this.#allocEnd = 0;
    this.#zeroFailed = false;
    const seg: Segment = { firstSeq, path, size: 0, lastSeq: firstSeq - 1, lastReceivedAtMs: Number.NaN };
    set.list.push(seg);
    this.#rolled = true;
    return seg;
  }
}

/** `,"crc32":"` + 8 hex digits + `"}` + newline */
const LINE_END_LENGTH = CRC_FIELD.length + 11;

/**
 * The batch's lines as one buffer, each `{"seq":N,` + its tail with the checksum field before the closing
 * brace (format.ts `checksummed`, computed here over bytes: the tail is already UTF-8).
 */
function formatBatch(batch: readonly Pending[], first: number): Buffer {
  let total = 0;
  for (let i = 0; i < batch.length; i++) total += 8 + String(first + i).length + batch[i]!.tail.length - 1 + LINE_END_LENGTH;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < batch.length; i++) {
    const tail = batch[i]!.tail;
    const prefixStart = at;
    at += out.write(`{"seq":${first + i},`, at, 'latin1');
    const crc = crc32(tail, crc32(out.subarray(prefixStart, at)));
    at += tail.copy(out, at, 0, tail.length - 1);
    at += out.write(`${CRC_FIELD}${crc.toString(16).padStart(8, '0')}"}\n`, at, 'latin1');
  }
  return out;
}
