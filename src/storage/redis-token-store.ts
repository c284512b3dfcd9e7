/**
 * The shared token record in Redis (SPEC "Several replicas: Redis"): every replica and every CLI of one app
 * reads the same app token from `PREFIX:token`, and mints only under `PREFIX:token:lock`, so that a 401 storm
 * across replicas mints once. The record holds the same JSON as `STATE_DIR/token.json` (snake_case, ISO times,
 * `expires_at: null` for a token that never expires), so an operator reads either with the same eyes.
 */
import { randomUUID } from 'node:crypto';
import { formatTokenRecord, parseTokenRecord, type CachedToken, type TokenStore } from '../auth/token-cache.js';
import { fingerprintOf } from '../auth/token-policy.js';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/retry.js';
import type { AppToken } from '../twitch/tokens.js';
import { redisKey } from './types.js';

import type { RedisClient } from './types.js';

export type { RedisClient };

export interface RedisTokenStoreOptions {
  /** Connected; used for reads, writes and the lock. `watch()` subscribes on a `duplicate()` of it. */
  client: RedisClient;
  /** `EVENTSUBD_REDIS_PREFIX`; keys are built with `redisKey()`. */
  prefix: string;
  /** `TWITCH_CLIENT_ID`: a record minted for another client is ignored (a prefix shared by two apps). */
  clientId: string;
  /** Paces the lock's polls and renewals and the watch's fallback poll; nothing else. */
  clock: Clock;
  logger?: Logger | undefined;
  /** The lock's TTL, ms: how long a crashed holder keeps others waiting. Renewed every third of it while held. Default 30 s. */
  lockTtlMs?: number | undefined;
  /**
   * How long to wait for a lock another process holds before going on without it, as `TokenCache` does (a holder
   * stuck on a dead Twitch must not keep this one from minting for ever; the cost is one extra mint). Default 30 s.
   */
  lockWaitMs?: number | undefined;
  /** The first pause between tries while the lock is held elsewhere; doubled up to 500 ms. Default 25 ms. */
  lockPollMs?: number | undefined;
  /** The watch's fallback poll, for a change whose message was lost while the subscriber was disconnected. Default 30 s. */
  watchPollMs?: number | undefined;
}

const MAX_LOCK_POLL_MS = 500;
/** The watch's subscriber reconnects after 100 ms doubling to 5 s, with jitter. */
const RECONNECT = { baseMs: 100, maxMs: 5_000 };

/** Extends the lock's TTL only while this owner holds it. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lock only while this owner holds it: a lock that expired and was taken by another is left alone. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** What `fingerprintOf()` makes: the only message accepted on the rejected channel. */
const FINGERPRINT = /^sha256:[0-9a-f]{8}$/;

/** Marks "the value could not be read" in the watch's fallback poll. */
const UNKNOWN = Symbol('unknown');

export class RedisTokenStore implements TokenStore {
  readonly #client: RedisClient;
  readonly #clientId: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #key: string;
  readonly #lockKey: string;
  readonly #channel: string;
  readonly #rejectedChannel: string;
  readonly #lockTtlMs: number;
  readonly #lockWaitMs: number;
  readonly #lockPollMs: number;
  readonly #watchPollMs: number;
  /** Published with every change, so that this store's own watch ignores the changes it made. */
  readonly #instance = randomUUID();

  constructor(options: RedisTokenStoreOptions) {
    this.#client = options.client;
    this.#clientId = options.clientId;
    this.#clock = options.clock;
    this.#logger = options.logger ?? silentLogger;
    this.#key = redisKey(options.prefix, 'token');
    this.#lockKey = redisKey(options.prefix, 'token:lock');
    this.#channel = redisKey(options.prefix, 'token:changed');
    this.#rejectedChannel = redisKey(options.prefix, 'token:rejected');
    this.#lockTtlMs = options.lockTtlMs ?? 30_000;
    this.#lockWaitMs = options.lockWaitMs ?? 30_000;
    this.#lockPollMs = options.lockPollMs ?? 25;
    this.#watchPollMs = options.watchPollMs ?? 30_000;
  }

  /** The record's key (`PREFIX:token`). */
  get key(): string {
    return this.#key;
  }

  /**
   * The token record, or undefined when there is none, when it does not parse, or when it belongs to another
   * client ID (both logged at warn, never with the token).
   * @throws AppError REDIS_UNAVAILABLE when Redis does not answer.
   */
  async read(): Promise<CachedToken | undefined> {
    let raw: string | null;
    try {
      raw = await this.#client.get(this.#key);
    } catch (err) {
      throw redisUnavailable(`Cannot read the token record ${this.#key} from Redis`, err);
    }
    return raw === null ? undefined : this.#parse(raw);
  }

  /**
   * Replaces the record, then tells the other processes watching it (one MULTI: both or neither).
   * @throws AppError REDIS_UNAVAILABLE.
   */
  async write(token: AppToken): Promise<void> {
    const body = formatTokenRecord(token);
    try {
      await this.#client.multi().set(this.#key, body).publish(this.#channel, this.#instance).exec();
    } catch (err) {
      throw redisUnavailable(`Cannot write the token record ${this.#key} to Redis`, err);
    }
  }

  /** Deletes the record (a missing one is fine) and tells the watchers. @throws AppError REDIS_UNAVAILABLE. */
  async remove(): Promise<void> {
    try {
      await this.#client.multi().del(this.#key).publish(this.#channel, this.#instance).exec();
    } catch (err) {
      throw redisUnavailable(`Cannot remove the token record ${this.#key} from Redis`, err);
    }
  }

  /**
   * Runs `fn` holding `PREFIX:token:lock` (SET NX PX with a random owner), shared by every replica and CLI of this
   * prefix. The TTL is renewed while `fn` runs (a mint with its retries may outlast it) and frees the lock of a
   * process that died holding it; the release deletes only our own lock. After `lockWaitMs` without it, runs
   * `fn` anyway and says so at warn.
   * @throws AppError REDIS_UNAVAILABLE when the lock cannot be asked for; AbortedError when `signal` aborts while waiting.
   */
  async withLock<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const owner = randomUUID();
    const held = await this.#acquire(owner, signal);
    if (!held) {
      this.#logger.warn('Another process has held the token lock too long; going on without it', { key: this.#lockKey, waited_ms: this.#lockWaitMs });
    }
    const renewal = held ? this.#renewWhileHeld(owner) : undefined;
    try {
      return await fn();
    } finally {
      renewal?.abort();
      if (held) await this.#release(owner);
    }
  }

  /**
   * Calls `onChange` soon after another process writes or removes the record: a subscriber on a duplicate of the
   * client listens to `PREFIX:token:changed` (and calls `onChange` after each reconnection, since messages sent
   * meanwhile are lost), and a poll every `watchPollMs` compares the record with its last value. Stops, and closes
   * the duplicate, when `signal` aborts. Failures are logged, never thrown.
   */
  watch(onChange: () => void, signal: AbortSignal): void {
    if (signal.aborted) return;
    void this.#subscribe(
      this.#channel,
      (message) => {
        if (message !== this.#instance) onChange();
      },
      onChange,
      signal,
    );
    void this.#poll(onChange, signal);
  }

  /**
   * Publishes the fingerprint (never the token) on `PREFIX:token:rejected`: a follower tells the leader that
   * Twitch answered 401 here. Best effort: a report lost with the connection only leaves the follower waiting.
   * @throws AppError REDIS_UNAVAILABLE.
   */
  async reportRejected(fingerprint: string): Promise<void> {
    try {
      await this.#client.publish(this.#rejectedChannel, fingerprint);
    } catch (err) {
      throw redisUnavailable(`Cannot report the rejected token on ${this.#rejectedChannel}`, err);
    }
  }

  /**
   * Calls `onReport` with each fingerprint published on `PREFIX:token:rejected` (anything else there is ignored),
   * until `signal` aborts. A report sent while the subscriber was disconnected is lost: the follower that sent it
   * times out its wait and its next 401 reports again.
   */
  watchRejected(onReport: (fingerprint: string) => void, signal: AbortSignal): void {
    if (signal.aborted) return;
    void this.#subscribe(
      this.#rejectedChannel,
      (message) => {
        if (FINGERPRINT.test(message)) onReport(message);
      },
      undefined,
      signal,
    );
  }

  #parse(raw: string): CachedToken | undefined {
    const r = parseTokenRecord(raw, this.#logger, 'the token record in Redis', { key: this.#key });
    if (!r) return undefined;
    if (r.clientId !== this.#clientId) {
      this.#logger.warn('Ignoring the token record in Redis: it was minted for another client ID', {
        key: this.#key,
        code: 'TOKEN_CLIENT_MISMATCH',
        client_id: r.clientId,
        fingerprint: fingerprintOf(r.accessToken),
      });
      return undefined;
    }
    return r;
  }

  /** Tries SET NX PX until it succeeds (true) or `lockWaitMs` has passed (false), backing off between tries. */
  async #acquire(owner: string, signal: AbortSignal | undefined): Promise<boolean> {
    const deadline = this.#clock.now() + this.#lockWaitMs;
    let pause = this.#lockPollMs;
    for (;;) {
      let answer: string | null;
      try {
        answer = await this.#client.set(this.#lockKey, owner, { condition: 'NX', expiration: { type: 'PX', value: this.#lockTtlMs } });
      } catch (err) {
        throw redisUnavailable(`Cannot take the token lock ${this.#lockKey} in Redis`, err);
      }
      if (answer === 'OK') return true;
      const left = deadline - this.#clock.now();
      if (left <= 0) return false;
      await this.#clock.sleep(Math.min(pause, left), signal);
      pause = Math.min(pause * 2, MAX_LOCK_POLL_MS);
    }
  }

  /** Renews the lock every third of its TTL until the returned controller aborts. */
  #renewWhileHeld(owner: string): AbortController {
    const stop = new AbortController();
    const every = Math.max(1, Math.floor(this.#lockTtlMs / 3));
    void (async () => {
      while (!stop.signal.aborted) {
        try {
          await this.#clock.sleep(every, stop.signal);
        } catch {
          return;
        }
        try {
          const renewed = await this.#client.eval(RENEW, { keys: [this.#lockKey], arguments: [owner, String(this.#lockTtlMs)] });
          if (renewed !== 1 && !stop.signal.aborted) {
            this.#logger.warn('Lost the token lock while holding it: it expired, and another process may mint too', { key: this.#lockKey });
            return;
          }
        } catch (err) {
          if (!stop.signal.aborted) this.#logger.warn('Could not renew the token lock; it expires unless a later renewal succeeds', { key: this.#lockKey, error: err });
        }
      }
    })();
    return stop;
  }

  /** Deletes our lock. A failure is logged only: the TTL frees the lock anyway. */
  async #release(owner: string): Promise<void> {
    try {
      await this.#client.eval(RELEASE, { keys: [this.#lockKey], arguments: [owner] });
    } catch (err) {
      this.#logger.warn('Could not release the token lock; it expires with its TTL', { key: this.#lockKey, ttl_ms: this.#lockTtlMs, error: err });
    }
  }

  /** Subscribes a duplicate connection to `channel`; `onReconnect` runs after each reconnection (messages sent meanwhile are lost). */
  async #subscribe(channel: string, onMessage: (message: string) => void, onReconnect: (() => void) | undefined, signal: AbortSignal): Promise<void> {
    // Its own reconnection policy: the parent's may report to the parent's owner (redis-connection.ts), and a
    // client built with `reconnectStrategy: false` would otherwise leave the watch to the poll for good.
    const subscriber = this.#client.duplicate({
      socket: { ...this.#client.options?.socket, reconnectStrategy: (retries: number) => backoffDelay(retries + 1, RECONNECT) },
    });
    let healthy = true;
    let everReady = false;
    subscriber.on('error', (err: Error) => {
      // node-redis emits one error per failed reconnection: say it once per outage.
      if (healthy && !signal.aborted) this.#logger.warn('The token watch lost its Redis connection; reconnecting', { channel, error: err });
      healthy = false;
    });
    subscriber.on('ready', () => {
      // node-redis subscribes again by itself; what was published meanwhile is lost, so look again.
      if (everReady && !healthy && !signal.aborted) onReconnect?.();
      everReady = true;
      healthy = true;
    });
    const close = (): void => {
      try {
        subscriber.destroy();
      } catch {
        // Already closed, or never connected.
      }
    };
    signal.addEventListener('abort', close, { once: true });
    try {
      await subscriber.connect();
      await subscriber.subscribe(channel, onMessage);
    } catch (err) {
      if (signal.aborted) return;
      this.#logger.warn(
        onReconnect ? 'Cannot subscribe to token changes in Redis; they are seen by the slower poll instead' : 'Cannot subscribe to reports of rejected tokens in Redis; followers wait longer after a 401',
        { channel, error: err },
      );
      signal.removeEventListener('abort', close);
      close();
    }
  }

  async #poll(onChange: () => void, signal: AbortSignal): Promise<void> {
    const get = (): Promise<string | null | typeof UNKNOWN> => this.#client.get(this.#key).catch(() => UNKNOWN);
    let last = await get();
    while (!signal.aborted) {
      try {
        await this.#clock.sleep(this.#watchPollMs, signal);
      } catch {
        return;
      }
      const now = await get();
      if (now === UNKNOWN) continue;
      if (now !== last && !signal.aborted) onChange();
      last = now;
    }
  }
}

/** A Redis failure as the stable REDIS_UNAVAILABLE, naming what failed (never a URL, so never a password). */
export function redisUnavailable(what: string, err: unknown): AppError {
  if (err instanceof AppError) return err;
  return new AppError('REDIS_UNAVAILABLE', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
