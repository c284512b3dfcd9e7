/**
 * Leases on Redis (SPEC "Several replicas: Redis", "One leader"): a key set with `NX PX ttl` whose value names its
 * holder and a fencing token, renewed and released only by compare-and-set in a server-side script, so that a
 * replica can never extend or delete a lease another replica took over.
 *
 * Redis decides who holds a lease; the holder decides, alone, how long it may still act on it. Its local deadline
 * is the monotonic time at which it SENT the command that set or extended the key, plus the TTL, minus a safety
 * margin: Redis started the key's TTL no earlier than that send, so the holder stops acting before Redis can give
 * the key to anyone else, whatever the network or a paused process (SIGSTOP, a long GC) did meanwhile. `held` reads
 * that deadline every time it is asked, so a process that resumes after a pause sees the truth before any timer
 * has had a chance to run.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { redisKey } from './types.js';

import type { RedisClient } from './types.js';

export type { RedisClient };

/** A Lua script and its SHA1, for EVALSHA with EVAL as the fallback after a script cache flush (a Redis restart). */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

export function luaScript(source: string): LuaScript {
  return Object.freeze({ source, sha: createHash('sha1').update(source).digest('hex') });
}

/**
 * Runs `script` with EVALSHA, or EVAL when Redis lost its script cache, and rejects with REDIS_UNAVAILABLE when no
 * answer came within `timeoutMs`: a hung Redis must not stall the deadline logic that waits on the answer.
 */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  call: { keys: string[]; args: string[]; timeoutMs: number; clock: Clock },
): Promise<unknown> {
  const options = { keys: call.keys, arguments: call.args };
  const work = (async () => {
    try {
      return await client.evalSha(script.sha, options);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return client.eval(script.source, options);
      throw err;
    }
  })();
  return withTimeout(work, call.timeoutMs, call.clock);
}

/** `work`, or REDIS_UNAVAILABLE after `ms`; the late answer (or error) of a command that timed out is dropped. */
export async function withTimeout<T>(work: Promise<T>, ms: number, clock: Clock): Promise<T> {
  const timer = new AbortController();
  const late = clock.sleep(ms, timer.signal).then(
    () => Promise.reject(new AppError('REDIS_UNAVAILABLE', `Redis did not answer within ${ms} ms`)),
    () => new Promise<never>(() => {}),
  );
  work.catch(() => {});
  try {
    return await Promise.race([work, late]);
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('REDIS_UNAVAILABLE', `Redis refused or dropped the command: ${(err as Error).message}`, { cause: err });
  } finally {
    timer.abort();
  }
}

/**
 * Logs a Redis outage once when it starts and once when it ends, not on every tick of a loop that keeps failing.
 */
export class OutageLog {
  readonly #logger: Logger;
  readonly #what: string;
  #failing = false;

  constructor(logger: Logger, what: string) {
    this.#logger = logger;
    this.#what = what;
  }

  fail(err: unknown): void {
    if (this.#failing) {
      this.#logger.debug(`Redis is still unreachable for ${this.#what}`);
      return;
    }
    this.#failing = true;
    this.#logger.warn(`Redis is unreachable for ${this.#what}; retrying`, { err: err instanceof Error ? err : new Error(String(err)) });
  }

  ok(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#logger.info(`Redis answers again for ${this.#what}`);
  }
}

/** Calls a listener; one that throws is logged and does not break the loop that called it (nor count as a Redis error). */
export function notify(logger: Logger, what: string, listener: () => void): void {
  try {
    listener();
  } catch (err) {
    logger.error(`The ${what} listener threw`, { err: err instanceof Error ? err : new Error(String(err)) });
  }
}

// Takes the lease when the key is free, or when it still names this owner (an acquisition whose answer was lost
// to a timeout, or a lease this owner stopped trusting locally): either way a new fence starts a new term.
const ACQUIRE = luaScript(`
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^(.*):%d+$') ~= ARGV[1] then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
return fence
`);

const RENEW = luaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

const RELEASE = luaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** The owner named by a lease value `${owner}:${fence}`; undefined for none or a value of another shape. */
export function leaseOwner(value: string | null | undefined): string | undefined {
  const match = value ? /^(.*):\d+$/.exec(value) : null;
  return match ? match[1] : undefined;
}

/** How much earlier than Redis the holder stops trusting its lease: a tenth of the TTL, at least 200 ms, at most half. */
export function safetyMarginMs(ttlMs: number): number {
  return Math.min(Math.max(ttlMs / 10, 200), ttlMs / 2);
}

export interface LeaseOptions {
  client: RedisClient;
  key: string;
  /** Who holds it: unique per process (a replica id), since a lease naming this owner is taken back by acquire(). */
  owner: string;
  ttlMs: number;
  clock: Clock;
  /** Monotonic milliseconds for the local deadline; `performance.now` by default. */
  monotonicNow?: () => number;
  /** How long one command may take before it counts as failed; a third of the TTL by default. */
  timeoutMs?: number;
}

/** One lease on one key. Not safe for concurrent calls on the same object: its owner serialises them. */
export class Lease {
  readonly key: string;
  readonly owner: string;
  readonly ttlMs: number;
  readonly #client: RedisClient;
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #marginMs: number;
  /** The value we last set, kept after a failure so that release() and a re-acquire can still match it. */
  #value: string | undefined;
  #fence: number | undefined;
  #deadline = -Infinity;

  constructor(options: LeaseOptions) {
    if (!(options.ttlMs > 0)) throw new RangeError(`Cannot create a lease as 'ttlMs' must be positive: current value is ${options.ttlMs}`);
    this.key = options.key;
    this.owner = options.owner;
    this.ttlMs = Math.ceil(options.ttlMs);
    this.#client = options.client;
    this.#clock = options.clock;
    this.#now = options.monotonicNow ?? (() => performance.now());
    this.#timeoutMs = options.timeoutMs ?? this.ttlMs / 3;
    this.#marginMs = safetyMarginMs(this.ttlMs);
  }

  /** True only while the local deadline has not passed. */
  get held(): boolean {
    return this.#now() < this.#deadline;
  }

  /** The fencing token of the current acquisition while held: it grows with every acquisition, by any owner. */
  get fence(): number | undefined {
    return this.held ? this.#fence : undefined;
  }

  /** The local deadline, on the `monotonicNow` scale; -Infinity when not held. */
  get deadline(): number {
    return this.#deadline;
  }

  /**
   * Takes the lease if nobody else holds it. Resolves true when it is held (with a new fence).
   * @throws AppError REDIS_UNAVAILABLE when Redis fails or does not answer in time (then not held).
   */
  async acquire(): Promise<boolean> {
    const sentAt = this.#now();
    this.#deadline = -Infinity;
    const fence = Number(await this.#run(ACQUIRE, [this.key, `${this.key}:fence`], [this.owner, String(this.ttlMs)]));
    if (!(fence > 0)) return false;
    this.#fence = fence;
    this.#value = `${this.owner}:${fence}`;
    this.#deadline = sentAt + this.ttlMs - this.#marginMs;
    return this.held;
  }

  /**
   * Extends the lease if Redis still holds our value (owner and fence). Resolves false when it does not (another
   * owner took it, or it expired): then not held.
   * @throws AppError REDIS_UNAVAILABLE when Redis fails or does not answer in time: then not held either, since
   *   nothing confirmed it (the value is kept, so a later acquire() or release() still matches it).
   */
  async renew(): Promise<boolean> {
    const value = this.#value;
    if (value === undefined) return false;
    const sentAt = this.#now();
    let renewed: boolean;
    try {
      renewed = Number(await this.#run(RENEW, [this.key], [value, String(this.ttlMs)])) === 1;
    } catch (err) {
      this.#deadline = -Infinity;
      throw err;
    }
    if (this.#value !== value) return false;
    if (!renewed) {
      this.#forget();
      return false;
    }
    this.#deadline = sentAt + this.ttlMs - this.#marginMs;
    return this.held;
  }

  /**
   * Deletes the lease if it is still ours, so another owner may take it at once. Not held afterwards, even when
   * Redis could not be told (the key then expires on its own).
   * @throws AppError REDIS_UNAVAILABLE when Redis fails or does not answer in time.
   */
  async release(): Promise<void> {
    const value = this.#value;
    this.#forget();
    if (value !== undefined) await this.#run(RELEASE, [this.key], [value]);
  }

  #forget(): void {
    this.#value = undefined;
    this.#fence = undefined;
    this.#deadline = -Infinity;
  }

  #run(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    return runScript(this.#client, script, { keys, args, timeoutMs: this.#timeoutMs, clock: this.#clock });
  }
}

export type Role = 'leader' | 'follower';

export interface LeaderElectionOptions {
  client: RedisClient;
  prefix: string;
  replicaId: string;
  /** The lease's TTL; 10 s by default (SPEC: a new leader within TTL + one renewal). */
  ttlMs?: number;
  /** A third of the TTL by default; must leave time before the local deadline. */
  renewEveryMs?: number;
  clock: Clock;
  logger: Logger;
  monotonicNow?: () => number;
  /** Called on every change of role, 'leader' with the term's fence; never called twice with the same role. */
  onChange?: (role: Role, fence: number | undefined) => void;
}

/**
 * The leader lease `PREFIX:leader`. Every `renewEveryMs` the leader renews it and a follower tries to take it.
 * A leader stops leading at once when a renewal fails (Redis error, timeout, lost compare-and-set) and when its
 * local deadline passes without a confirmed renewal (a timer, not the next tick). Redis errors never leave the loop.
 */
export class LeaderElection {
  readonly #o: LeaderElectionOptions;
  readonly #lease: Lease;
  readonly #renewEveryMs: number;
  readonly #stop = new AbortController();
  readonly #outage: OutageLog;
  #leading = false;
  #loop: Promise<void> | undefined;
  #deadlineTimer: AbortController | undefined;

  constructor(options: LeaderElectionOptions) {
    const ttlMs = options.ttlMs ?? 10_000;
    const renewEveryMs = options.renewEveryMs ?? ttlMs / 3;
    if (!(renewEveryMs > 0 && renewEveryMs < ttlMs - safetyMarginMs(ttlMs))) {
      throw new RangeError(`Cannot elect a leader as 'renewEveryMs' must be positive and below the TTL minus its safety margin (${ttlMs - safetyMarginMs(ttlMs)} ms): current value is ${renewEveryMs}`);
    }
    this.#o = options;
    this.#renewEveryMs = renewEveryMs;
    this.#outage = new OutageLog(options.logger, 'the leader lease');
    this.#lease = new Lease({
      client: options.client,
      key: redisKey(options.prefix, 'leader'),
      owner: options.replicaId,
      ttlMs,
      clock: options.clock,
      timeoutMs: renewEveryMs,
      ...(options.monotonicNow ? { monotonicNow: options.monotonicNow } : {}),
    });
  }

  /** 'leader' only while the lease is held by this replica and its local deadline has not passed. */
  get role(): Role {
    return this.#leading && this.#lease.held ? 'leader' : 'follower';
  }

  /** The fence of the current term while leading. */
  get fence(): number | undefined {
    return this.role === 'leader' ? this.#lease.fence : undefined;
  }

  /** Starts the loop (once); it ends when `signal` aborts or close() is called. */
  start(signal: AbortSignal): void {
    if (this.#loop || this.#stop.signal.aborted) return;
    this.#loop = this.#run(AbortSignal.any([signal, this.#stop.signal]));
  }

  /**
   * The replica id that holds the leader lease in Redis now, undefined when none does.
   * @throws AppError REDIS_UNAVAILABLE when Redis fails or does not answer in time.
   */
  async leader(): Promise<string | undefined> {
    const key = redisKey(this.#o.prefix, 'leader');
    return leaseOwner(await withTimeout(this.#o.client.get(key), this.#renewEveryMs, this.#o.clock));
  }

  /** Stops the loop, stops leading, then releases the lease so another replica leads at once. Idempotent. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    this.#stepDown('closing', 'info');
    try {
      await this.#lease.release();
    } catch (err) {
      this.#o.logger.warn('Cannot release the leader lease; it expires on its own', { err: err as Error });
    }
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#tick();
      await this.#o.clock.sleep(this.#renewEveryMs, signal).catch(() => undefined);
    }
  }

  async #tick(): Promise<void> {
    try {
      if (this.#leading) {
        const renewed = await this.#lease.renew();
        // A deadline timer may have stepped down while the renewal was in flight: the next tick starts a new term.
        if (!this.#leading) return;
        if (renewed) this.#armDeadline();
        else this.#stepDown('the lease was lost or expired');
      } else if (await this.#lease.acquire()) {
        this.#leading = true;
        this.#armDeadline();
        this.#o.logger.info('Leading', { replica: this.#o.replicaId, fence: this.#lease.fence });
        const fence = this.#lease.fence;
        notify(this.#o.logger, 'onChange', () => this.#o.onChange?.('leader', fence));
      }
      this.#outage.ok();
    } catch (err) {
      this.#outage.fail(err);
      this.#stepDown('the lease could not be renewed');
    }
  }

  /** Steps down when the local deadline passes without a confirmed renewal, whatever the loop is waiting on. */
  #armDeadline(): void {
    this.#deadlineTimer?.abort();
    const timer = new AbortController();
    this.#deadlineTimer = timer;
    const now = this.#o.monotonicNow ?? (() => performance.now());
    this.#o.clock.sleep(this.#lease.deadline - now(), timer.signal).then(
      () => {
        if (this.#deadlineTimer !== timer) return;
        if (this.#lease.held) this.#armDeadline();
        else this.#stepDown('its local deadline passed without a renewal');
      },
      () => undefined,
    );
  }

  #stepDown(why: string, level: 'info' | 'warn' = 'warn'): void {
    this.#deadlineTimer?.abort();
    this.#deadlineTimer = undefined;
    if (!this.#leading) return;
    this.#leading = false;
    this.#o.logger[level](`Not leading any more: ${why}`, { replica: this.#o.replicaId });
    notify(this.#o.logger, 'onChange', () => this.#o.onChange?.('follower', undefined));
  }
}
