/**
 * Waiting on events, never on sleeps: a deferred promise, the next call of a method, a condition checked again
 * whenever an emitter fires or code sleeps on a FakeClock, and (last resort) on every turn of the event loop.
 * Every wait has a generous guard timeout, so that a test that can no longer pass fails instead of hanging.
 */
import type { EventEmitter } from 'node:events';
import type { FakeClock } from './fake-clock.js';

const GUARD_MS = 10_000;

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

/** A promise and the functions that settle it. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Resolves once the next call of `obj[method]` has run up to its first await (so its synchronous effects are
 * visible); the call itself goes on as before, and later calls are not watched.
 */
export function nextCall<T extends object>(obj: T, method: keyof T & string): Promise<void> {
  return new Promise((resolve) => {
    const own = Object.prototype.hasOwnProperty.call(obj, method);
    const original = obj[method] as unknown as (...args: unknown[]) => unknown;
    const watched = function (this: unknown, ...args: unknown[]): unknown {
      if (own) Reflect.set(obj, method, original);
      else Reflect.deleteProperty(obj, method);
      const result = original.apply(this, args);
      resolve();
      return result;
    };
    Reflect.set(obj, method, watched);
  });
}

/**
 * Resolves once `cond()` holds: checked now and each time `subscribe` calls the check it is given (subscribe
 * returns its own undo). Rejects naming `what` after `timeoutMs`.
 */
function when(cond: () => boolean, what: string, timeoutMs: number, subscribe: (check: () => void) => () => void): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const finish = (err?: Error): void => {
      clearTimeout(guard);
      unsubscribe();
      if (err) reject(err);
      else resolve();
    };
    const guard = setTimeout(() => finish(new Error(`Timed out waiting for ${what}`)), timeoutMs);
    const unsubscribe = subscribe(() => {
      if (cond()) finish();
    });
  });
}

/** Resolves once `cond()` holds, checked now and after every `event` on `emitter` (e.g. a socket's 'data'). */
export function untilEmitted(emitter: EventEmitter, event: string, cond: () => boolean, what: string, timeoutMs = GUARD_MS): Promise<void> {
  return when(cond, what, timeoutMs, (check) => {
    emitter.on(event, check);
    return () => emitter.off(event, check);
  });
}

const sleepListeners = new WeakMap<FakeClock, Set<() => void>>();

/** Calls `listener` after every sleep() on `clock`, once that sleep is pending; returns the undo. */
export function onSleep(clock: FakeClock, listener: () => void): () => void {
  let listeners = sleepListeners.get(clock);
  if (!listeners) {
    const all = new Set<() => void>();
    listeners = all;
    sleepListeners.set(clock, all);
    const sleep = clock.sleep.bind(clock);
    clock.sleep = (ms, signal) => {
      const slept = sleep(ms, signal);
      for (const l of [...all]) l();
      return slept;
    };
  }
  const set = listeners;
  set.add(listener);
  return () => set.delete(listener);
}

/**
 * Resolves once `cond()` holds, checked now and after every sleep() on `clock`: for a state the code reaches
 * just as it starts to wait on the clock (a loop going back to sleep, a pause armed with a timeout).
 */
export function untilSleeping(clock: FakeClock, cond: () => boolean, what: string, timeoutMs = GUARD_MS): Promise<void> {
  return when(cond, what, timeoutMs, (check) => onSleep(clock, check));
}

/**
 * Last resort, for a state that no event announces (counters of a component without events): checks `cond()`
 * on every turn of the event loop (or asks Redis, say, on every turn: `cond` may be async). It yields with
 * setImmediate, letting I/O run, and never sleeps a set time.
 */
export async function untilTurn(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = GUARD_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
