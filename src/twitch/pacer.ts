/**
 * A local model of Twitch's app-token bucket (https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits), so
 * that a sync of thousands of creates runs at the refill rate and never draws a 429 from a well-behaved Twitch.
 *
 * The model: a bucket of `Ratelimit-Limit` points that refills continuously at `limit / windowMs` points
 * per ms. `take()` reserves one point per request, waiting exactly as long as the deficit needs; callers
 * queue FIFO, so N concurrent callers reserve N distinct points and cannot overdraw.
 *
 * Resync (`observe`): every answer reports `Ratelimit-Remaining`, which already counts that request but
 * perhaps not the others still in flight. We assume the worst, that none of them has been counted yet, and
 * keep `min(local estimate, remaining - other requests in flight)`. Taking the minimum means a stale
 * answer that arrives late can never raise the estimate; the cost is a pessimism of at most the number
 * of concurrent requests, paid once (a few ms at 800/min), and it also picks up points spent by another
 * process sharing the client ID (the CLI beside the daemon).
 */
import type { Clock } from '../lib/clock.js';
import { AbortedError, throwIfAborted } from '../lib/errors.js';
import type { RawHeaders } from './http.js';

export interface RateLimitPacerOptions {
  clock: Clock;
  /** The period over which `Ratelimit-Limit` points are added, continuously. Default 60 000 ms. */
  windowMs?: number | undefined;
  /** Extra wait after `Ratelimit-Reset` following a 429 with an empty bucket. Default 250 ms. */
  marginMs?: number | undefined;
}

export interface PacerSnapshot {
  /** Bucket size from `Ratelimit-Limit`, or undefined before any answer carried it. */
  limit: number | undefined;
  /** Points the model thinks are left (whole points, never negative). */
  remaining: number | undefined;
  /** Epoch ms when the model expects the bucket to be full again. */
  resetAt: number | undefined;
}

const EPSILON = 1e-6;

/** Paces Helix requests by the `Ratelimit-*` headers. One per client ID (the app-token bucket is per client). */
export class RateLimitPacer {
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #marginMs: number;
  #limit: number | undefined;
  /** Points available after every reservation so far, as of `#at`. Meaningful once `#limit` is known. */
  #points = 0;
  #at = 0;
  /** Reserved by `take()` and not yet settled by `observe()`/`onEmpty429()`. */
  #inFlight = 0;
  #blockedUntil = 0;
  #tail: Promise<void> = Promise.resolve();

  constructor(options: RateLimitPacerOptions) {
    this.#clock = options.clock;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#marginMs = options.marginMs ?? 250;
    if (!(this.#windowMs > 0)) throw new RangeError(`windowMs must be positive: current value is ${this.#windowMs}`);
  }

  /**
   * Resolves once a point is reserved for one request; every `take()` must be followed by exactly one
   * `observe()` or `onEmpty429()` when the request ends (with `undefined` headers if it failed without an
   * answer). Before any `Ratelimit-*` header has been seen it never waits.
   * @throws AbortedError when `signal` aborts while queued or sleeping (no point is then reserved).
   */
  async take(signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    const previous = this.#tail;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.#tail = previous.then(() => mine);
    try {
      await untilSettledOrAborted(previous, signal);
      for (;;) {
        const wait = this.#waitMs();
        if (wait <= 0) break;
        await this.#clock.sleep(wait, signal);
      }
      if (this.#limit !== undefined) this.#points -= 1;
      this.#inFlight += 1;
    } finally {
      release();
    }
  }

  /** Settles one reservation and resyncs the model from an answer's headers (any status but an empty-bucket 429). */
  observe(headers: RawHeaders | undefined): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (!headers) return;
    const limit = intHeader(headers, 'ratelimit-limit');
    const remaining = intHeader(headers, 'ratelimit-remaining');
    const now = this.#clock.now();
    if (limit !== undefined && limit > 0) {
      if (this.#limit === undefined) {
        this.#points = limit - this.#inFlight;
        this.#at = now;
      }
      this.#limit = limit;
    }
    if (this.#limit === undefined || remaining === undefined) return;
    this.#refill(now);
    this.#points = Math.min(this.#points, this.#limit, remaining - this.#inFlight);
  }

  /**
   * The server said the bucket is empty (429 with `Ratelimit-Remaining` 0 or missing): settles the
   * reservation and makes the next `take()` wait until `Ratelimit-Reset` plus a margin (at least one
   * point's refill time, in case our clock runs ahead of Twitch's).
   */
  onEmpty429(headers: RawHeaders | undefined): void {
    this.observe(headers);
    const now = this.#clock.now();
    if (this.#limit !== undefined) {
      this.#refill(now);
      this.#points = Math.min(this.#points, -this.#inFlight);
    }
    const onePoint = this.#limit !== undefined ? this.#windowMs / this.#limit : 1000;
    const reset = headers ? intHeader(headers, 'ratelimit-reset') : undefined;
    const until = Math.max(reset !== undefined ? reset * 1000 : 0, now + onePoint) + this.#marginMs;
    this.#blockedUntil = Math.max(this.#blockedUntil, until);
  }

  /** The model's view, for metrics and progress output. */
  snapshot(): PacerSnapshot {
    const limit = this.#limit;
    if (limit === undefined) return { limit: undefined, remaining: undefined, resetAt: undefined };
    const now = this.#clock.now();
    this.#refill(now);
    const missing = Math.max(0, limit - this.#points);
    return {
      limit,
      remaining: Math.max(0, Math.floor(this.#points + EPSILON)),
      resetAt: Math.max(now, this.#blockedUntil) + Math.ceil(missing / this.#rate(limit) - EPSILON),
    };
  }

  /** How long the head of the queue must still wait for one point; 0 when it may go now. */
  #waitMs(): number {
    const now = this.#clock.now();
    if (now < this.#blockedUntil) return this.#blockedUntil - now;
    if (this.#limit === undefined) return 0;
    this.#refill(now);
    const deficit = 1 - this.#points;
    if (deficit <= EPSILON) return 0;
    return Math.max(1, Math.ceil(deficit / this.#rate(this.#limit) - EPSILON));
  }

  #refill(now: number): void {
    if (this.#limit === undefined) return;
    const elapsed = Math.max(0, now - this.#at);
    this.#points = Math.min(this.#limit, this.#points + elapsed * this.#rate(this.#limit));
    this.#at = now;
  }

  #rate(limit: number): number {
    return limit / this.#windowMs;
  }
}

function intHeader(headers: RawHeaders, name: string): number | undefined {
  let value = headers[name];
  if (value === undefined) {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : headers[key];
  }
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? Math.trunc(n) : undefined;
}

/** Waits for `p` (which never rejects) unless `signal` aborts first. */
function untilSettledOrAborted(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError({ cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
