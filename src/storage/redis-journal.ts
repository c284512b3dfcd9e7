/**
 * The journal in Redis (README.md "Running several replicas", SPEC "Several replicas: Redis"): a Stream,
 * `PREFIX:journal`, one entry per record, whose id is `<seq>-0` (so `XREAD`/`XRANGE` ids are the seqs) and whose one
 * field `record` holds exactly the record JSON of the file journal's line without its checksum:
 * `{"seq":42,"message_id":...}`. Users may read it directly with `XREAD` or a consumer group.
 *
 * One append is one server-side script, atomic across replicas: when `PREFIX:dedup:<message_id>` exists the message
 * is already stored (the append resolves `undefined`); otherwise `INCR PREFIX:journal:seq`, `XADD` the record, and
 * `SET` the dedup key to the seq with a TTL of at least 20 minutes (Twitch retries for less). The append resolves
 * once Redis answered (with `replicas:N`, once a `WAIT N` covering it answered, one `WAIT` for every append
 * answered before it: group commit). Every append is pipelined on the one command connection.
 *
 * `follow()` does not poll: one `XREAD BLOCK` loop on a second connection, shared by every follower of this
 * process, keeps `head` current (records of other replicas included) and wakes them; they read with `XRANGE`.
 */
import { createHash } from 'node:crypto';
import { ErrorReply } from 'redis';
import { AbortedError, AppError, ConfigError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { Histogram } from '../lib/metrics.js';
import { backoffDelay } from '../lib/retry.js';
import { parseLine, receivedAtMs, serializeEntry, toRecord } from '../journal/format.js';
import { JournalError, type JournalEntry, type JournalRecord, type JournalStats } from '../journal/types.js';
import { destroyQuietly, type RedisClient, type RedisConnection } from './redis-connection.js';
import { redisKey, type EventJournal, type RedisDurability } from './types.js';

/** Twitch retries a message for about 10 minutes; the SPEC asks to remember ids for at least 20. */
const MIN_DEDUP_MS = 20 * 60_000;
const DEFAULT_DEDUP_MS = 21 * 60_000;
/** An append waits this long for a Redis that is not ready before it rejects (SPEC: 5 s, then the webhook's 503). */
const APPEND_WAIT_MS = 5_000;
/** How long one `WAIT` for replicas may take before the appends it covers are refused. */
const WAIT_TIMEOUT_MS = 2_000;
/** The tail loop's `XREAD BLOCK` timeout: how soon it notices a close that did not reach it otherwise. */
const TAIL_BLOCK_MS = 5_000;
const DEFAULT_READ_LIMIT = 1000;
/** A follower holds at most one batch; `range()` reads in larger ones. */
const FOLLOW_BATCH = 256;
const RANGE_BATCH = 1000;
/** `recent()` starts this much before the asked time: replicas' clocks and arrival order differ a little. */
const RECENT_MARGIN_MS = 60_000;
const PRUNE_INTERVAL_MS = 60_000;
/** Retry pacing of the tail loop and of followers while Redis is away. */
const RETRY_BACKOFF = { baseMs: 50, maxMs: 2_000 };
/** Append latency buckets, ms: a loopback Redis to a remote one that fsyncs. */
const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500]);
/** Corrupt entries are reported once each; past this many, the set stops growing (the count goes on). */
const MAX_REPORTED = 10_000;

/**
 * KEYS: dedup key, seq counter, stream. ARGV: dedup TTL (ms), the entry's JSON without `seq` (`{"message_id":...}`).
 * Returns the new seq, or minus the seq already stored under this message id (0 when that value is unreadable).
 * `#!lua` (Redis 7): a Redis out of memory refuses the script before any write. When the counter fell behind the
 * stream (its key was deleted), it continues after the stream's last id instead of failing every append.
 */
const APPEND_SCRIPT = `#!lua
local existing = redis.call('GET', KEYS[1])
if existing then return -(tonumber(existing) or 0) end
local seq = redis.call('INCR', KEYS[2])
local body = string.sub(ARGV[2], 2)
local added = redis.pcall('XADD', KEYS[3], string.format('%d-0', seq), 'record', string.format('{"seq":%d,', seq) .. body)
if type(added) == 'table' and added.err then
  local info = redis.call('XINFO', 'STREAM', KEYS[3])
  local last = 0
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = tonumber(string.match(info[i + 1], '^(%d+)')) end
  end
  if last < seq then return redis.error_reply(added.err) end
  seq = last + 1
  redis.call('SET', KEYS[2], seq)
  redis.call('XADD', KEYS[3], string.format('%d-0', seq), 'record', string.format('{"seq":%d,', seq) .. body)
end
redis.call('SET', KEYS[1], seq, 'PX', ARGV[1])
return seq`;
const APPEND_SHA = createHash('sha1').update(APPEND_SCRIPT).digest('hex');

export interface RedisJournalOptions {
  connection: RedisConnection;
  /** `EVENTSUBD_REDIS_PREFIX`. */
  prefix: string;
  clock: Clock;
  logger: Logger;
  /** Entries older than `maxAgeMs` (by `received_at`), or past about `maxBytes` of Redis memory, are trimmed. */
  retention?: { maxBytes?: number | undefined; maxAgeMs?: number | undefined } | undefined;
  durability: RedisDurability;
  /** How long a message id is remembered, ms. Default 21 minutes; at least 20. */
  dedupRetentionMs?: number;
  /** Monotonic milliseconds for append latency. Default: `performance.now()`. */
  monotonicNow?: () => number;
}

/** The seq of a stream id `<seq>-<n>`. */
function idSeq(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

/** The journal on a Redis Stream. Build it with `RedisJournal.open()`; close it (then the connection) with `close()`. */
export class RedisJournal implements EventJournal {
  readonly #o: RedisJournalOptions;
  readonly #client: RedisClient;
  readonly #keys: { stream: string; seq: string };
  readonly #dedupMs: number;
  readonly #now: () => number;
  readonly #histogram = new Histogram(LATENCY_BOUNDS_MS);
  readonly #waiters = new Set<() => void>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #reported = new Set<number>();
  readonly #stop = new AbortController();
  readonly #replicaWait: ReplicaWait | undefined;
  #head = 0;
  /** The first retained seq, or undefined when the stream held nothing when last looked at. */
  #first: number | undefined;
  #counters = { appends: 0, fsyncs: 0, failures: 0, lastFsyncMs: 0 };
  #corrupt = 0;
  #bytes = 0;
  /** Whether a reply already counted as the round trip of the replies read with it (see `#countRoundTrip`). */
  #roundTripOpen = false;
  #tailClient: RedisClient | undefined;
  #closing: Promise<void> | undefined;
  readonly #offReady: () => void;

  private constructor(o: RedisJournalOptions) {
    this.#o = o;
    this.#client = o.connection.client;
    this.#keys = { stream: redisKey(o.prefix, 'journal'), seq: redisKey(o.prefix, 'journal:seq') };
    this.#dedupMs = o.dedupRetentionMs ?? DEFAULT_DEDUP_MS;
    this.#now = o.monotonicNow ?? (() => performance.now());
    this.#replicaWait = o.durability.kind === 'replicas'
      ? new ReplicaWait(this.#client, o.durability.replicas, () => this.#counters.fsyncs++)
      : undefined;
    this.#offReady = o.connection.onReadyChange((ready) => {
      if (ready) void this.#refreshQuietly();
      this.#wake();
    });
  }

  /**
   * Opens the journal. Does not need Redis: while it is away, `head` is what it was and becomes known once
   * connected; appends wait for it (at most 5 s).
   * @throws ConfigError (CONFIG_INVALID) when `dedupRetentionMs` is under 20 minutes.
   */
  static async open(o: RedisJournalOptions): Promise<RedisJournal> {
    if (o.dedupRetentionMs !== undefined && !(o.dedupRetentionMs >= MIN_DEDUP_MS)) {
      throw new ConfigError(`The de-duplication window must be at least 20 minutes: current value is ${o.dedupRetentionMs} ms`);
    }
    const journal = new RedisJournal(o);
    if (o.connection.ready) await journal.#refreshQuietly();
    void journal.#tailLoop();
    if (o.retention && (o.retention.maxAgeMs !== undefined || o.retention.maxBytes !== undefined)) void journal.#pruneLoop();
    return journal;
  }

  get head(): number {
    return this.#head;
  }

  get firstSeq(): number {
    return this.#first ?? this.#head + 1;
  }

  /** Redis is connected, authenticated and durable, and the journal is open. */
  get writable(): boolean {
    return this.#o.connection.ready && !this.#closing;
  }

  /**
   * Appends one entry; resolves with its record once Redis answered (and, with `replicas:N`, N replicas hold it),
   * or with `undefined` when this message id is already stored (by this replica or another one).
   * @throws AppError (REDIS_UNAVAILABLE) when Redis is not ready within 5 s or the connection failed (the script
   *   may have run: a retry of the same message id is then a duplicate); JournalError (JOURNAL_UNWRITABLE) when
   *   Redis refused the script, when fewer than N replicas acknowledged it in time, or when the journal is closed.
   * @throws TypeError when the entry cannot be serialised as JSON.
   */
  append(entry: JournalEntry): Promise<JournalRecord | undefined> {
    const work = this.#append(entry);
    this.#inflight.add(work);
    const forget = (): void => void this.#inflight.delete(work);
    work.then(forget, forget);
    return work;
  }

  async #append(entry: JournalEntry): Promise<JournalRecord | undefined> {
    if (this.#closing) throw new JournalError('Cannot append to the journal: it is closed');
    const body = serializeEntry(entry);
    const connection = this.#o.connection;
    if (!connection.ready && !(await connection.waitReady(APPEND_WAIT_MS))) {
      this.#counters.failures++;
      throw new AppError('REDIS_UNAVAILABLE', `Cannot append to the Redis journal: Redis has not been ready for ${APPEND_WAIT_MS} ms`);
    }
    const started = this.#now();
    let reply: number;
    try {
      reply = await this.#runScript(redisKey(this.#o.prefix, `dedup:${entry.message_id}`), body);
    } catch (err) {
      this.#counters.failures++;
      if (err instanceof ErrorReply) throw new JournalError(`Redis refused the journal append: ${errText(err)}`, { cause: err });
      throw new AppError('REDIS_UNAVAILABLE', `Cannot append to the Redis journal: ${errText(err)}`, { cause: err });
    }
    const seq = Math.abs(reply);
    this.#advance(seq);
    if (this.#replicaWait) {
      try {
        await this.#replicaWait.cover();
      } catch (err) {
        this.#counters.failures++;
        throw err;
      }
    } else if (reply > 0) {
      this.#countRoundTrip();
    }
    if (reply <= 0) return undefined;
    const ms = this.#now() - started;
    this.#histogram.observe(ms);
    this.#counters.lastFsyncMs = ms;
    this.#counters.appends++;
    this.#bytes += body.length;
    this.#first ??= seq;
    return toRecord(seq, entry);
  }

  /** EVALSHA, and EVAL when Redis does not have the script (first use, or after a restart). */
  async #runScript(dedupKey: string, body: string): Promise<number> {
    const args = { keys: [dedupKey, this.#keys.seq, this.#keys.stream], arguments: [String(this.#dedupMs), body] };
    try {
      return Number(await this.#client.evalSha(APPEND_SHA, args));
    } catch (err) {
      if (!(err instanceof ErrorReply && err.message.startsWith('NOSCRIPT'))) throw err;
      return Number(await this.#client.eval(APPEND_SCRIPT, args));
    }
  }

  /**
   * `fsyncs` counts Redis round trips that acknowledged appends: replies read together (one socket read, and with
   * `appendfsync always` one fsync of Redis's AOF) count once.
   */
  #countRoundTrip(): void {
    if (this.#roundTripOpen) return;
    this.#roundTripOpen = true;
    this.#counters.fsyncs++;
    setImmediate(() => {
      this.#roundTripOpen = false;
    });
  }

  async read(since: number, limit = DEFAULT_READ_LIMIT): Promise<JournalRecord[]> {
    return (await this.#readChunk(since, limit)).records;
  }

  /**
   * The records after `since`, then every new one as it is appended (here or by another replica): no gap, no
   * duplicate. Rides out Redis outages (it waits for Redis and goes on from where it was). Ends without error
   * when `signal` aborts or the journal closes.
   */
  async *follow(since: number, signal: AbortSignal): AsyncIterable<JournalRecord> {
    let after = since;
    let failures = 0;
    while (!signal.aborted) {
      let chunk: { records: JournalRecord[]; after: number };
      try {
        chunk = await this.#readChunk(after, FOLLOW_BATCH);
        failures = 0;
      } catch (err) {
        if (this.#closing) return;
        if (++failures === 1) this.#o.logger.warn('Cannot read the Redis journal; waiting for Redis', { err: errText(err) });
        await this.#pause(failures, signal);
        continue;
      }
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

  async *range(since: number, until = this.#head): AsyncIterable<JournalRecord> {
    let after = since;
    while (after < until) {
      const chunk = await this.#readChunk(after, RANGE_BATCH, until);
      if (chunk.after <= after) return;
      yield* chunk.records;
      after = chunk.after;
    }
  }

  async *recent(sinceReceivedAtMs: number, afterSeq = 0): AsyncIterable<JournalRecord> {
    const start = await this.#firstReceivedAtOrAfter(sinceReceivedAtMs - RECENT_MARGIN_MS);
    if (start === undefined) return;
    for await (const record of this.range(Math.max(start - 1, afterSeq))) {
      if (receivedAtMs(record) >= sinceReceivedAtMs) yield record;
    }
  }

  /**
   * Trims the entries past the retention limits now (`XTRIM MINID`): older than `maxAgeMs` by `received_at`, and
   * the oldest ones while the stream uses more than about `maxBytes` (`MEMORY USAGE`, sampled, over the entry
   * count). A limit that is not set trims nothing. Returns how many entries were removed.
   */
  async prune(): Promise<number> {
    const retention = this.#o.retention;
    if (!retention || this.#closing) return 0;
    let minSeq = 0;
    if (retention.maxAgeMs !== undefined) {
      minSeq = (await this.#firstReceivedAtOrAfter(this.#o.clock.now() - retention.maxAgeMs)) ?? 0;
    }
    const usage = (await this.#client.memoryUsage(this.#keys.stream)) ?? 0;
    this.#bytes = Number(usage);
    if (retention.maxBytes !== undefined && this.#bytes > retention.maxBytes) {
      const length = await this.#client.xLen(this.#keys.stream);
      const last = await this.#edgeSeq('last');
      if (length > 0 && last !== undefined) {
        const keep = Math.max(1, Math.floor(retention.maxBytes / (this.#bytes / length)));
        minSeq = Math.max(minSeq, last - keep + 1);
      }
    }
    if (minSeq <= this.firstSeq) return 0;
    const removed = Number(await this.#client.xTrim(this.#keys.stream, 'MINID', `${minSeq}-0`));
    this.#first = await this.#edgeSeq('first');
    if (removed > 0) this.#o.logger.info('Trimmed the Redis journal', { removed, firstSeq: this.firstSeq });
    return removed;
  }

  stats(): JournalStats {
    return {
      ...this.#counters,
      fsyncHistogram: this.#histogram.snapshot(),
      bytes: this.#bytes,
      segments: 0,
      head: this.#head,
      firstSeq: this.firstSeq,
      corrupt: this.#corrupt,
    };
  }

  /** Waits for the appends already made, stops the tail loop and ends every `follow`. Leaves the connection open. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#offReady();
      await Promise.allSettled([...this.#inflight]);
      this.#stop.abort();
      if (this.#tailClient) destroyQuietly(this.#tailClient);
      this.#wake();
    })();
    return this.#closing;
  }

  /** One `XRANGE` of at most `count` entries after `since` (up to `until`); corrupt ones skipped and reported once. */
  async #readChunk(since: number, count: number, until?: number): Promise<{ records: JournalRecord[]; after: number }> {
    const start = since < 0 ? '-' : `${Math.floor(since) + 1}-0`;
    const end = until === undefined ? '+' : `${until}-18446744073709551615`;
    const entries = (await this.#client.xRange(this.#keys.stream, start, end, { COUNT: count })) ?? [];
    const records: JournalRecord[] = [];
    let after = since;
    for (const { id, message } of entries) {
      const seq = idSeq(id);
      const raw = message['record'];
      const record = typeof raw === 'string' ? parseLine(raw, seq) : undefined;
      if (record) records.push(record);
      else this.#reportCorrupt(seq, id);
      after = Math.max(after, seq);
    }
    this.#advance(after);
    return { records, after };
  }

  #reportCorrupt(seq: number, id: string): void {
    if (this.#reported.has(seq)) return;
    if (this.#reported.size < MAX_REPORTED) this.#reported.add(seq);
    this.#corrupt++;
    this.#o.logger.error('Skipping a Redis journal entry whose record field is not a record', { stream: this.#keys.stream, id, seq });
  }

  /** The seq of the first (or last) entry of the stream, undefined when it is empty. */
  async #edgeSeq(which: 'first' | 'last'): Promise<number | undefined> {
    const entries = which === 'first'
      ? await this.#client.xRange(this.#keys.stream, '-', '+', { COUNT: 1 })
      : await this.#client.xRevRange(this.#keys.stream, '+', '-', { COUNT: 1 });
    return entries?.[0] ? idSeq(entries[0].id) : undefined;
  }

  /**
   * The seq of the first record whose `received_at` is at or after `ms` (binary search, `received_at` taken as
   * rising with seq; an unreadable one counts as new, so nothing is trimmed on doubt); `last + 1` when none is,
   * undefined when the stream is empty.
   */
  async #firstReceivedAtOrAfter(ms: number): Promise<number | undefined> {
    const first = await this.#edgeSeq('first');
    const last = await this.#edgeSeq('last');
    if (first === undefined || last === undefined) return undefined;
    let low = first;
    let high = last + 1;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      const entry = (await this.#client.xRange(this.#keys.stream, `${mid}-0`, '+', { COUNT: 1 }))?.[0];
      if (!entry) return high;
      const raw = entry.message['record'];
      const at = typeof raw === 'string' ? receivedAtMs(parseLine(raw) ?? {}) : Number.NaN;
      if (Number.isNaN(at) || at >= ms) high = mid;
      else low = idSeq(entry.id) + 1;
    }
    return low;
  }

  /** Raises `head` (never lowers it) and wakes the followers when it moved. */
  #advance(seq: number): void {
    if (!(seq > this.#head)) return;
    this.#head = seq;
    this.#wake();
  }

  /** The counter and the first entry, read at open and after every reconnection. */
  async #refreshQuietly(): Promise<void> {
    try {
      const counter = Number((await this.#client.get(this.#keys.seq)) ?? 0);
      if (counter < this.#head) {
        this.#o.logger.error('The Redis journal counter went back: Redis lost acknowledged writes (not durable?)', { counter, head: this.#head });
      }
      this.#advance(counter);
      this.#first = await this.#edgeSeq('first');
    } catch (err) {
      this.#o.logger.warn('Cannot read the Redis journal head; will retry on reconnection', { err: errText(err) });
    }
  }

  /**
   * One blocking `XREAD` at a time on its own connection: when entries beyond `head` exist, reads the counter (the
   * script adds entries and counts atomically, so it is the last id) and wakes the followers.
   */
  async #tailLoop(): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      try {
        if (!this.#o.connection.ready) {
          await this.#o.connection.waitReady(TAIL_BLOCK_MS, this.#stop.signal);
          continue;
        }
        this.#tailClient ??= await this.#o.connection.duplicate();
        if (this.#closing) break;
        const reply = await this.#tailClient.xRead({ key: this.#keys.stream, id: `${this.#head}-0` }, { BLOCK: TAIL_BLOCK_MS, COUNT: 1 });
        if (reply && reply.length > 0) this.#advance(Number((await this.#tailClient.get(this.#keys.seq)) ?? 0));
        failures = 0;
      } catch (err) {
        if (this.#closing) break;
        if (++failures === 1) this.#o.logger.debug('The Redis journal tail failed; retrying', { err: errText(err) });
        await this.#pause(failures, this.#stop.signal);
      }
    }
    if (this.#tailClient) destroyQuietly(this.#tailClient);
  }

  async #pruneLoop(): Promise<void> {
    while (!this.#closing) {
      if (this.#o.connection.ready) {
        try {
          await this.prune();
        } catch (err) {
          this.#o.logger.warn('Redis journal retention failed; will retry', { err: errText(err) });
        }
      }
      if (!(await this.#sleep(PRUNE_INTERVAL_MS, this.#stop.signal))) return;
    }
  }

  /** After a failed read: waits for Redis to be ready again, then a backoff step. */
  async #pause(failures: number, signal: AbortSignal): Promise<void> {
    const both = AbortSignal.any([signal, this.#stop.signal]);
    if (!this.#o.connection.ready) await this.#o.connection.waitReady(TAIL_BLOCK_MS, both);
    await this.#sleep(backoffDelay(failures, RETRY_BACKOFF), both);
  }

  /** Sleeps on the clock; false when `signal` aborted it. */
  async #sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    try {
      await this.#o.clock.sleep(ms, signal);
      return true;
    } catch (err) {
      if (err instanceof AbortedError) return false;
      throw err;
    }
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** Resolves once head > `after`, Redis becomes ready again, the journal closes or `signal` aborts. */
  async #waitBeyond(after: number, signal: AbortSignal): Promise<void> {
    if (this.#head > after || this.#closing || signal.aborted) return;
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
}

/**
 * Group commit for `replicas:N`: `cover()` resolves once a `WAIT N`, sent on the command connection after the
 * caller's append was answered, reports N replicas (WAIT counts every earlier write of its connection). While one
 * WAIT is out, the appends answered meanwhile wait for the next one, which covers all of them.
 */
class ReplicaWait {
  readonly #client: RedisClient;
  readonly #replicas: number;
  readonly #onAcknowledged: () => void;
  #queue: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  #running = false;

  constructor(client: RedisClient, replicas: number, onAcknowledged: () => void) {
    this.#client = client;
    this.#replicas = replicas;
    this.#onAcknowledged = onAcknowledged;
  }

  /**
   * @throws JournalError (JOURNAL_UNWRITABLE) when fewer than N replicas acknowledged within the WAIT timeout;
   *   AppError (REDIS_UNAVAILABLE) when the WAIT itself failed.
   */
  cover(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ resolve, reject });
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      let failure: unknown;
      try {
        const reached = Number(await this.#client.sendCommand(['WAIT', String(this.#replicas), String(WAIT_TIMEOUT_MS)]));
        if (reached >= this.#replicas) this.#onAcknowledged();
        else failure = new JournalError(`Only ${reached} of ${this.#replicas} Redis replicas acknowledged the append within ${WAIT_TIMEOUT_MS} ms (EVENTSUBD_REDIS_DURABILITY=replicas:${this.#replicas})`);
      } catch (err) {
        failure = new AppError('REDIS_UNAVAILABLE', `Cannot wait for the Redis replicas: ${errText(err)}`, { cause: err });
      }
      for (const w of batch) {
        if (failure === undefined) w.resolve();
        else w.reject(failure);
      }
    }
    this.#running = false;
  }
}
