/**
 * The redis-server behind the Redis journal's receiver figure: one process for the run, on a free loopback port, in
 * a temporary directory, durable as the daemon requires by default (`--appendonly yes --appendfsync always`:
 * every acknowledged notification is on Redis's disk). Each measured run uses its own key prefix, so the runs
 * share the server but not their journals or de-duplication keys.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './proc.mjs';

const START_GUARD_MS = 10_000;

/** Whether `redis-server` can be run; its version line when it can. */
export function redisServerVersion() {
  try {
    return execFileSync('redis-server', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Starts redis-server in a fresh directory under `root`; resolves with `{url, port, dir, version, pid, stop()}` once it
 * prints that it accepts connections. `stop()` (SIGTERM, wait, remove the directory) is idempotent.
 */
export async function startBenchRedis(root) {
  const dir = await mkdtemp(join(root, 'eventsubd-bench-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
    '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', '',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await new Promise((resolve, reject) => {
      let log = '';
      const guard = setTimeout(() => reject(new Error(`redis-server did not start within ${START_GUARD_MS} ms:\n${log}`)), START_GUARD_MS);
      child.once('error', (err) => {
        clearTimeout(guard);
        reject(err.code === 'ENOENT' ? new Error('redis-server is not installed (Debian: apt-get install redis-server)') : err);
      });
      void exited.then(() => {
        clearTimeout(guard);
        reject(new Error(`redis-server exited before it was ready:\n${log}`));
      });
      // Both pipes stay drained for the server's life: a full pipe would block its logging.
      const onData = (d) => {
        log = (log + d).slice(-4000);
        if (log.includes('Ready to accept connections')) {
          clearTimeout(guard);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
    });
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // Never leave the server behind a bench that crashed before its stop().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopping;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: child.pid,
    version: redisServerVersion(),
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
        process.removeListener('exit', killOnExit);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
