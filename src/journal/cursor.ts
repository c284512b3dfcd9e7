/**
 * A named consumer's position in the journal (README.md "Delivery to your application"), persisted as
 * `STATE_DIR/cursors/<name>.json` = `{"seq":N}`: mode 0600 in a 0700 directory, replaced atomically
 * (temp file, fsync, rename, fsync of the directory) so that a crash leaves the old or the new value.
 */
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { StateDirError } from '../lib/errors.js';
import { readFileNoFollow } from '../lib/state-dir.js';

/** The subset of node:fs/promises the cursor store uses; replaced in tests. */
export interface CursorFs {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<unknown>;
  open(path: string, flags: string, mode?: number): Promise<{ writeFile(data: string): Promise<void>; sync(): Promise<void>; close(): Promise<void> }>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

const nodeCursorFs: CursorFs = {
  readFile: (path) => readFileNoFollow(path),
  mkdir: (path, options) => fsp.mkdir(path, options),
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
};

export interface CursorStoreOptions {
  /** The state directory; the file is `<stateDir>/cursors/<name>.json`. */
  stateDir: string;
  /** Letters, digits, `-` and `_` (it becomes a file name). */
  name: string;
  fs?: Partial<CursorFs>;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** One named consumer cursor (`load()` / `save(seq)`), file-backed. */
export class CursorStore {
  readonly #dir: string;
  readonly #file: string;
  readonly #fs: CursorFs;

  /** @throws StateDirError when `name` is not usable as a file name. */
  constructor(options: CursorStoreOptions) {
    if (!NAME.test(options.name)) {
      throw new StateDirError(`Cannot use '${options.name}' as a cursor name: use 1-64 letters, digits, '-' or '_'`);
    }
    this.#dir = join(options.stateDir, 'cursors');
    this.#file = join(this.#dir, `${options.name}.json`);
    this.#fs = { ...nodeCursorFs, ...options.fs };
  }

  /** The path of the cursor file. */
  get path(): string {
    return this.#file;
  }

  /**
   * The saved seq; 0 when none was saved yet.
   * @throws StateDirError when the file cannot be read or does not hold `{"seq": <non-negative integer>}`.
   */
  async load(): Promise<number> {
    let raw: string;
    try {
      raw = await this.#fs.readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new StateDirError(`Cannot read the cursor file ${this.#file}: ${(err as Error).message}`, { cause: err });
    }
    let seq: unknown;
    try {
      seq = (JSON.parse(raw) as { seq?: unknown } | null)?.seq;
    } catch (err) {
      throw new StateDirError(`Cannot read the cursor file ${this.#file}: it is not valid JSON`, { cause: err });
    }
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
      throw new StateDirError(`Cannot read the cursor file ${this.#file}: 'seq' must be a non-negative integer: current value is ${JSON.stringify(seq)}`);
    }
    return seq;
  }

  /**
   * Persists `seq` durably and atomically.
   * @throws StateDirError when `seq` is not a non-negative integer or the file cannot be written.
   */
  async save(seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new StateDirError(`Cannot save the cursor as 'seq' must be a non-negative integer: current value is ${seq}`);
    }
    const tmp = join(this.#dir, `.${randomUUID()}.tmp`);
    try {
      await this.#fs.mkdir(this.#dir, { recursive: true, mode: 0o700 });
      const handle = await this.#fs.open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify({ seq })}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.#fs.rename(tmp, this.#file);
      const dir = await this.#fs.open(this.#dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      await this.#fs.unlink(tmp).catch(() => undefined);
      throw new StateDirError(`Cannot write the cursor file ${this.#file}: ${(err as Error).message}`, { cause: err });
    }
  }
}
