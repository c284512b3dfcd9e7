import { AbortedError } from '../../src/lib/errors.js';
import type { Clock } from '../../src/lib/clock.js';

interface Sleeper {
  wakeAt: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. `sleep()` resolves when `advance()` passes its deadline.
 * `autoAdvance: true` makes every sleep jump the clock forward at once (for code that just paces itself).
 */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  readonly autoAdvance: boolean;
  /** Every sleep requested, in ms, in order: lets tests assert on what the code waited for. */
  readonly sleeps: number[] = [];

  constructor(start = Date.parse('2026-11-24T10:00:00.000Z'), options: { autoAdvance?: boolean } = {}) {
    this.#now = start;
    this.autoAdvance = options.autoAdvance ?? false;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (signal?.aborted) return Promise.reject(new AbortedError({ cause: signal.reason }));
    if (this.autoAdvance) {
      this.#now += Math.max(0, ms);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const sleeper: Sleeper = { wakeAt: this.#now + Math.max(0, ms), resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          reject(new AbortedError({ cause: signal.reason }));
        },
        { once: true },
      );
    });
  }

  /** Number of pending sleeps. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /** The earliest pending wake-up time, or undefined. */
  nextWake(): number | undefined {
    return this.#sleepers.reduce<number | undefined>((m, s) => (m === undefined || s.wakeAt < m ? s.wakeAt : m), undefined);
  }

  /** Moves time forward by `ms`, waking sleepers in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      const next = this.nextWake();
      if (next === undefined || next > target) break;
      this.#now = Math.max(this.#now, next);
      const due = this.#sleepers.filter((s) => s.wakeAt <= this.#now);
      this.#sleepers = this.#sleepers.filter((s) => s.wakeAt > this.#now);
      for (const s of due) s.resolve();
      await flushMicrotasks();
    }
    this.#now = target;
    await flushMicrotasks();
  }

  set(epochMs: number): void {
    this.#now = epochMs;
  }
}

export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
