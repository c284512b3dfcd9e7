/**
 * Helix's token bucket (https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits): `limit` points, refilled
 * continuously at `limit` per `windowMs`.
 * Each request takes one point. A refused request (empty bucket) takes nothing: Twitch does not document
 * whether a 429 costs a point, and not charging it keeps a client that waits until `Ratelimit-Reset` whole.
 */

export interface BucketConfig {
  limit: number;
  windowMs: number;
}

/** The three `Ratelimit-*` headers. */
export interface RateHeaders {
  'ratelimit-limit': string;
  'ratelimit-remaining': string;
  'ratelimit-reset': string;
}

/** One bucket: full at creation, refilled on every look using the caller's `now` (the injected clock). */
export class TokenBucket {
  readonly #config: BucketConfig;
  #points: number;
  #updatedAt: number;

  constructor(config: BucketConfig, now: number) {
    this.#config = config;
    this.#points = config.limit;
    this.#updatedAt = now;
  }

  /** Takes one point if there is one; false when the bucket is empty. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#points < 1) return false;
    this.#points -= 1;
    return true;
  }

  /** Headers describing the bucket at `now`: Remaining is floored, Reset is when it will be full (epoch s). */
  headers(now: number): RateHeaders {
    this.#refill(now);
    const { limit, windowMs } = this.#config;
    const fullAt = now + ((limit - this.#points) * windowMs) / limit;
    return {
      'ratelimit-limit': String(limit),
      'ratelimit-remaining': String(Math.floor(this.#points)),
      'ratelimit-reset': String(Math.ceil(fullAt / 1000)),
    };
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#updatedAt);
    const { limit, windowMs } = this.#config;
    this.#points = Math.min(limit, this.#points + (elapsed * limit) / windowMs);
    this.#updatedAt = Math.max(this.#updatedAt, now);
  }
}

/** One bucket per key (app: client ID; user: client ID + user ID), created full on first use. */
export class Buckets {
  readonly #config: BucketConfig;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(config: BucketConfig) {
    this.#config = config;
  }

  get(key: string, now: number): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.#config, now);
      this.#buckets.set(key, bucket);
    }
    return bucket;
  }

  /** Headers of a full bucket, for answers to requests that have no identity (e.g. a missing token). */
  fullHeaders(now: number): RateHeaders {
    return new TokenBucket(this.#config, now).headers(now);
  }
}
