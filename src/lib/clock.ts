import { AbortedError } from './errors.js';

/** The longest delay `setTimeout` honours; longer ones fire after ~1 ms (Node's TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Time, injected. Production uses `systemClock`; tests use `FakeClock` (test/helpers) so that nothing
 * sleeps for real. `now()` is epoch milliseconds.
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms` (clamped at 0), rejects with AbortedError when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Sleeps in steps of at most MAX_TIMER_MS so that a 58-day wait never fires early. */
async function sleepClamped(ms: number, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + Math.max(0, ms);
  for (;;) {
    const left = deadline - Date.now();
    if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
    if (left <= 0) return;
    await sleepOnce(Math.min(left, MAX_TIMER_MS), signal);
  }
}

function sleepOnce(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortedError({ cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: sleepClamped,
});

/**
 * Waits for `work` to settle, but no longer than `ms` on `clock`: resolves 'done' when it settled (whether
 * it resolved or rejected) and 'late' when the time ran out first (the work itself goes on).
 */
export async function settleWithin(work: Promise<unknown>, ms: number, clock: Clock): Promise<'done' | 'late'> {
  const timer = new AbortController();
  const late = clock.sleep(ms, timer.signal).then(
    () => 'late' as const,
    () => 'done' as const,
  );
  try {
    return await Promise.race([work.then(
      () => 'done' as const,
      () => 'done' as const,
    ), late]);
  } finally {
    timer.abort();
  }
}

/** ISO 8601 (UTC, ms) of an epoch-ms time; null for none and for "never" (Number.MAX_SAFE_INTEGER and above). */
export function isoTime(ms: number | undefined): string | null {
  return ms === undefined || ms >= Number.MAX_SAFE_INTEGER ? null : new Date(ms).toISOString();
}
