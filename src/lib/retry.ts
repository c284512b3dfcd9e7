/**
 * Exponential backoff with full jitter. `backoffDelay(attempt)` is pure given `random`, so tests can pin it.
 */
export interface BackoffOptions {
  /** First delay in ms (attempt 1). */
  baseMs: number;
  /** Cap on any single delay in ms. */
  maxMs: number;
  /** Returns a number in [0, 1). Injected so tests are deterministic. */
  random?: () => number;
}

/** Delay before retry number `attempt` (1-based): uniform in [cap/2, cap] where cap = min(maxMs, baseMs * 2^(attempt-1)). */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(cap / 2 + (random() * cap) / 2);
}
