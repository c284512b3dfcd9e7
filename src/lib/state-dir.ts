/**
 * The state directory is trusted only after a look: it must be a directory this process owns, everything in
 * it a regular file or a directory owned by this process, and nothing a symbolic link (a link could point
 * eventsubd's truncations and writes at any file the process may write). Modes that let others in are
 * tightened to 0700 (directories) and 0600 (files); what cannot be fixed stops the start with exit 78, and so
 * does an EVENTSUBD_STATE_DIR that cannot be a state directory (STATE_DIR_INVALID: not a directory, cannot be
 * created, a link to nothing, not writable), with what is wrong in words.
 *
 * Files in it are opened with `O_NOFOLLOW` as well (`NOFOLLOW`, `readFileNoFollow`), so that a link planted
 * after the check is refused rather than followed. The state directory itself may be a link: systemd's
 * `DynamicUser=` makes `/var/lib/<name>` one.
 */
import { constants } from 'node:fs';
import { access, chmod, lstat, mkdir, open, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, StateDirError, type AppErrorOptions } from './errors.js';
import type { Logger } from './logger.js';

/** `O_NOFOLLOW` where the platform has it: opening a symbolic link then fails with ELOOP. */
export const NOFOLLOW: number = constants.O_NOFOLLOW ?? 0;

/** The state directory cannot be used safely (exit 78: the fix is the operator's). */
export class StateDirUnsafeError extends AppError {
  readonly path: string;
  constructor(path: string, message: string, options: AppErrorOptions = {}) {
    super('STATE_DIR_UNSAFE', message, options);
    this.path = path;
  }
}

/** EVENTSUBD_STATE_DIR names something that cannot be the state directory (exit 78: the fix is the setting). */
export class StateDirInvalidError extends AppError {
  readonly path: string;
  constructor(path: string, what: string, options: AppErrorOptions = {}) {
    super('STATE_DIR_INVALID', `The state directory ${path} (EVENTSUBD_STATE_DIR) ${what}`, options);
    this.path = path;
  }
}

export interface SecureStateDirOptions {
  /** This process's uid; undefined where the platform has none (no ownership check). */
  uid: number | undefined;
  logger: Logger;
  /** How many levels of subdirectories to check below the state directory. Default 2. */
  depth?: number;
  /** `fs.promises.access`; injected by tests (a root test process may write anywhere). */
  access?: (path: string, mode: number) => Promise<void>;
}

const FIX = 'or set EVENTSUBD_STATE_DIR to another directory';

/**
 * Creates `dir` (0700) if needed, then checks it and what it holds, tightening modes.
 * @throws StateDirInvalidError (STATE_DIR_INVALID) when `dir` is not a directory, cannot be created, is a link
 *   to nothing or is not writable; StateDirUnsafeError (STATE_DIR_UNSAFE) naming the path to fix; StateDirError
 *   when something inside cannot be read.
 */
export async function secureStateDir(dir: string, options: SecureStateDirOptions): Promise<void> {
  const st = await directoryAt(dir);
  await tighten(dir, st, 0o700, options);
  await checkWritable(dir, options);
  await walk(dir, options.depth ?? 2, options);
}

/**
 * The light check of the commands that only keep their token cache there: creates `dir` (0700) if needed and
 * checks that it is a directory this process can write. Looks at nothing inside.
 * @throws StateDirInvalidError (STATE_DIR_INVALID) saying what is wrong.
 */
export async function ensureStateDir(dir: string, options: Pick<SecureStateDirOptions, 'uid' | 'access'> = { uid: undefined }): Promise<void> {
  await directoryAt(dir);
  await checkWritable(dir, options);
}

/** Creates `dir` if needed; its stat once it is known to be a directory. */
async function directoryAt(dir: string): Promise<{ uid: number; mode: number }> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') throw await notCreated(dir, err as NodeJS.ErrnoException);
  }
  const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    throw new StateDirInvalidError(dir, `cannot be examined: ${err.code ?? err.message}`, { cause: err });
  });
  if (!st.isDirectory()) throw new StateDirInvalidError(dir, `is not a directory: remove that file, ${FIX}`);
  return st;
}

async function checkWritable(dir: string, options: Pick<SecureStateDirOptions, 'uid' | 'access'>): Promise<void> {
  try {
    await (options.access ?? access)(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const who = options.uid === undefined ? 'this process' : `this process (uid ${options.uid})`;
    const why = code === 'EROFS' ? 'is on a read-only file system (EROFS)' : `is not writable by ${who} (${code})`;
    throw new StateDirInvalidError(dir, `${why}: fix its permissions, ${FIX}`, { cause: err });
  }
}

/** Why `dir` could not be created, in words: a link to nothing, a parent that is a file, no permission. */
async function notCreated(dir: string, err: NodeJS.ErrnoException): Promise<StateDirInvalidError> {
  const link = await readlink(dir).catch(() => undefined);
  if (link !== undefined) {
    return new StateDirInvalidError(dir, `is a symbolic link to ${link}, which does not exist: create the target, ${FIX}`, { cause: err });
  }
  const reasons: Record<string, string> = {
    EACCES: 'permission denied (EACCES)',
    EPERM: 'permission denied (EPERM)',
    ENOTDIR: 'a part of its path is a file, not a directory (ENOTDIR)',
    EROFS: 'the file system is read-only (EROFS)',
    ENOSPC: 'the disk is full (ENOSPC)',
  };
  const why = reasons[err.code ?? ''] ?? err.code ?? err.message;
  return new StateDirInvalidError(dir, `does not exist and cannot be created: ${why}: create it, ${FIX}`, { cause: err });
}

async function walk(dir: string, depthLeft: number, options: SecureStateDirOptions): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new StateDirError(`Cannot read ${dir}: ${(err as Error).message}`, { cause: err });
  }
  for (const name of names) {
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue; // removed meanwhile
    if (st.isSymbolicLink()) {
      throw new StateDirUnsafeError(path, `${path} is a symbolic link: eventsubd does not follow links inside its state directory; remove it`);
    }
    if (st.isDirectory()) {
      await tighten(path, st, 0o700, options);
      if (depthLeft > 0) await walk(path, depthLeft - 1, options);
    } else if (st.isFile()) {
      await tighten(path, st, 0o600, options);
    } else {
      throw new StateDirUnsafeError(path, `${path} is not a regular file or a directory: remove it from the state directory`);
    }
  }
}

async function tighten(
  path: string,
  st: { uid: number; mode: number },
  allowed: number,
  options: SecureStateDirOptions,
): Promise<void> {
  if (options.uid !== undefined && st.uid !== options.uid) {
    throw new StateDirUnsafeError(path, `${path} belongs to uid ${st.uid}, not to this process (uid ${options.uid}): chown it, or use another EVENTSUBD_STATE_DIR`);
  }
  const mode = st.mode & 0o777;
  if ((mode & ~allowed) === 0) return;
  const tightened = mode & allowed;
  try {
    await chmod(path, tightened);
  } catch (err) {
    throw new StateDirUnsafeError(path, `${path} has mode ${octal(mode)} and cannot be set to ${octal(tightened)}: ${(err as Error).message}`, { cause: err });
  }
  options.logger.warn('Tightened the mode of a state file that others could read or write', { path, from: octal(mode), to: octal(tightened) });
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/**
 * A file's text, opened without following a symbolic link, and only if it is a regular file (a FIFO would
 * block the reader). Errors keep their `code` (ENOENT, ELOOP...) for the caller to word.
 */
export async function readFileNoFollow(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EINVAL' });
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
