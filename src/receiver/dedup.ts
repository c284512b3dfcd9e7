/**
 * The message ids already accepted, kept for longer than a replay can pass the receiver's two-sided window
 * (see `minDedupRetentionMs` in handler.ts). Bounded in time and in size, and held in typed arrays only: a
 * 96-bit digest and a time per key, about 30 bytes a key at 1,000,000 keys.
 */
import { Buffer } from 'node:buffer';
import type { Clock } from '../lib/clock.js';

/**
 * 21 minutes: a message accepted with a timestamp 10 minutes ahead of our clock passes the 10-minute window
 * again until 20 minutes after it was accepted; the extra minute covers a step of the system clock.
 */
export const DEFAULT_DEDUP_RETENTION_MS = 21 * 60_000;
/** Default cap on the keys held (one per notification): two million notifications within the retention, about 60 MB at most. */
export const DEFAULT_DEDUP_MAX_ENTRIES = 2_000_000;

export interface DedupOptions {
  clock: Clock;
  /** How long a key is remembered after its time, in ms. Default DEFAULT_DEDUP_RETENTION_MS. */
  retentionMs?: number;
  /** Hard cap on keys; past it the oldest inserted is forgotten first. Default DEFAULT_DEDUP_MAX_ENTRIES. */
  maxEntries?: number;
  /**
   * For tests only: the key's digest, at least three 32-bit words (only they are compared, and the first
   * picks the hash bucket), so that a test can make keys collide. Default: MurmurHash3_x86_128 cut to 96 bits.
   */
  digest?: (key: string) => ArrayLike<number>;
}

/** What `Dedup.state()` gives and `Dedup.adopt()` takes: the ring (digest words and time per slot) and the table. */
export interface DedupState {
  maxEntries: number;
  head: number;
  count: number;
  live: number;
  words: Uint32Array;
  times: Float64Array;
  table: Int32Array;
}

const WORDS = 3;
const MIN_CAPACITY = 1024;
const DIGEST = new Uint32Array(WORDS);
/** The key's UTF-16 code units (so distinct strings, lone surrogates included, stay distinct), zero-padded. */
let units = Buffer.alloc(1024);
let blocks = new Int32Array(units.buffer, units.byteOffset, units.length / 4);

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const fmix = (h: number): number => {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
};

/**
 * MurmurHash3_x86_128's block and finalisation rounds over the key's UTF-16 code units zero-padded to whole
 * 16-byte blocks, the length in code units mixed in last. Returns a shared array: read it before the next call.
 */
function murmur128(key: string): Uint32Array {
  const n = key.length, padded = (n * 2 + 15) & ~15;
  if (padded > units.length) {
    units = Buffer.alloc(padded * 2);
    blocks = new Int32Array(units.buffer, units.byteOffset, units.length / 4);
  }
  units.fill(0, units.write(key, 0, 'utf16le'), padded);
  let h1 = 0x9747b28c, h2 = h1, h3 = h1, h4 = h1;
  for (let w = 0; w < padded / 4; w += 4) {
    h1 ^= Math.imul(rotl(Math.imul(blocks[w]!, 0x239b961b), 15), 0xab0e9789);
    h1 = (Math.imul((rotl(h1, 19) + h2) | 0, 5) + 0x561ccd1b) | 0;
    h2 ^= Math.imul(rotl(Math.imul(blocks[w + 1]!, 0xab0e9789), 16), 0x38b34ae5);
    h2 = (Math.imul((rotl(h2, 17) + h3) | 0, 5) + 0x0bcaa747) | 0;
    h3 ^= Math.imul(rotl(Math.imul(blocks[w + 2]!, 0x38b34ae5), 17), 0xa1e38b93);
    h3 = (Math.imul((rotl(h3, 15) + h4) | 0, 5) + 0x96cd1c35) | 0;
    h4 ^= Math.imul(rotl(Math.imul(blocks[w + 3]!, 0xa1e38b93), 18), 0x239b961b);
    h4 = (Math.imul((rotl(h4, 13) + h1) | 0, 5) + 0x32ac3b17) | 0;
  }
  h1 ^= n; h2 ^= n; h3 ^= n; h4 ^= n;
  h1 = (h1 + h2 + h3 + h4) | 0; h2 = (h2 + h1) | 0; h3 = (h3 + h1) | 0; h4 = (h4 + h1) | 0;
  h1 = fmix(h1); h2 = fmix(h2); h3 = fmix(h3); h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  DIGEST[0] = h1; DIGEST[1] = h2 + h1; DIGEST[2] = h3 + h1;
  return DIGEST;
}

/**
 * A time-bounded set of strings. Keys are evicted in insertion order once older than the retention, and
 * oldest first past `maxEntries`. Keys should be added in roughly increasing time (as the journal and live
 * traffic give them): a key is also treated as absent once its own time is past the retention.
 *
 * Keys are not kept, only a 96-bit digest of each: under the usual assumption that the hash behaves as a
 * random function on non-adversarial input, a new key is taken for one of n held keys with probability
 * ≤ n / 2^96 (2^-75 at 2,000,000 keys), which would acknowledge a genuine message without journaling it.
 * The hash is not collision-resistant against an adversary, but keys come from HMAC-verified messages.
 *
 * Layout: a ring in insertion order (digest words and time per slot; a re-added key gets a new slot and its
 * old one goes dead) and an open-addressing table of ring slots (linear probing, backward-shift deletion,
 * load ≤ 0.5). Both start at 1,024 slots, double as needed, and shrink once mostly empty.
 */
export class Dedup {
  readonly #clock: Clock;
  readonly #retentionMs: number;
  readonly #maxEntries: number;
  readonly #digest: (key: string) => ArrayLike<number>;
  /** Past it, a full ring is compacted rather than grown (some slots are then dead, so it frees room). */
  readonly #ringMax: number;
  #words: Uint32Array;
  #times: Float64Array;
  #head = 0;
  /** Slots in use from `#head`, dead ones included. */
  #count = 0;
  /** Ring slot + 1 of each live key, 0 when empty. */
  #table: Int32Array;
  #live = 0;

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
    this.#digest = options.digest ?? murmur128;
    this.#ringMax = maxEntries + Math.floor(maxEntries / 8) + 1;
    const capacity = Math.min(MIN_CAPACITY, this.#ringMax);
    this.#words = new Uint32Array(capacity * WORDS);
    this.#times = new Float64Array(capacity);
    this.#table = new Int32Array(this.#tableSize(capacity));
  }

  /** The most keys held. */
  get maxEntries(): number {
    return this.#maxEntries;
  }

  /** How long a key is remembered after its time, in ms. */
  get retentionMs(): number {
    return this.#retentionMs;
  }

  /** True when `key` was added within the retention. */
  has(key: string): boolean {
    const now = this.#clock.now();
    this.#evictExpired(now);
    const d = this.#digest(key);
    const p = this.#find(d[0]! >>> 0, d[1]! >>> 0, d[2]! >>> 0);
    return p >= 0 && now - this.#times[this.#table[p]! - 1]! < this.#retentionMs;
  }

  /**
   * Remembers `key` as seen at `atMs` (default now). A key already past the retention is ignored; adding a
   * known key keeps the later time and moves it to the tail.
   */
  add(key: string, atMs: number = this.#clock.now()): void {
    const now = this.#clock.now();
    this.#evictExpired(now);
    if (now - atMs >= this.#retentionMs) return;
    const d = this.#digest(key);
    const d0 = d[0]! >>> 0, d1 = d[1]! >>> 0, d2 = d[2]! >>> 0;
    let p = this.#find(d0, d1, d2);
    const at = p >= 0 ? Math.max(this.#times[this.#table[p]! - 1]!, atMs) : atMs;
    const moved = p < 0 && this.#live >= this.#maxEntries;
    if (moved) while (!this.#shift()); // past the cap: the oldest live key goes, and dead slots before it
    const full = this.#count === this.#times.length;
    if (full) this.#rebuild(true);
    if (moved || full) p = this.#find(d0, d1, d2);
    let s = this.#head + this.#count++;
    if (s >= this.#times.length) s -= this.#times.length;
    this.#words[s * WORDS] = d0;
    this.#words[s * WORDS + 1] = d1;
    this.#words[s * WORDS + 2] = d2;
    this.#times[s] = at;
    if (p < 0) this.#live += 1;
    this.#table[p >= 0 ? p : ~p] = s + 1;
  }

  /**
   * The set's arrays as they are (not copies: write them out before the next add), for a snapshot that
   * `adopt` takes back in one step, so that a restart need not read every recent journal record again
   * (src/receiver/dedup-snapshot.ts).
   */
  state(): DedupState {
    this.#evictExpired(this.#clock.now());
    return { maxEntries: this.#maxEntries, head: this.#head, count: this.#count, live: this.#live, words: this.#words, times: this.#times, table: this.#table };
  }

  /**
   * Replaces this set's contents with `state` (from `state()` of a set with the same `maxEntries`), then forgets
   * what is past the retention. Returns false, changing nothing, when the state is not one `state()` can give.
   */
  adopt(state: DedupState): boolean {
    const cap = state.times.length;
    const consistent =
      state.maxEntries === this.#maxEntries &&
      cap >= 1 &&
      state.words.length === cap * WORDS &&
      state.table.length === this.#tableSize(cap) &&
      Number.isInteger(state.head) && state.head >= 0 && state.head < cap &&
      Number.isInteger(state.count) && state.count >= 0 && state.count <= cap &&
      Number.isInteger(state.live) && state.live >= 0 && state.live <= state.count && state.live <= this.#maxEntries;
    if (!consistent) return false;
    let used = 0;
    for (let i = 0; i < state.table.length; i++) {
      const e = state.table[i]!;
      if (e === 0) continue;
      if (!(e > 0 && e <= cap)) return false;
      used += 1;
    }
    if (used !== state.live) return false;
    this.#words = state.words;
    this.#times = state.times;
    this.#table = state.table;
    this.#head = state.head;
    this.#count = state.count;
    this.#live = state.live;
    this.#evictExpired(this.#clock.now());
    return true;
  }

  /** Keys currently held (expired keys are dropped first). */
  get size(): number {
    this.#evictExpired(this.#clock.now());
    return this.#live;
  }

  /** The table index holding this digest, or ~(the empty index where probing stopped). */
  #find(d0: number, d1: number, d2: number): number {
    const table = this.#table, words = this.#words, mask = table.length - 1;
    for (let i = d0 & mask; ; i = (i + 1) & mask) {
      const e = table[i]!;
      if (e === 0) return ~i;
      const w = (e - 1) * WORDS;
      if (words[w] === d0 && words[w + 1] === d1 && words[w + 2] === d2) return i;
    }
  }

  #evictExpired(now: number): void {
    const before = this.#count;
    while (this.#count > 0 && now - this.#times[this.#head]! >= this.#retentionMs) this.#shift();
    if (this.#count < before && this.#times.length > MIN_CAPACITY && this.#count * 8 <= this.#times.length) {
      this.#rebuild(false);
    }
  }

  /** Drops the ring's head; the key goes too unless a later add moved it on. True when a key went. */
  #shift(): boolean {
    const s = this.#head, table = this.#table, mask = table.length - 1;
    this.#head = s + 1 === this.#times.length ? 0 : s + 1;
    this.#count -= 1;
    for (let i = this.#words[s * WORDS]! & mask; table[i] !== 0; i = (i + 1) & mask) {
      if (table[i] === s + 1) {
        this.#deleteAt(i);
        this.#live -= 1;
        return true;
      }
    }
    return false;
  }

  /** Backward-shift deletion: moves later entries of the probe run into the hole so none becomes unreachable. */
  #deleteAt(hole: number): void {
    const table = this.#table, words = this.#words, mask = table.length - 1;
    for (let j = (hole + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const e = table[j]!;
      const home = words[(e - 1) * WORDS]! & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        table[hole] = e;
        hole = j;
      }
    }
    table[hole] = 0;
  }

  /**
   * Copies the slots worth keeping, in order, into fresh arrays sized for them (`full`: to make room for an
   * add; else to shrink), and re-indexes them. A dead slot is dropped unless its time is later than the next
   * kept slot's: then it would hold back time-based eviction, as the head, and dropping it would change
   * which keys `size` counts.
   */
  #rebuild(full: boolean): void {
    const cap = this.#times.length, oldWords = this.#words, oldTimes = this.#times;
    const keep = new Uint8Array(cap); // 1: live, 2: dead but kept
    for (let i = 0; i < this.#table.length; i++) if (this.#table[i] !== 0) keep[this.#table[i]! - 1] = 1;
    let kept = 0;
    for (let i = this.#count - 1, next = -Infinity; i >= 0; i--) {
      const s = (this.#head + i) % cap;
      if (keep[s] === 1 || !(oldTimes[s]! <= next)) {
        keep[s] ||= 2;
        kept += 1;
        next = oldTimes[s]!;
      }
    }
    let size = Math.max(Math.min(MIN_CAPACITY, this.#ringMax), kept * 4);
    if (full) {
      const roomy = (cap - kept) * 4 >= cap || (cap >= this.#ringMax && (cap - kept) * 16 >= cap);
      size = roomy ? cap : cap < this.#ringMax ? Math.min(cap * 2, this.#ringMax) : cap * 2;
    }
    this.#words = new Uint32Array(size * WORDS);
    this.#times = new Float64Array(size);
    this.#table = new Int32Array(this.#tableSize(size));
    const mask = this.#table.length - 1;
    for (let i = 0, t = 0; i < this.#count; i++) {
      const s = (this.#head + i) % cap;
      if (keep[s] === 0) continue;
      for (let w = 0; w < WORDS; w++) this.#words[t * WORDS + w] = oldWords[s * WORDS + w]!;
      this.#times[t] = oldTimes[s]!;
      if (keep[s] === 1) {
        let p = oldWords[s * WORDS]! & mask;
        while (this.#table[p] !== 0) p = (p + 1) & mask;
        this.#table[p] = t + 1;
      }
      t += 1;
    }
    this.#head = 0;
    this.#count = kept;
  }

  /** A power of two ≥ twice the most live keys a ring of `capacity` slots can hold: load stays ≤ 0.5. */
  #tableSize(capacity: number): number {
    let size = 2;
    while (size < 2 * Math.min(capacity, this.#maxEntries)) size *= 2;
    return size;
  }
}
