/**
 * The one Redis connection a process keeps (SPEC "Several replicas: Redis"): node-redis, connected in the
 * background with capped backoff and jitter, re-connecting forever, and `ready` only while Redis is connected,
 * authenticated and passes the durability check of `EVENTSUBD_REDIS_DURABILITY`. Every component pipelines its
 * commands on `client`; blocking reads (`XREAD BLOCK`) get their own connection from `duplicate()`.
 *
 * Durability, decided here:
 * - `fsync` (the default): `CONFIG GET appendonly` must be `yes` and `CONFIG GET appendfsync` `always`, so that a
 *   write Redis answered is on its disk. A Redis that refuses `CONFIG` (managed Redis) fails the check: choose
 *   `trust` (or `replicas:N`) there.
 * - `replicas:N`: no `CONFIG` check. Each acknowledged write waits for `WAIT N` (see redis-journal.ts): a write N
 *   replicas hold survives the primary's crash, whatever the primary's own fsync policy, and managed Redis (where
 *   replicas are the usual durability and `CONFIG` is refused) can use it.
 * - `trust`: no check; said once at start, at warn level.
 *
 * The check runs after every (re)connection, and again every `CHECK_INTERVAL_MS` while connected, so a Redis
 * restarted with another configuration, or changed with `CONFIG SET`, makes the connection not ready (an error in
 * the log, never a crash) until it passes again.
 *
 * While disconnected, commands fail at once (`disableOfflineQueue`): a command is never re-sent after a
 * reconnect behind its caller's back (an append that failed is retried by Twitch, and caught by de-duplication).
 */
import { createClient, ErrorReply } from 'redis';
import { AbortedError, AppError, ConfigError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/retry.js';
import type { RedisDurability } from './types.js';

import type { RedisClient } from './types.js';

export type { RedisClient };

const SETTING = 'EVENTSUBD_REDIS_URL';
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** Reconnection backoff: 100 ms doubling to 5 s, equal jitter (src/lib/retry.ts). */
const BACKOFF = { baseMs: 100, maxMs: 5_000 };
/** How often a connected Redis is checked again (durability, and that it still answers). */
const CHECK_INTERVAL_MS = 10_000;
/** Redis error replies that mean the credentials or the ACL are wrong: a configuration error, not an outage. */
const AUTH_ERROR = /^(WRONGPASS|NOAUTH|NOPERM)\b|^ERR AUTH\b|without any password configured|invalid password/i;

export interface RedisConnectionOptions {
  /** `EVENTSUBD_REDIS_URL`, already checked with `parseRedisUrl`. May hold a password: never logged. */
  url: string;
  durability: RedisDurability;
  clock: Clock;
  logger: Logger;
  /** One connection attempt's limit (TCP + TLS), ms. Default 5,000. */
  connectTimeoutMs?: number;
  /** A command on `client` that got no answer in this time rejects (Redis stopped answering), ms. Default 5,000. */
  commandTimeoutMs?: number;
}

/**
 * `EVENTSUBD_REDIS_URL` parsed: only `redis://` and `rediss://` with a host.
 * @throws ConfigError (CONFIG_INVALID) naming the setting; the value is never echoed (it may hold a password).
 */
export function parseRedisUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new ConfigError(`${SETTING} is not a valid URL: expected redis://[user:password@]host[:port][/db] or rediss://...`, { setting: SETTING, cause: err });
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`${SETTING} must start with redis:// or rediss://: current scheme is ${url.protocol}//`, { setting: SETTING });
  }
  if (url.hostname === '') throw new ConfigError(`${SETTING} has no host: ${redactRedisUrl(raw)}`, { setting: SETTING });
  if (url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname)) {
    throw new ConfigError(`${SETTING} may only name a database number as its path: current path is ${url.pathname}`, { setting: SETTING });
  }
  return url;
}

/** The URL with its password replaced by `***`, for logs and messages; `(invalid URL)` when it is none. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** Whether an error is Redis refusing the credentials or the ACL (WRONGPASS, NOAUTH, NOPERM). */
export function isAuthError(err: unknown): boolean {
  return err instanceof ErrorReply && AUTH_ERROR.test(err.message);
}

/** Destroys a client that may already be closed (destroy() throws then). */
export function destroyQuietly(client: RedisClient): void {
  try {
    client.destroy();
  } catch {
    // Already closed.
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

/** The verdict of the durability check, as an error to throw or log; undefined when it passed. */
async function durabilityProblem(client: RedisClient, durability: RedisDurability): Promise<AppError | undefined> {
  if (durability.kind !== 'fsync') return undefined;
  let appendonly: unknown;
  let appendfsync: unknown;
  try {
    appendonly = (await client.configGet('appendonly'))['appendonly'];
    appendfsync = (await client.configGet('appendfsync'))['appendfsync'];
  } catch (err) {
    if (!(err instanceof ErrorReply)) throw err;
    return new AppError(
      'REDIS_NOT_DURABLE',
      `Cannot check that Redis persists every write: CONFIG GET was refused (${errText(err)}). On a managed Redis without CONFIG, ` +
        'set EVENTSUBD_REDIS_DURABILITY=trust (and configure persistence with the provider) or replicas:N',
      { cause: err },
    );
  }
  if (appendonly === 'yes' && appendfsync === 'always') return undefined;
  return new AppError(
    'REDIS_NOT_DURABLE',
    `Redis does not persist every write: appendonly is ${String(appendonly)} and appendfsync is ${String(appendfsync)}. ` +
      'Set "appendonly yes" and "appendfsync always" in redis.conf (or CONFIG SET appendonly yes, CONFIG SET appendfsync always, ' +
      'then CONFIG REWRITE), or set EVENTSUBD_REDIS_DURABILITY=replicas:N or trust',
  );
}

function authConfigError(url: string, err: unknown): ConfigError {
  return new ConfigError(
    `Redis refused the credentials or the ACL of ${SETTING} (${redactRedisUrl(url)}): ${errText(err)}`,
    { setting: SETTING, cause: err },
  );
}

/**
 * The connection. `start()` it, read `ready`, use `client`; `close()` it. One per process, shared by the
 * journal, the cursors, the token record and the leases.
 */
export class RedisConnection {
  readonly #o: RedisConnectionOptions;
  readonly #client: RedisClient;
  readonly #duplicates = new Set<RedisClient>();
  readonly #listeners = new Set<(ready: boolean) => void>();
  readonly #stopChecks = new AbortController();
  #ready = false;
  /** Bumped on every (re)connection and disconnection, so a check that outlived its connection is ignored. */
  #epoch = 0;
  #started: Promise<void> | undefined;
  #settleStart: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  #closing: Promise<void> | undefined;
  #lastError = '';
  /** The last configuration problem met (credentials, durability): what `connectOnce` reports. */
  #lastConfigError: AppError | undefined;

  constructor(options: RedisConnectionOptions) {
    this.#o = options;
    this.#client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        reconnectStrategy: (retries, cause) => this.#onConnectionFailed(retries, cause),
      },
      // A Redis that stops answering (SIGSTOP, a dead link TCP has not noticed) fails the command instead of
      // holding it: the caller (a webhook request) answers 503 and Twitch retries.
      commandOptions: { timeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, rejectInFlight: true },
    });
    this.#client.on('error', () => {
      // Reported through the reconnect strategy (every failure passes there); an unhandled 'error' would crash.
    });
    this.#client.on('ready', () => void this.#onConnected());
  }

  /**
   * Connects in the background. Resolves once Redis is connected, authenticated and durable, or as soon as the
   * first attempt failed for a transient reason (refused, timeout: the daemon starts not ready and recovers
   * alone). Idempotent.
   * @throws ConfigError (CONFIG_INVALID) when Redis refuses the credentials or the ACL; AppError
   *   (REDIS_NOT_DURABLE) when the durability check fails. The connection is then closed.
   */
  start(): Promise<void> {
    this.#started ??= new Promise<void>((resolve, reject) => {
      this.#settleStart = { resolve, reject };
      if (this.#o.durability.kind === 'trust') {
        this.#o.logger.warn('Redis durability is not checked (EVENTSUBD_REDIS_DURABILITY=trust): an acknowledged event is lost if Redis loses it');
      }
      this.#client.connect().catch(() => {
        // Settled through #onConnectionFailed / #failStart; connect() rejects when reconnection stops.
      });
    });
    return this.#started;
  }

  /** The command connection: pipeline on it; never block on it. */
  get client(): RedisClient {
    return this.#client;
  }

  /** Connected, authenticated and durable (per `EVENTSUBD_REDIS_DURABILITY`). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Calls `cb` on every change of `ready`; returns the undo. */
  onReadyChange(cb: (ready: boolean) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Resolves true once `ready` (at once if it is), false after `ms` or when `signal` aborts or the connection closes. */
  async waitReady(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#ready) return true;
    if (this.#closing || signal?.aborted) return false;
    const timer = new AbortController();
    const onAbort = (): void => timer.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const off = this.onReadyChange((ready) => {
      if (ready) timer.abort();
    });
    try {
      await this.#o.clock.sleep(ms, timer.signal);
    } catch (err) {
      if (!(err instanceof AbortedError)) throw err;
    } finally {
      off();
      signal?.removeEventListener('abort', onAbort);
    }
    return this.#ready;
  }

  /**
   * A second connection with the same URL and credentials, for blocking commands (`XREAD BLOCK`), connected;
   * it reconnects by itself and is closed by `close()`.
   * @throws AppError (REDIS_UNAVAILABLE) when it cannot connect within the connect timeout.
   */
  async duplicate(): Promise<RedisClient> {
    if (this.#closing) throw new AppError('REDIS_UNAVAILABLE', 'Cannot open a Redis connection: the connection is closed');
    const dup = this.#client.duplicate({
      commandOptions: {},
      socket: {
        connectTimeout: this.#o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        reconnectStrategy: (retries) => backoffDelay(retries + 1, BACKOFF),
      },
    });
    dup.on('error', () => {
      // Its reconnections are its own; commands on it reject and their caller decides.
    });
    this.#duplicates.add(dup);
    const limit = this.#o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const connecting = dup.connect();
    connecting.catch(() => undefined);
    const late = await Promise.race([connecting.then(() => false), this.#o.clock.sleep(limit).then(() => true)]);
    if (late || this.#closing) {
      this.#duplicates.delete(dup);
      destroyQuietly(dup);
      throw new AppError('REDIS_UNAVAILABLE', `Cannot open a second Redis connection to ${redactRedisUrl(this.#o.url)} within ${limit} ms`);
    }
    return dup;
  }

  /** Closes the command connection and every duplicate. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopChecks.abort();
      this.#setReady(false);
      this.#settleStart?.resolve();
      for (const dup of this.#duplicates) destroyQuietly(dup);
      this.#duplicates.clear();
      if (this.#client.isReady) {
        await this.#client.close().catch(() => this.#client.destroy());
      } else if (this.#client.isOpen) {
        this.#client.destroy();
      }
    })();
    return this.#closing;
  }

  /**
   * Connects once for a CLI command: resolves with a ready connection (close it), or throws.
   * @throws ConfigError (CONFIG_INVALID) or AppError (REDIS_NOT_DURABLE) as `start()`; AppError
   *   (REDIS_UNAVAILABLE) when Redis is not ready within `timeoutMs` (default 5,000).
   */
  static async connectOnce(options: RedisConnectionOptions & { timeoutMs?: number }): Promise<RedisConnection> {
    const connection = new RedisConnection(options);
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    try {
      await connection.start();
      if (await connection.waitReady(timeoutMs)) return connection;
      throw connection.#lastConfigError ?? new AppError(
        'REDIS_UNAVAILABLE',
        `Redis at ${redactRedisUrl(options.url)} did not answer within ${timeoutMs} ms${connection.#lastError ? `: ${connection.#lastError}` : ''}`,
      );
    } catch (err) {
      await connection.close();
      throw err;
    }
  }

  /** node-redis's reconnect strategy: every failed attempt and every lost connection comes here. */
  #onConnectionFailed(retries: number, cause: Error): number | false {
    this.#epoch++;
    this.#setReady(false);
    if (this.#closing) return false;
    const message = errText(cause);
    if (isAuthError(cause)) {
      const err = authConfigError(this.#o.url, cause);
      this.#lastConfigError = err;
      if (this.#failStart(err)) return false;
    }
    if (message !== this.#lastError) {
      this.#lastError = message;
      const context = { url: redactRedisUrl(this.#o.url), err: message };
      if (isAuthError(cause)) this.#o.logger.error('Redis refused the credentials or the ACL; retrying', context);
      else this.#o.logger.warn('Redis is unreachable; retrying', context);
    }
    // A transient failure before the first connection: start() resolves, not ready.
    this.#settleStart?.resolve();
    this.#settleStart = undefined;
    return backoffDelay(retries + 1, BACKOFF);
  }

  /** Rejects a pending `start()` with `err` and closes the connection; false when start() was already settled. */
  #failStart(err: AppError): boolean {
    const pending = this.#settleStart;
    if (!pending) return false;
    this.#settleStart = undefined;
    pending.reject(err);
    void this.close();
    return true;
  }

  /** After every (re)connection: the durability check, then ready; and the check loop while connected. */
  async #onConnected(): Promise<void> {
    const epoch = ++this.#epoch;
    const passed = await this.#check(epoch);
    if (epoch !== this.#epoch || this.#closing) return;
    if (passed) {
      this.#lastError = '';
      this.#o.logger.info('Connected to Redis', { url: redactRedisUrl(this.#o.url), durability: this.#o.durability.kind });
    }
    this.#settleStart?.resolve();
    this.#settleStart = undefined;
    await this.#checkLoop(epoch);
  }

  /** One check: true when Redis answered and is durable. Sets `ready`, logs a failure. */
  async #check(epoch: number): Promise<boolean> {
    let problem: AppError | undefined;
    try {
      problem = await durabilityProblem(this.#client, this.#o.durability);
      if (this.#o.durability.kind !== 'fsync') await this.#client.ping();
    } catch (err) {
      // No answer in time (or the connection dropped): not ready until the next check or reconnection.
      if (epoch === this.#epoch && this.#ready) this.#o.logger.warn('Redis did not answer its check; not ready', { err: errText(err) });
      if (epoch === this.#epoch) this.#setReady(false);
      return false;
    }
    if (epoch !== this.#epoch) return false;
    if (problem) {
      this.#lastConfigError = problem;
      if (!this.#failStart(problem) && (this.#ready || this.#lastError !== problem.message)) {
        this.#lastError = problem.message;
        this.#o.logger.error('Redis failed the durability check; not ready until it passes', { code: problem.code, err: problem.message });
      }
      this.#setReady(false);
      return false;
    }
    this.#setReady(true);
    return true;
  }

  async #checkLoop(epoch: number): Promise<void> {
    while (epoch === this.#epoch && !this.#closing) {
      try {
        await this.#o.clock.sleep(CHECK_INTERVAL_MS, this.#stopChecks.signal);
      } catch {
        return;
      }
      if (epoch !== this.#epoch || this.#closing) return;
      const was = this.#ready;
      const passed = await this.#check(epoch);
      if (passed && !was) this.#o.logger.info('Redis passes its check again; ready', { url: redactRedisUrl(this.#o.url) });
    }
  }

  #setReady(ready: boolean): void {
    if (this.#ready === ready) return;
    this.#ready = ready;
    for (const cb of [...this.#listeners]) {
      try {
        cb(ready);
      } catch (err) {
        this.#o.logger.error('A Redis readiness listener threw', { err });
      }
    }
  }
}
