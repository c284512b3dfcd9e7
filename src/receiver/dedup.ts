/**
 * The set of message keys already accepted, kept for longer than the replay window (contract 7.3: ids kept
 * ≥ 10 minutes plus clock skew suffice once stale messages are rejected). Bounded in time and in size.
 */
import type { Clock } from '../lib/clock.js';

/** 20 minutes: the 10-minute replay window on either side of our clock. */
export const DEFAULT_DEDUP_RETENTION_MS = 20 * 60_000;
export const DEFAULT_DEDUP_MAX_ENTRIES = 1_000_000;

export interface DedupOptions {
  clock: Clock;
  /** How long a key is remembered after its time, in ms. Default DEFAULT_DEDUP_RETENTION_MS. */
  retentionMs?: number;
  /** Hard cap on keys; past it the oldest inserted is forgotten first. Default DEFAULT_DEDUP_MAX_ENTRIES. */
  maxEntries?: number;
}

/**
 * A time-bounded set of strings. Keys are evicted in insertion order once older than the retention, and
 * oldest first past `maxEntries`. Keys should be added in roughly increasing time (as the journal and live
 * traffic give them): a key is also treated as absent once its own time is past the retention.
 */
export class Dedup {
  readonly #clock: Clock;
  readonly #retentionMs: number;
  readonly #maxEntries: number;
  /** key → the sequence number of its latest queue entry (which holds its time). */
  readonly #entries = new Map<string, number>();
  /**
   * Insertion order as a queue (parallel arrays from `#head`): a Map alone would do, but V8 keeps deleted
   * slots at a Map's head until it rehashes, which makes head-first eviction quadratic.
   */
  #queueKeys: string[] = [];
  #queueTimes: number[] = [];
  #head = 0;
  /** Sequence number of the queue's index 0. */
  #base = 0;

  constructor(options: DedupOptions) {
    const retentionMs = options.retentionMs ?? DEFAULT_DEDUP_RETENTION_MS;
    const maxEntries = options.maxEntries ?? DEFAULT_DEDUP_MAX_ENTRIES;
    if (!(retentionMs > 0)) throw new RangeError(`Dedup retention must be positive: current value is ${retentionMs}`);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`Dedup maxEntries must be a positive integer: current value is ${maxEntries}`);
    }
    this.#clock = options.clock;
    this.#retentionMs = retentionMs;
    this.#maxEntries = maxEntries;
  }

  /** True when `key` was added within the retention. */
  has(key: string): boolean {
    const now = this.#clock.now();
    this.#evictExpired(now);
    const at = this.#timeOf(key);
    return at !== undefined && now - at < this.#retentionMs;
  }

  /**
   * Remembers `key` as seen at `atMs` (default now). A key already past the retention is ignored; adding a
   * known key keeps the later time and moves it to the tail.
   */
  add(key: string, atMs: number = this.#clock.now()): void {
    const now = this.#clock.now();
    this.#evictExpired(now);
    if (now - atMs >= this.#retentionMs) return;
    const at = Math.max(this.#timeOf(key) ?? atMs, atMs);
    this.#entries.set(key, this.#base + this.#queueKeys.length);
    this.#queueKeys.push(key);
    this.#queueTimes.push(at);
    while (this.#entries.size > this.#maxEntries) this.#shift();
  }

  /** Keys currently held (expired keys are dropped first). */
  get size(): number {
    this.#evictExpired(this.#clock.now());
    return this.#entries.size;
  }

  #evictExpired(now: number): void {
    while (this.#head < this.#queueKeys.length && now - (this.#queueTimes[this.#head] ?? now) >= this.#retentionMs) this.#shift();
  }

  /** Drops the queue's head; the key goes too unless a later add refreshed it (its queue entry is further on). */
  #shift(): void {
    const key = this.#queueKeys[this.#head] ?? '';
    if (this.#entries.get(key) === this.#base + this.#head) this.#entries.delete(key);
    this.#head += 1;
    if (this.#head >= 1024 && this.#head * 2 >= this.#queueKeys.length) {
      this.#queueKeys = this.#queueKeys.slice(this.#head);
      this.#queueTimes = this.#queueTimes.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }

  #timeOf(key: string): number | undefined {
    const seq = this.#entries.get(key);
    return seq === undefined ? undefined : this.#queueTimes[seq - this.#base];
  }
}
