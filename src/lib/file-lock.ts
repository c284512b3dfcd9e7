/**
 * Cross-process locks held by the kernel: an exclusive open-file-description lock on Linux (`fcntl` with
 * `F_OFD_SETLK`; `flock` on macOS) through the `fs-native-extensions` addon, since Node has no API for it.
 *
 * Such a lock cannot be half-taken and cannot outlive its holder: it is one system call, and the kernel drops
 * it when the holder closes the file or dies (`kill -9` included), whatever its pid later names. The lock
 * file is never removed: removing it would let a second process lock a new file under the same name while
 * the first still holds the old one. What the file contains (the holder's pid) is only for messages and for
 * `kill -HUP`; the lock itself is the truth.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Clock } from './clock.js';
import { StateDirError, throwIfAborted } from './errors.js';

interface LockAddon {
  tryLock(fd: number): boolean;
  unlock(fd: number): void;
}

let addon: LockAddon | undefined;
function lockAddon(): LockAddon {
  addon ??= createRequire(import.meta.url)('fs-native-extensions') as LockAddon;
  return addon;
}

/** A lock held by this process. */
export interface HeldLock {
  readonly path: string;
  /** Unlocks and closes the file (the file stays). Idempotent. */
  release(): Promise<void>;
}

/** Opens read-write, creating it 0600, never through a symlink (ELOOP), and only a regular file. */
async function openLockFile(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'it is a symbolic link' : (err as Error).message;
    throw new StateDirError(`Cannot open the lock file ${path}: ${why}`, { cause: err });
  }
  const stat = await handle.stat().catch(() => undefined);
  if (!stat?.isFile()) {
    await handle.close().catch(() => undefined);
    throw new StateDirError(`Cannot use the lock file ${path}: it is not a regular file`);
  }
  return handle;
}

/**
 * Takes the lock at `path` if no other open file holds it, and writes `holder` (e.g. a pid) into the file.
 * Resolves with undefined when another process (or another open of the file in this process) holds it.
 * A failure to write `holder` (a full disk) is ignored: the lock is held all the same.
 * @throws StateDirError when the file cannot be opened, is a symlink or not a regular file, or cannot be locked.
 */
export async function tryLockFile(path: string, holder?: string): Promise<HeldLock | undefined> {
  const handle = await openLockFile(path);
  let locked: boolean;
  try {
    locked = lockAddon().tryLock(handle.fd);
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw new StateDirError(`Cannot lock ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!locked) {
    await handle.close().catch(() => undefined);
    return undefined;
  }
  if (holder !== undefined) {
    await handle
      .truncate(0)
      .then(() => handle.write(holder, 0))
      .catch(() => undefined);
  }
  let released: Promise<void> | undefined;
  return {
    path,
    release() {
      released ??= (async () => {
        try {
          lockAddon().unlock(handle.fd);
        } catch {
          // Closing the file below drops the lock anyway.
        }
        await handle.close().catch(() => undefined);
      })();
      return released;
    },
  };
}

export interface WaitForLockOptions {
  clock: Clock;
  /** How often to try again while another process holds the lock, ms. */
  pollMs: number;
  /** Give up after this long (ms) and resolve undefined. Default: wait until `signal` aborts. */
  maxWaitMs?: number | undefined;
  /** Written into the lock file once held. */
  holder?: string | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Takes the lock at `path`, trying again every `pollMs` while another process holds it; resolves undefined
 * once `maxWaitMs` has passed without it.
 * @throws StateDirError as `tryLockFile`; AbortedError when `signal` aborts while waiting.
 */
export async function waitForLockFile(path: string, options: WaitForLockOptions): Promise<HeldLock | undefined> {
  const deadline = options.clock.now() + (options.maxWaitMs ?? Number.POSITIVE_INFINITY);
  for (;;) {
    throwIfAborted(options.signal);
    const held = await tryLockFile(path, options.holder);
    if (held) return held;
    const left = deadline - options.clock.now();
    if (left <= 0) return undefined;
    await options.clock.sleep(Math.min(options.pollMs, left), options.signal);
  }
}

/**
 * The text a current holder wrote into the lock file (e.g. its pid), or undefined when nobody holds the lock
 * (checked by taking it for a moment) or the file does not exist.
 * @throws StateDirError when the file exists but cannot be opened or locked.
 */
export async function lockHolder(path: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateDirError(`Cannot open the lock file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const text = (await handle.readFile('utf8')).trim();
    const probe = await tryLockFile(path);
    if (probe) {
      await probe.release();
      return undefined;
    }
    return text;
  } finally {
    await handle.close().catch(() => undefined);
  }
}
