import type { FsyncHistogram } from './types.js';

/** Upper bounds in ms, from a fast NVMe fdatasync to a struggling network disk. */
export const FSYNC_BOUNDS_MS: readonly number[] = Object.freeze([0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500]);

/** A cumulative latency histogram for `/metrics` (Prometheus `_bucket{le=...}`, `_sum`, `_count`). */
export class LatencyHistogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #count = 0;
  #sumMs = 0;

  constructor(bounds: readonly number[] = FSYNC_BOUNDS_MS) {
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }

  observe(ms: number): void {
    this.#count += 1;
    this.#sumMs += ms;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (ms <= this.#bounds[i]!) this.#counts[i]! += 1;
    }
  }

  snapshot(): FsyncHistogram {
    return { boundsMs: this.#bounds, counts: [...this.#counts], count: this.#count, sumMs: this.#sumMs };
  }
}
