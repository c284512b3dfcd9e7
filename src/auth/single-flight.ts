/**
 * One operation in flight, shared by every caller that arrives while it runs (so that a burst of callers,
 * or of 401s, makes one mint, not a storm of them). Each caller may stop waiting through its own
 * signal; the shared work goes on for the others.
 */
import { AbortedError } from '../lib/errors.js';

export class SingleFlight<T> {
  #inflight: Promise<T> | undefined;

  /** The operation in flight, if any. */
  get current(): Promise<T> | undefined {
    return this.#inflight;
  }

  /** Joins the operation in flight, or starts `start()` as the new one. */
  join(start: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!this.#inflight) {
      const run = start();
      this.#inflight = run;
      const clear = (): void => {
        if (this.#inflight === run) this.#inflight = undefined;
      };
      run.then(clear, clear);
    }
    return raceSignal(this.#inflight, signal);
  }
}

/** `promise`, unless `signal` aborts first: then AbortedError. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new AbortedError({ cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError({ cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the shared operation's own rejection, passed on unchanged
        reject(err);
      },
    );
  });
}
