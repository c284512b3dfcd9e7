/**
 * One daemon per state directory: the journal has a single writer. `STATE_DIR/daemon.pid` is created
 * exclusively; a file left by a process that no longer exists (a crash, `kill -9`) is taken over.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, StateDirError } from '../lib/errors.js';

export interface InstanceLock {
  release(): Promise<void>;
}

export async function acquireInstanceLock(
  stateDir: string,
  deps: { pid: number; isAlive: (pid: number) => boolean },
): Promise<InstanceLock> {
  const path = join(stateDir, 'daemon.pid');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${deps.pid}\n`);
      await fh.close();
      return {
        async release() {
          await unlink(path).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StateDirError(`Cannot create ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
      }
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder > 0 && holder !== deps.pid && deps.isAlive(holder)) {
      throw new AppError('STATE_DIR_UNUSABLE', `Another eventsubd (pid ${holder}) is running on ${stateDir}`);
    }
    await unlink(path).catch(() => {});
  }
  throw new StateDirError(`Cannot take over ${path}`);
}
