/**
 * A real `redis-server` for tests (issue 15 forbids a mock): one process on a free loopback port with its own
 * temporary directory, durable by default (`--appendonly yes --appendfsync always`, as the daemon requires), started
 * and stopped by the test that asked for it. Readiness is the server's own "Ready to accept connections" log line
 * (printed after the AOF is loaded), so no test sleeps or polls blindly. When `redis-server` is not installed this
 * fails loudly instead of skipping: a skipped Redis test would hide exactly the faults it exists to catch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createClient } from 'redis';
import type { RedisClient } from '../../src/storage/types.js';

const READY_LINE = 'Ready to accept connections';
const START_GUARD_MS = 10_000;
const STOP_GUARD_MS = 10_000;
/** How much of the server's log is kept for error messages. */
const LOG_TAIL_CHARS = 4_000;

export interface RedisServerOptions {
  /** `--appendfsync`; `always` by default (nothing acknowledged is lost when the process is killed). */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** `--appendonly`; true by default. */
  appendonly?: boolean;
  /** `--requirepass` for the `default` user; `url` then carries it. */
  password?: string;
  /** More arguments for `redis-server`, after ours (a later option wins). */
  args?: string[];
}

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>`, or `redis://default:<password>@127.0.0.1:<port>` with a password. */
  readonly url: string;
  readonly port: number;
  /** The server's `--dir`: its AOF directory (`appendonlydir/`) lives here. Removed by `dispose()`. */
  readonly dir: string;
  /** The pid of the current process (a new one after `restart()`). */
  readonly pid: number;
  /** SIGTERM and wait for the exit (Redis fsyncs and closes its AOF). Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit: a crash, no shutdown work. Idempotent. */
  kill9(): Promise<void>;
  /** Stops the server if it runs (SIGTERM), then starts it again on the same port and dir: data kept per AOF. */
  restart(): Promise<void>;
  /** `stop()`, then removes `dir`. What `t.after` runs. */
  dispose(): Promise<void>;
}

/** Thrown when `redis-server` cannot be run at all. */
export class RedisServerMissingError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('Cannot run redis-server, which the Redis tests need: install Debian\'s redis-server; .ci/run does', options);
    this.name = 'RedisServerMissingError';
  }
}

/** A port the kernel just handed out on 127.0.0.1 (free at that moment; Redis refusing it is retried). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('Cannot read the port of a probe listener'));
      });
    });
  });
}

function serverArgs(port: number, dir: string, options: RedisServerOptions): string[] {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--appendonly', options.appendonly === false ? 'no' : 'yes',
    '--appendfsync', options.appendfsync ?? 'always',
    '--save', '',
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    '--logfile', '',
  ];
  if (options.password !== undefined) args.push('--requirepass', options.password);
  return [...args, ...(options.args ?? [])];
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
}

/**
 * Spawns one `redis-server` and resolves once it printed its ready line; rejects (and reaps the process) if it
 * exits first, or after the guard timeout, with the end of its log in the message.
 */
function spawnServer(args: string[]): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let ready = false;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    const onData = (chunk: Buffer): void => {
      log = (log + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
      if (!ready && log.includes(READY_LINE)) {
        ready = true;
        clearTimeout(guard);
        resolve({ child, exited });
      }
    };
    // Both streams are drained for the life of the process: a full pipe would block the server's logging.
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not become ready within ${START_GUARD_MS} ms; its log ends:\n${log}`));
    }, START_GUARD_MS);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(guard);
      reject(err.code === 'ENOENT' ? new RedisServerMissingError({ cause: err }) : err);
    });
    void exited.then(() => {
      if (ready) return;
      clearTimeout(guard);
      reject(new Error(`redis-server exited before it was ready (code ${child.exitCode}, signal ${child.signalCode}); its log ends:\n${log}`));
    });
  });
}

/** Sends `signal` to the running server, if any, and waits for it to exit. */
async function signalAndWait(running: Running | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!running) return;
  if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill(signal);
  let guard: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new Error(`redis-server (pid ${running.child.pid}) did not exit within ${STOP_GUARD_MS} ms of ${signal}`)), STOP_GUARD_MS);
  });
  try {
    await Promise.race([running.exited, timeout]);
  } finally {
    clearTimeout(guard);
  }
}

/**
 * Starts a `redis-server` on 127.0.0.1 (free port, temporary dir, AOF with `appendfsync always` unless told
 * otherwise) and resolves once it accepts connections. With `t`, `dispose()` runs in `t.after`; without it the
 * caller disposes. A server left running when this process exits is killed with it.
 */
export async function startRedisServer(t?: TestContext, options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'eventsubd-redis-'));
  let port = 0;
  let running: Running | undefined;
  // Another process may take the probed port before Redis binds it: a few fresh ports before giving up.
  for (let attempt = 1; !running; attempt++) {
    port = await freePort();
    try {
      running = await spawnServer(serverArgs(port, dir, options));
    } catch (err) {
      const portTaken = err instanceof Error && /Address already in use/i.test(err.message);
      if (!portTaken || attempt === 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  // Never leave an orphan server behind a test process that died before its `t.after` ran.
  const killOnExit = (): void => {
    running?.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const auth = options.password === undefined ? '' : `default:${encodeURIComponent(options.password)}@`;
  let disposed = false;
  const handle: RedisServerHandle = {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    dir,
    get pid(): number {
      return running!.child.pid!;
    },
    stop: () => signalAndWait(running, 'SIGTERM'),
    kill9: () => signalAndWait(running, 'SIGKILL'),
    async restart(): Promise<void> {
      if (disposed) throw new Error('Cannot restart a disposed redis-server');
      await signalAndWait(running, 'SIGTERM');
      running = await spawnServer(serverArgs(port, dir, options));
    },
    async dispose(): Promise<void> {
      disposed = true;
      await signalAndWait(running, 'SIGTERM');
      process.removeListener('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
  t?.after(() => handle.dispose());
  return handle;
}

/**
 * A node-redis client on `url` for a test, connected, destroyed after the test. Errors are left to the commands
 * (a test that kills its server sees them there). `reconnect: false` for an admin client that must not outlive its
 * server's first death.
 */
export async function redisClient(t: TestContext, url: string, options: { reconnect?: boolean } = {}): Promise<RedisClient> {
  const client: RedisClient = createClient({ url, disableOfflineQueue: true, ...(options.reconnect === false ? { socket: { reconnectStrategy: false } } : {}) });
  client.on('error', () => {});
  await client.connect();
  t.after(() => {
    if (client.isOpen) client.destroy();
  });
  return client;
}
