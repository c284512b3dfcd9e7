/**
 * One daemon per state directory: the journal has a single writer. The lock is a kernel lock on
 * `STATE_DIR/daemon.pid` (lib/file-lock.ts): taken in one step, dropped by the kernel when the daemon exits or
 * is killed, whatever process later gets its pid. The file keeps the holder's pid, for `kill -HUP`.
 */
import { join } from 'node:path';
import { AppError } from '../lib/errors.js';
import { lockHolder, tryLockFile, type HeldLock } from '../lib/file-lock.js';

export const INSTANCE_LOCK_FILE = 'daemon.pid';

/**
 * Takes the state directory for this daemon.
 * @throws AppError STATE_DIR_LOCKED when another process holds it; StateDirError when the lock file is unusable.
 */
export async function acquireInstanceLock(stateDir: string, deps: { pid: number }): Promise<HeldLock> {
  const path = join(stateDir, INSTANCE_LOCK_FILE);
  const lock = await tryLockFile(path, `${deps.pid}\n`);
  if (lock) return lock;
  const holder = await lockHolder(path).catch(() => undefined);
  const who = holder && /^\d+$/.test(holder) ? ` (pid ${holder})` : '';
  throw new AppError('STATE_DIR_LOCKED', `Another eventsubd${who} is running on ${stateDir}: stop it first, or give this one its own EVENTSUBD_STATE_DIR`);
}

/** The pid of the daemon running on `stateDir`, or undefined when no daemon holds its lock. */
export async function runningDaemonPid(stateDir: string): Promise<number | undefined> {
  const holder = await lockHolder(join(stateDir, INSTANCE_LOCK_FILE));
  const pid = holder === undefined ? Number.NaN : Number(holder);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
