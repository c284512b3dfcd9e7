/**
 * The shared token cache `STATE_DIR/token.json` (README.md "Tokens"): mode 0600 in a 0700 directory, written
 * atomically (temp file, fsync, rename, fsync of the directory), plus the cross-process lock that keeps
 * concurrent daemon and CLI processes from minting twice.
 */
import { randomUUID } from 'node:crypto';
import { watch as fsWatch } from 'node:fs';
import { chmod, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { isoTime, type Clock } from '../lib/clock.js';
import { StateDirError } from '../lib/errors.js';
import { waitForLockFile, type HeldLock } from '../lib/file-lock.js';
import { readFileNoFollow } from '../lib/state-dir.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { AppToken } from '../twitch/tokens.js';

/** What the cache file holds, in epoch ms. A never-expiring token has `expiresAt` = Number.MAX_SAFE_INTEGER. */
export interface CachedToken {
  accessToken: string;
  clientId: string;
  obtainedAt: number;
  expiresAt: number;
  validatedAt: number | undefined;
}

/** The cache as the token manager sees it; `TokenCache` is the file-backed implementation. */
export interface TokenStore {
  read(): Promise<CachedToken | undefined>;
  write(token: AppToken): Promise<void>;
  remove(): Promise<void>;
  withLock<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Calls `onChange` when another process may have replaced or removed the token, until `signal` aborts. */
  watch?(onChange: () => void, signal: AbortSignal): void;
  /**
   * A store shared by replicas: tells the process that mints (the leader) that Twitch answered 401 to the token
   * with this fingerprint here. Best effort; the leader checks the token with /validate before it mints.
   */
  reportRejected?(fingerprint: string): Promise<void>;
  /** Calls `onReport` with the fingerprint of each `reportRejected()` from any process, until `signal` aborts. */
  watchRejected?(onReport: (fingerprint: string) => void, signal: AbortSignal): void;
}

export interface TokenCacheOptions {
  stateDir: string;
  clock: Clock;
  logger?: Logger | undefined;
  /** This process's id, written into the lock file while held (for messages only). */
  pid?: number | undefined;
  /**
   * How long to wait for a lock another process holds before going on without it (a stopped CLI must not keep
   * the daemon from minting; the cost is one extra mint). Default 30 s.
   */
  lockWaitMs?: number;
  /** Poll interval while the lock is held elsewhere. Default 50 ms. */
  lockPollMs?: number;
}

const NEVER = Number.MAX_SAFE_INTEGER;
const IsoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

/** token.json on disk (snake_case, ISO times); `expires_at: null` marks a never-expiring token. */
const TokenFile = z
  .object({
    access_token: z.string().min(1),
    client_id: z.string().min(1),
    obtained_at: IsoTime,
    expires_at: IsoTime.nullable(),
    validated_at: IsoTime.nullish(),
  })
  .loose();

/** The record's JSON text (token.json's, and the Redis record's): snake_case, ISO times, `expires_at: null` for never. */
export function formatTokenRecord(token: AppToken, indent?: number): string {
  return JSON.stringify(
    {
      access_token: token.reveal(),
      client_id: token.clientId,
      obtained_at: isoTime(token.obtainedAt),
      expires_at: isoTime(token.expiresAt),
      validated_at: isoTime(token.validatedAt),
    },
    null,
    indent,
  );
}

/**
 * A record's text as a CachedToken; undefined, with one warning naming `what` and `where` (never the token), when it
 * is not JSON or not of the expected shape.
 */
export function parseTokenRecord(raw: string, logger: Logger, what: string, where: Record<string, unknown>): CachedToken | undefined {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    logger.warn(`Ignoring ${what}: it is not valid JSON`, where);
    return undefined;
  }
  const parsed = TokenFile.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))];
    logger.warn(`Ignoring ${what}: it does not have the expected shape`, { ...where, fields });
    return undefined;
  }
  const f = parsed.data;
  return {
    accessToken: f.access_token,
    clientId: f.client_id,
    obtainedAt: f.obtained_at,
    expiresAt: f.expires_at ?? NEVER,
    validatedAt: f.validated_at ?? undefined,
  };
}

export class TokenCache implements TokenStore {
  readonly #dir: string;
  readonly #file: string;
  readonly #logger: Logger;
  readonly #lockPath: string;
  readonly #o: TokenCacheOptions;

  constructor(options: TokenCacheOptions) {
    this.#o = options;
    this.#dir = options.stateDir;
    this.#file = join(options.stateDir, 'token.json');
    this.#lockPath = join(options.stateDir, 'token.lock');
    this.#logger = options.logger ?? silentLogger;
  }

  /** The path of token.json. */
  get path(): string {
    return this.#file;
  }

  /**
   * The cached token, or undefined when there is none or the file is unusable (logged at warn, without
   * its content: it may hold a token).
   * @throws StateDirError when the file exists but cannot be read (permissions).
   */
  async read(): Promise<CachedToken | undefined> {
    let raw: string;
    try {
      raw = await readFileNoFollow(this.#file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      const why = code === 'ELOOP' ? 'it is a symbolic link' : (err as Error).message;
      throw new StateDirError(`Cannot read the token cache ${this.#file}: ${why}`, { cause: err });
    }
    return parseTokenRecord(raw, this.#logger, 'the token cache', { path: this.#file });
  }

  /**
   * Replaces token.json atomically: a reader sees the old file or the new one, never a partial one.
   * @throws StateDirError naming the path when the directory or the file cannot be written.
   */
  async write(token: AppToken): Promise<void> {
    const body = formatTokenRecord(token, 2);
    await this.#ensureDir();
    const tmp = join(this.#dir, `.token.json.${randomUUID()}.tmp`);
    try {
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.chmod(0o600); // the umask could have stripped bits; make the mode exact
        await handle.writeFile(body + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.#file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new StateDirError(`Cannot write the token cache ${this.#file}: ${(err as Error).message}`, { cause: err });
    }
    await this.#syncDir();
  }

  /** Deletes token.json; a missing file is fine. @throws StateDirError on any other failure. */
  async remove(): Promise<void> {
    try {
      await unlink(this.#file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new StateDirError(`Cannot remove the token cache ${this.#file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Runs `fn` holding `STATE_DIR/token.lock` (a kernel lock, see lib/file-lock.ts), shared by every process
   * using this state directory; after `lockWaitMs` without it, runs `fn` anyway and says so at warn.
   * @throws StateDirError when the lock file cannot be opened; AbortedError when `signal` aborts while waiting.
   */
  async withLock<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#ensureDir();
    const waitMs = this.#o.lockWaitMs ?? 30_000;
    const lock: HeldLock | undefined = await waitForLockFile(this.#lockPath, {
      clock: this.#o.clock,
      pollMs: this.#o.lockPollMs ?? 50,
      maxWaitMs: waitMs,
      holder: this.#o.pid === undefined ? undefined : `${this.#o.pid}\n`,
      signal,
    });
    if (!lock) this.#logger.warn('Another process has held the token lock too long; going on without it', { path: this.#lockPath, waited_ms: waitMs });
    try {
      return await fn();
    } finally {
      await lock?.release();
    }
  }

  /**
   * Calls `onChange` whenever token.json is replaced or removed (inotify on the state directory, through
   * `fs.watch`; it keeps no process alive), until `signal` aborts. Where the directory cannot be watched the
   * change is seen at the next validation instead: said once at warn.
   */
  watch(onChange: () => void, signal: AbortSignal): void {
    try {
      const watcher = fsWatch(this.#dir, { persistent: false, signal }, (_event, name) => {
        if (name === 'token.json') onChange();
      });
      watcher.on('error', (err) => this.#logger.warn('Stopped watching the state directory for token changes', { path: this.#dir, err }));
    } catch (err) {
      this.#logger.warn('Cannot watch the state directory for token changes by other processes; they are seen at the next validation', {
        path: this.#dir,
        err,
      });
    }
  }

  /** Creates the state directory with mode 0700; an existing directory is left as the operator made it. */
  async #ensureDir(): Promise<void> {
    try {
      const created = await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      if (created !== undefined) await chmod(this.#dir, 0o700); // the umask could have stripped bits
    } catch (err) {
      throw new StateDirError(`Cannot create the state directory ${this.#dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** fsync of the directory makes the rename durable; some platforms cannot open a directory for that. */
  async #syncDir(): Promise<void> {
    let handle;
    try {
      handle = await open(this.#dir, 'r');
      await handle.sync();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM') {
        this.#logger.warn('Could not fsync the state directory after writing the token cache', { path: this.#dir, code });
      }
    } finally {
      await handle?.close();
    }
  }
}

