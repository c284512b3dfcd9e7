/**
 * The durable journal (README.md "The journal"): append-only JSON Lines segments under `STATE_DIR/journal`,
 * one line per accepted notification or revocation, `seq` first and dense from 1. `append()` resolves only
 * once the line is on disk (durability `group`, the default: one durable write per batch of concurrent appends;
 * `each`: one per append; see writer.ts), so the receiver may answer Twitch 2xx as soon as it resolves.
 *
 * One process writes a journal at a time (the daemon holds the state directory); other processes open it
 * with `readOnly: true`.
 */
import { AbortedError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { receivedAtMs, recordTail, toRecord } from './format.js';
import { Histogram } from '../lib/metrics.js';
import { Quarantine } from './quarantine.js';
import { readRecords, type ReadPosition } from './reader.js';
import { recoverSegments, refreshSegments, type RecoverOptions } from './recovery.js';
import { SegmentSet } from './segment-set.js';
import {
  DEFAULT_SYNC_WITH,
  errMessage,
  JournalError,
  nodeJournalFs,
  type JournalEntry,
  type JournalFs,
  type JournalOptions,
  type JournalRecord,
  type JournalStats,
} from './types.js';
import { PIPELINE_DEPTH, SegmentWriter, ZERO_AHEAD_BYTES } from './writer.js';

const DEFAULT_SEGMENT_MAX = 64 * 1024 * 1024;
/** Commit (durable write) latency buckets, ms: from a fast NVMe to a struggling network disk. */
const FSYNC_BOUNDS_MS: readonly number[] = Object.freeze([0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500]);
const DEFAULT_READ_LIMIT = 1000;
/** A follower (forwarder, stream client) holds at most one batch: this many records, or about this many bytes. */
const FOLLOW_BATCH = 256;
const FOLLOW_BATCH_BYTES = 256 * 1024;
/** `range()` reads in larger chunks: it runs at start-up (dedup) and for `events tail`; each chunk costs an open, a read and a close. */
const RECENT_BATCH = 4096;
const RECENT_BATCH_BYTES = 4 * 1024 * 1024;

/** The journal. Build it with `Journal.open()`; close it with `close()`. */
export class Journal {
  readonly #options: JournalOptions;
  readonly #fs: JournalFs;
  readonly #logger: Logger;
  readonly #set: SegmentSet;
  readonly #writer: SegmentWriter | undefined;
  readonly #histogram: Histogram;
  readonly #quarantine: Quarantine;
  readonly #waiters = new Set<() => void>();
  #refreshing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: JournalOptions, fs: JournalFs, set: SegmentSet, quarantine: Quarantine) {
    this.#options = options;
    this.#quarantine = quarantine;
    this.#fs = fs;
    this.#logger = options.logger ?? silentLogger;
    this.#set = set;
    this.#histogram = new Histogram(FSYNC_BOUNDS_MS);
    this.#writer = options.readOnly
      ? undefined
      : new SegmentWriter({
          fs,
          dir: options.dir,
          set,
          logger: this.#logger,
          segmentMaxBytes: options.segmentMaxBytes ?? DEFAULT_SEGMENT_MAX,
          maxBatchEntries: options.durability === 'each' ? 1 : 4096,
          pipelineDepth: options.durability === 'each' ? 1 : (options.pipelineDepth ?? PIPELINE_DEPTH),
          syncWith: options.syncWith ?? DEFAULT_SYNC_WITH,
          zeroAheadBytes: options.zeroAheadBytes ?? ZERO_AHEAD_BYTES,
          histogram: this.#histogram,
          monotonicNow: options.monotonicNow ?? (() => performance.now()),
          clock: options.clock,
          onCommit: () => this.#wake(),
          onRoll: () => this.#pruneQuietly(),
        });
  }

  /**
   * Opens (and creates, mode 0700) the journal directory and recovers: finds the head, drops a torn last
   * line, applies retention.
   * @throws JournalError (JOURNAL_UNWRITABLE) when the directory is unusable or a segment is corrupt
   *   anywhere but in its last line.
   */
  static async open(options: JournalOptions): Promise<Journal> {
    const fs: JournalFs = { ...nodeJournalFs, ...options.fs };
    const set = new SegmentSet();
    const logger = options.logger ?? silentLogger;
    const quarantine = new Quarantine({ fs, dir: options.dir, logger, readOnly: options.readOnly ?? false });
    await recoverSegments(set, Journal.#recoverOptions(options, fs, quarantine));
    const journal = new Journal(options, fs, set, quarantine);
    if (!options.readOnly) await journal.#pruneQuietly();
    return journal;
  }

  static #recoverOptions(options: JournalOptions, fs: JournalFs, quarantine: Quarantine): RecoverOptions {
    return { fs, dir: options.dir, logger: options.logger ?? silentLogger, readOnly: options.readOnly ?? false, onCorrupt: quarantine.report };
  }

  /** The last seq on disk; 0 when nothing was ever written. */
  get head(): number {
    return this.#set.head;
  }

  /** The oldest retained seq; `head + 1` when the journal holds nothing. */
  get firstSeq(): number {
    const first = this.#set.list.find((s) => s.size > 0);
    return first ? first.firstSeq : this.#set.head + 1;
  }

  /** Whether appends are expected to succeed: open for writing, not closed, and the last batch did not fail (for /readyz). */
  get writable(): boolean {
    return this.#writer !== undefined && !this.#closing && !this.#writer.failing;
  }

  /**
   * Appends one entry; resolves with its record once the line is durably written.
   * @throws JournalError (JOURNAL_UNWRITABLE) when the write or fsync fails (nothing of this entry is kept and
   *   its seq goes to a later append), or when the journal is closed or read-only.
   * @throws TypeError when the entry cannot be serialised as JSON.
   */
  async append(entry: JournalEntry): Promise<JournalRecord> {
    const seq = await this.appendPrepared(recordTail(entry), entry.received_at);
    return toRecord(seq, entry);
  }

  /**
   * Appends one record already serialised by the caller (the receiver's fast path): `tail` is the record's
   * JSON after `{"seq":N,`, UTF-8, one line, ending with `}` (format.ts `recordTail` gives it for an entry).
   * Resolves with its seq once durably written.
   * @throws JournalError as `append()`.
   */
  appendPrepared(tail: Buffer, receivedAt: string): Promise<number> {
    if (!this.#writer) return Promise.reject(new JournalError('Cannot append to a journal opened read-only', { path: this.#options.dir }));
    if (this.#closing) return Promise.reject(new JournalError('Cannot append to the journal: it is closed', { path: this.#options.dir }));
    return this.#writer.enqueue(tail, receivedAt);
  }

  /**
   * Records with seq > `since`, in order, at most `limit` (default 1000). Starts at the oldest retained
   * record when `since` is older.
   * @throws JournalError (STATE_DIR_UNUSABLE) when a segment cannot be read.
   */
  async read(since: number, limit = DEFAULT_READ_LIMIT): Promise<JournalRecord[]> {
    if (this.#options.readOnly) await this.#refresh();
    const { records } = await readRecords(this.#fs, this.#set, { since, limit, onCorrupt: this.#quarantine.report });
    return records;
  }

  /**
   * The records after `since`, then every new one as it is committed: no gap, no duplicate. Reads in batches
   * as the consumer iterates, so a slow consumer holds at most one batch in memory. Ends (without error)
   * when `signal` aborts or the journal closes.
   */
  async *follow(since: number, signal: AbortSignal): AsyncIterable<JournalRecord> {
    let after = since;
    let position: ReadPosition | undefined;
    while (!signal.aborted) {
      const chunk = await this.#readChunk(after, position, FOLLOW_BATCH, FOLLOW_BATCH_BYTES);
      position = chunk.position;
      for (const record of chunk.records) {
        yield record;
        if (signal.aborted) return;
      }
      const moved = chunk.after > after;
      after = chunk.after;
      if (moved) continue;
      if (this.#closing) return;
      await this.#waitBeyond(after, signal);
    }
  }

  /**
   * The records with seq > `since` and ≤ `until` (default: the head now), in order, read in chunks bounded in
   * count and bytes; corrupt records are skipped (and reported).
   */
  async *range(since: number, until = this.head): AsyncIterable<JournalRecord> {
    if (this.#options.readOnly) await this.#refresh();
    let after = since;
    let position: ReadPosition | undefined;
    while (after < until) {
      const chunk = await this.#readChunk(after, position, RECENT_BATCH, RECENT_BATCH_BYTES);
      if (chunk.after <= after) return;
      position = chunk.position;
      for (const record of chunk.records) {
        if (record.seq > until) return;
        yield record;
      }
      after = chunk.after;
    }
  }

  /**
   * Records whose `received_at` is at or after `sinceReceivedAtMs` (epoch ms) and whose seq is after `afterSeq`,
   * oldest first: to rebuild dedup.
   */
  async *recent(sinceReceivedAtMs: number, afterSeq = 0): AsyncIterable<JournalRecord> {
    const start = this.#set.list.find((s) => !(s.lastReceivedAtMs < sinceReceivedAtMs));
    if (!start) return;
    for await (const record of this.range(Math.max(start.firstSeq - 1, afterSeq))) {
      if (receivedAtMs(record) >= sinceReceivedAtMs) yield record;
    }
  }

  /** Removes sealed segments past the retention limits now; returns how many were removed. */
  async prune(): Promise<number> {
    const retention = this.#options.retention;
    if (this.#options.readOnly || !retention) return 0;
    const expired = this.#set.takeExpired(retention, this.#options.clock.now());
    for (const seg of expired) {
      try {
        await this.#fs.unlink(seg.path);
        this.#logger.info('Removed an old journal segment', { path: seg.path, firstSeq: seg.firstSeq, lastSeq: seg.lastSeq });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new JournalError(`Cannot remove journal segment ${seg.path}: ${errMessage(err)}`, { cause: err, path: seg.path });
        }
      }
    }
    return expired.length;
  }

  /** Counters for /status and /metrics. */
  stats(): JournalStats {
    const c = this.#writer?.counters ?? { appends: 0, fsyncs: 0, failures: 0, lastFsyncMs: 0 };
    return {
      ...c,
      fsyncHistogram: this.#histogram.snapshot(),
      bytes: this.#set.bytes,
      segments: this.#set.list.length,
      head: this.head,
      firstSeq: this.firstSeq,
      corrupt: this.#quarantine.count,
    };
  }

  /** Writes every append already made, closes the files and ends every `follow`. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#writer?.close();
      await this.#quarantine.flush();
      this.#wake();
    })();
    return this.#closing;
  }

  /** One read of at most `limit` records and about `maxBytes` bytes after `since`, corruption reported. */
  #readChunk(since: number, position: ReadPosition | undefined, limit: number, maxBytes: number): ReturnType<typeof readRecords> {
    return readRecords(this.#fs, this.#set, { since, limit, maxBytes, position, onCorrupt: this.#quarantine.report });
  }

  async #pruneQuietly(): Promise<void> {
    try {
      await this.prune();
    } catch (err) {
      this.#logger.warn('Journal retention failed; will retry at the next roll-over', { err });
    }
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** Resolves once head > `after`, the journal closes or `signal` aborts. */
  async #waitBeyond(after: number, signal: AbortSignal): Promise<void> {
    if (this.#options.readOnly) {
      await this.#options.clock.sleep(this.#options.pollIntervalMs ?? 500, signal).catch((err: unknown) => {
        if (!(err instanceof AbortedError)) throw err;
      });
      if (!signal.aborted) await this.#refresh();
      return;
    }
    if (this.#set.head > after || this.#closing || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.#waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Read-only mode: one look at the files at a time, shared by concurrent readers. */
  #refresh(): Promise<void> {
    this.#refreshing ??= refreshSegments(this.#set, Journal.#recoverOptions(this.#options, this.#fs, this.#quarantine)).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }
}
