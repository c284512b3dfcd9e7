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
