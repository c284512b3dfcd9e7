/**
 * Persists a consumer cursor that moves often without writing it once per move: at most one save runs at a
 * time, and the moves made meanwhile are covered by one more save. The saved value only ever trails the
 * real one, so a crash re-delivers and never skips.
 */
import type { CursorStore } from '../journal/cursor.js';
import type { Logger } from '../lib/logger.js';

export class CursorSaver {
  readonly #cursor: Pick<CursorStore, 'save'>;
  readonly #logger: Logger;
  #saved: number;
  #wanted: number;
  #saving: Promise<void> | undefined;

  constructor(options: { cursor: Pick<CursorStore, 'save'>; logger: Logger; saved: number }) {
    this.#cursor = options.cursor;
    this.#logger = options.logger;
    this.#saved = this.#wanted = options.saved;
  }

  /** The value last written. */
  get saved(): number {
    return this.#saved;
  }

  /** Asks for `seq` to be saved; resolves once it is, or once the attempt failed (logged, never thrown). */
  save(seq: number): Promise<void> {
    this.#wanted = Math.max(this.#wanted, seq);
    if (this.#saving) return this.#saving; // the running loop sees the new value before it ends
    if (this.#saved >= this.#wanted) return Promise.resolve();
    this.#saving = this.#loop(); // awaits before it ends, so this assignment precedes its `finally`
    return this.#saving;
  }

  /** Saves the latest wanted value, retrying once if the previous attempt failed. */
  async flush(): Promise<void> {
    await this.#saving;
    if (this.#saved < this.#wanted) await this.save(this.#wanted);
  }

  async #loop(): Promise<void> {
    try {
      while (this.#saved < this.#wanted) {
        const seq = this.#wanted;
        await this.#cursor.save(seq);
        this.#saved = seq;
      }
    } catch (err) {
      this.#logger.warn('Cannot save a consumer cursor; a restart would re-deliver from the last saved one', { err, saved: this.#saved });
    } finally {
      this.#saving = undefined;
    }
  }
}
