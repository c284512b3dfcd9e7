/**
 * Exponential backoff with equal jitter, and the one retry loop built on it. `backoffDelay(attempt)` is pure
 * given `random`, so tests can pin it.
 */
import type { Clock } from './clock.js';
import { AbortedError, throwIfAborted } from './errors.js';

export interface BackoffOptions {
  /** First delay in ms (attempt 1). */
  baseMs: number;
  /** Cap on any single delay in ms. */
  maxMs: number;
  /** Returns a number in [0, 1). Injected so tests are deterministic. */
  random?: (() => number) | undefined;
}

/**
 * Delay before retry number `attempt` (1-based), with equal jitter: uniform in [cap/2, cap] where
 * cap = min(maxMs, baseMs * 2^(attempt-1)). Half the delay is kept, so retries never bunch up at zero.
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

export interface RetryOptions {
  clock: Clock;
  backoff: BackoffOptions;
  signal?: AbortSignal | undefined;
  /** Attempts in all, the first included. Default: no limit (until `signal` aborts). */
  attempts?: number | undefined;
  /** Whether a failure is worth another attempt. Default: every failure. */
  isRetriable?: ((err: unknown) => boolean) | undefined;
  /** Told of each failure about to be retried: the attempt that failed (1-based) and the wait before the next. */
  onRetry?: ((err: unknown, attempt: number, delayMs: number) => void) | undefined;
}

/**
 * Runs `fn(attempt)` until it resolves; after a retriable failure waits `backoffDelay(attempt)` on `clock`
 * and tries again.
 * @throws the failure when it is not retriable or was the last attempt; AbortedError when `signal` aborts
 *   (before an attempt or during a wait).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const last = options.attempts ?? Number.POSITIVE_INFINITY;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(options.signal);
    try {
      return await fn(attempt);
    } catch (err) {
      if (err instanceof AbortedError || options.signal?.aborted) throw err instanceof AbortedError ? err : new AbortedError({ cause: err });
      if (attempt >= last || !(options.isRetriable?.(err) ?? true)) throw err;
      const delay = backoffDelay(attempt, options.backoff);
      options.onRetry?.(err, attempt, delay);
      await options.clock.sleep(delay, options.signal);
    }
  }
}
