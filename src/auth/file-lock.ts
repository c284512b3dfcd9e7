/**
 * A cross-process lock file (created whole by `link()`), so that the daemon and CLI processes sharing one state
 * directory never mint two tokens at once. A holder that died or has held the lock for longer than
 * `staleMs` is considered gone and its lock is broken.
 */
import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import type { Clock } from '../lib/clock.js';
import { StateDirError, throwIfAborted } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export interface FileLockOptions {
  /** The lock file; its directory must exist. */
  path: string;
  clock: Clock;
  logger: Logger;
  /** This process's id, written into the lock. */
  pid: number;
  /** True when a process with this id exists (`process.kill(pid, 0)` in production). */
  isAlive: (pid: number) => boolean;
  /** A lock older than this (ms, by its recorded time) is stale. */
  staleMs: number;
  /** How often (ms) a waiter looks again. */
  pollMs: number;
}

interface LockRecord {
  pid: number;
  time: number;
}

/**
 * Runs `fn` while holding the lock at `options.path`; waits (polling) while another holder has it.
 * The lock is released in `finally`, whatever `fn` does.
 * @throws StateDirError when the lock file cannot be created; AbortedError when `signal` aborts while waiting.
 */
export async function withFileLock<T>(options: FileLockOptions, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const content = await acquire(options, signal);
  try {
    return await fn();
  } finally {
    await release(options, content);
  }
}

async function acquire(options: FileLockOptions, signal: AbortSignal | undefined): Promise<string> {
  // First time we saw an unreadable lock: a holder between open() and write(), or one that died there.
  let unreadableSince: number | undefined;
  for (;;) {
    throwIfAborted(signal);
    const content = JSON.stringify({ pid: options.pid, time: new Date(options.clock.now()).toISOString(), nonce: randomUUID() });
    if (await tryCreate(options.path, content)) return content;
    const held = await readLock(options.path);
    if (held === undefined) {
      // Released between our open() and readFile(): try again at once.
    } else if (held.record === undefined) {
      unreadableSince ??= options.clock.now();
      if (options.clock.now() - unreadableSince > options.staleMs) {
        await breakStale(options, held.raw, 'unreadable');
        unreadableSince = undefined;
        continue;
      }
    } else {
      const reason = staleReason(options, held.record);
      if (reason) {
        await breakStale(options, held.raw, reason);
        continue;
      }
    }
    await options.clock.sleep(options.pollMs, signal);
  }
}

/**
 * Creates the lock with its content in one step: the content goes to a temporary file first, which is then
 * hard-linked to the lock's name (link fails when the lock exists). A holder killed at any moment so leaves
 * either no lock or a complete one, never an empty lock that others would wait `staleMs` to break.
 */
async function tryCreate(path: string, content: string): Promise<boolean> {
  const temp = `${path}.${randomUUID()}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StateDirError(`Cannot create the lock file ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function readLock(path: string): Promise<{ raw: string; record: LockRecord | undefined } | undefined> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateDirError(`Cannot read the lock file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return { raw, record: parseRecord(raw) };
}

function parseRecord(raw: string): LockRecord | undefined {
  try {
    const value = JSON.parse(raw) as { pid?: unknown; time?: unknown };
    const time = typeof value.time === 'string' ? Date.parse(value.time) : NaN;
    if (typeof value.pid !== 'number' || !Number.isInteger(value.pid) || Number.isNaN(time)) return undefined;
    return { pid: value.pid, time };
  } catch {
    return undefined;
  }
}

function staleReason(options: FileLockOptions, record: LockRecord): string | undefined {
  if (options.clock.now() - record.time > options.staleMs) return 'older than the stale limit';
  if (!options.isAlive(record.pid)) return 'holder is not running';
  return undefined;
}

/**
 * Moves the stale lock aside atomically, then checks it is the one we judged: if another waiter broke it
 * first and a new holder took the lock meanwhile, we moved a live lock, so we put it back.
 */
async function breakStale(options: FileLockOptions, judged: string, reason: string): Promise<void> {
  const grave = `${options.path}.${randomUUID()}.stale`;
  try {
    await rename(options.path, grave);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StateDirError(`Cannot break the stale lock ${options.path}: ${(err as Error).message}`, { cause: err });
  }
  const moved = await readFile(grave, 'utf8').catch(() => undefined);
  if (moved !== judged) await link(grave, options.path).catch(() => undefined);
  else options.logger.warn('Broke a stale token lock', { path: options.path, reason });
  await unlink(grave).catch(() => undefined);
}

/** Removes the lock only if it is still ours: a holder that outlived `staleMs` may have lost it. */
async function release(options: FileLockOptions, content: string): Promise<void> {
  const current = await readFile(options.path, 'utf8').catch(() => undefined);
  if (current !== content) {
    options.logger.warn('The token lock was taken over while held (held longer than the stale limit)', { path: options.path });
    return;
  }
  await unlink(options.path).catch(() => undefined);
}

/** `process.kill(pid, 0)`: ESRCH means gone; EPERM means it exists but belongs to another user. */
export function processIsAlive(kill: (pid: number, signal: 0) => unknown): (pid: number) => boolean {
  return (pid) => {
    try {
      kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
}
