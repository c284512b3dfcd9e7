/**
 * Replica membership and conduit shard leases on Redis (SPEC "Several replicas: Redis", "Conduit shards across
 * replicas"): each replica heartbeats into one sorted set, and holds a fair share of the shard ids, each under its own
 * fenced lease (src/storage/redis-lease.ts), so that every shard has one holder, a dead replica's shards are taken
 * over once their leases expire, and a replica that joins gets its share handed over by the others.
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { Lease, leaseOwner, luaScript, notify, OutageLog, runScript, safetyMarginMs, withTimeout, type RedisClient } from './redis-lease.js';
import { redisKey } from './types.js';

// Scores are Redis's own clock (TIME), never a replica's: skew between machines cannot make a live replica look dead.
const BEAT = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2]) * 10))
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')
`);

const LIVE = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
`);

export interface ReplicaRegistryOptions {
  client: RedisClient;
  prefix: string;
  replicaId: string;
  /** A replica not seen for this long is not live; 10 s by default. */
  ttlMs?: number;
  /** A third of the TTL by default. */
  beatEveryMs?: number;
  clock: Clock;
  logger: Logger;
}

/** Heartbeats in `PREFIX:replicas` (score: Redis server time in ms, member: replica id). */
export class ReplicaRegistry {
  readonly replicaId: string;
  readonly #o: ReplicaRegistryOptions;
  readonly #key: string;
  readonly #ttlMs: number;
  readonly #beatEveryMs: number;
  readonly #stop = new AbortController();
  readonly #outage: OutageLog;
  #loop: Promise<void> | undefined;
  #lastSeen: string[] = [];

  constructor(options: ReplicaRegistryOptions) {
    this.#o = options;
    this.replicaId = options.replicaId;
    this.#key = redisKey(options.prefix, 'replicas');
    this.#ttlMs = Math.ceil(options.ttlMs ?? 10_000);
    this.#beatEveryMs = options.beatEveryMs ?? this.#ttlMs / 3;
    if (!(this.#beatEveryMs > 0 && this.#beatEveryMs < this.#ttlMs)) {
      throw new RangeError(`Cannot register the replica as 'beatEveryMs' must be positive and below the TTL: current value is ${this.#beatEveryMs}`);
    }
    this.#outage = new OutageLog(options.logger, 'the replica heartbeat');
  }

  /** The live replicas as of the last heartbeat, sorted; empty before the first one answered. */
  get lastSeen(): string[] {
    return this.#lastSeen;
  }

  /** Starts heartbeating (once) until `signal` aborts or close() is called. */
  start(signal: AbortSignal): void {
    if (this.#loop || this.#stop.signal.aborted) return;
    this.#loop = this.#run(AbortSignal.any([signal, this.#stop.signal]));
  }

  /**
   * The replicas seen within the TTL, sorted, read from Redis now.
   * @throws AppError REDIS_UNAVAILABLE when Redis fails or does not answer in time.
   */
  async live(): Promise<string[]> {
    const ids = await this.#script(LIVE, [String(this.#ttlMs)]);
    return [...ids].sort();
  }

  /** Stops heartbeating and removes this replica from the set, so the others count it out at once. Idempotent. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    try {
      await withTimeout(this.#o.client.zRem(this.#key, this.replicaId), this.#beatEveryMs, this.#o.clock);
    } catch (err) {
      this.#o.logger.warn('Cannot remove this replica from the registry; it ages out on its own', { err: err as Error });
    }
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        this.#lastSeen = [...(await this.#script(BEAT, [this.replicaId, String(this.#ttlMs)]))].sort();
        this.#outage.ok();
      } catch (err) {
        this.#outage.fail(err);
      }
      await this.#o.clock.sleep(this.#beatEveryMs, signal).catch(() => undefined);
    }
  }

  async #script(script: typeof BEAT, args: string[]): Promise<string[]> {
    const reply = await runScript(this.#o.client, script, { keys: [this.#key], args, timeoutMs: this.#beatEveryMs, clock: this.#o.clock });
    return Array.isArray(reply) ? reply.map(String) : [];
  }
}

/** What one tick of ShardLeases should do, decided from one view of the replicas and the shard holders. */
export interface ShardPlan {
  /** How many shards this replica should hold. */
  target: number;
  /** Shards to try, in order, until `target` are held (free ones, and ones Redis still names us for). */
  acquire: string[];
  /** Shards to hand over now, highest ids first. */
  release: string[];
}

/**
 * The fair share, pure. The live replicas, sorted, split the shards so that the targets add up to the shard count:
 * `floor(n / r)` each, one more for the first `n % r` (never above `ceil(n / r)`). A replica below its target takes
 * free shards; one above it hands over its highest ids, but only when no shard is free and a live replica is below
 * its target (someone is waiting for them), so that replicas whose views differ for a moment do not churn.
 */
export function planShards(view: {
  shardIds: readonly string[];
  self: string;
  live: readonly string[];
  /** The holder of each shard per Redis, undefined when free. */
  holders: ReadonlyMap<string, string | undefined>;
  /** The shards this replica holds (local deadline not passed). */
  mine: ReadonlySet<string>;
}): ShardPlan {
  const live = [...new Set([...view.live, view.self])].sort();
  const n = view.shardIds.length;
  const targetOf = (i: number): number => Math.floor(n / live.length) + (i < n % live.length ? 1 : 0);
  const index = live.indexOf(view.self);
  const target = targetOf(index);
  const mine = view.shardIds.filter((id) => view.mine.has(id));
  const free = view.shardIds.filter((id) => view.holders.get(id) === undefined);
  if (mine.length < target) {
    // Ours per Redis but not locally trusted: acquire() takes them back with a new fence, and nobody else can.
    const stale = view.shardIds.filter((id) => view.holders.get(id) === view.self && !view.mine.has(id));
    // Replicas start at different places in the free list, so that two of them rarely race for the same shard.
    const offset = free.length === 0 ? 0 : Math.floor((index * free.length) / live.length);
    return { target, acquire: [...stale, ...free.slice(offset), ...free.slice(0, offset)], release: [] };
  }
  if (mine.length === target || free.length > 0) return { target, acquire: [], release: [] };
  const counts = new Map<string, number>();
  for (const holder of view.holders.values()) if (holder !== undefined) counts.set(holder, (counts.get(holder) ?? 0) + 1);
  const waiting = live.some((id, i) => (counts.get(id) ?? 0) < targetOf(i));
  return { target, acquire: [], release: waiting ? mine.slice(target).reverse() : [] };
}

export interface ShardLeasesOptions {
  client: RedisClient;
  prefix: string;
  replicaId: string;
  shardIds: readonly string[];
  /** Each shard lease's TTL; 10 s by default. */
  ttlMs?: number;
  /** A third of the TTL by default. */
  renewEveryMs?: number;
  /** Who is live, for the fair share; it heartbeats on its own (start it too). */
  registry: ReplicaRegistry;
  clock: Clock;
  logger: Logger;
  monotonicNow?: () => number;
  /** A shard's lease was taken: this replica may now assign it, PATCHing with owns() checked first. */
  onAcquire: (shardId: string, fence: number) => void;
  /** A shard is no longer this replica's (lost, expired, released or handed over): never PATCH it again. */
  onLose: (shardId: string) => void;
}

/**
 * This replica's conduit shards. Each tick renews the held leases (one pipelined batch: node-redis writes the
 * commands issued together in one go), reads who is live and who holds what (one more batch), then takes or hands
 * over shards per planShards(). A lease lost for any reason fires onLose at once, including when its local deadline
 * passes without a confirmed renewal (a timer, as for the leader).
 */
export class ShardLeases {
  readonly #o: ShardLeasesOptions;
  readonly #leases = new Map<string, Lease>();
  readonly #renewEveryMs: number;
  readonly #now: () => number;
  readonly #stop = new AbortController();
  readonly #outage: OutageLog;
  /** Shards announced with onAcquire and not yet with onLose. */
  readonly #mine = new Set<string>();
  #draining = false;
  #loop: Promise<void> | undefined;
  #deadlineTimer: AbortController | undefined;

  constructor(options: ShardLeasesOptions) {
    const ttlMs = options.ttlMs ?? 10_000;
    this.#renewEveryMs = options.renewEveryMs ?? ttlMs / 3;
    if (!(this.#renewEveryMs > 0 && this.#renewEveryMs < ttlMs - safetyMarginMs(ttlMs))) {
      throw new RangeError(`Cannot lease shards as 'renewEveryMs' must be positive and below the TTL minus its safety margin (${ttlMs - safetyMarginMs(ttlMs)} ms): current value is ${this.#renewEveryMs}`);
    }
    this.#o = options;
    this.#now = options.monotonicNow ?? (() => performance.now());
    this.#outage = new OutageLog(options.logger, 'the shard leases');
    for (const id of new Set(options.shardIds)) {
      this.#leases.set(id, new Lease({
        client: options.client,
        key: redisKey(options.prefix, `shard:${id}`),
        owner: options.replicaId,
        ttlMs,
        clock: options.clock,
        timeoutMs: this.#renewEveryMs,
        monotonicNow: this.#now,
      }));
    }
  }

  /** Starts the loop (once) until `signal` aborts or close() is called. */
  start(signal: AbortSignal): void {
    if (this.#loop || this.#stop.signal.aborted) return;
    this.#loop = this.#run(AbortSignal.any([signal, this.#stop.signal]));
  }

  /** The shards held now (local deadline not passed), sorted. */
  held(): string[] {
    return [...this.#mine].filter((id) => this.#leases.get(id)!.held).sort();
  }

  /** The fence of a held shard's lease. */
  fence(shardId: string): number | undefined {
    return this.#mine.has(shardId) ? this.#leases.get(shardId)?.fence : undefined;
  }

  /**
   * The fencing check right before a PATCH of `shardId`: renews its lease by compare-and-set. False (and onLose)
   * when the lease is not ours any more or Redis cannot confirm it: the caller must not PATCH.
   */
  async owns(shardId: string): Promise<boolean> {
    const lease = this.#leases.get(shardId);
    if (!lease || !this.#mine.has(shardId)) return false;
    let renewed = false;
    try {
      renewed = await lease.renew();
    } catch (err) {
      this.#outage.fail(err);
    }
    if (!renewed || !this.#mine.has(shardId)) {
      this.#lose(shardId, 'its lease could not be confirmed');
      return false;
    }
    this.#armDeadline();
    return true;
  }

  /** Hands one shard over: onLose first (stop using it), then its lease is deleted so another replica takes it. */
  async release(shardId: string): Promise<void> {
    const lease = this.#leases.get(shardId);
    if (!lease) return;
    this.#lose(shardId, 'released');
    try {
      await lease.release();
    } catch (err) {
      this.#o.logger.warn('Cannot release a shard lease; it expires on its own', { shard: shardId, err: err as Error });
    }
  }

  /**
   * Graceful stop: takes no more shards, leaves the registry (so the others count this replica out and raise their
   * shares now, not after its heartbeat ages out), then hands every held shard over. The loop keeps renewing
   * nothing until close().
   */
  async releaseAll(): Promise<void> {
    this.#draining = true;
    await this.#o.registry.close();
    // Every lease, not only the announced ones: one whose answer was lost to a timeout may still name us in Redis.
    await Promise.all([...this.#leases.keys()].map((id) => this.release(id)));
  }

  /** Stops the loop and releases whatever is still held. Idempotent. */
  async close(): Promise<void> {
    this.#draining = true;
    this.#stop.abort();
    await this.#loop;
    await this.releaseAll();
    this.#deadlineTimer?.abort();
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#tick();
        this.#outage.ok();
      } catch (err) {
        this.#outage.fail(err);
      }
      await this.#o.clock.sleep(this.#renewEveryMs, signal).catch(() => undefined);
    }
  }

  async #tick(): Promise<void> {
    await this.#renewAll();
    if (this.#draining) return;
    const ids = [...this.#leases.keys()];
    const [live, values] = await Promise.all([
      this.#o.registry.live().catch(() => this.#o.registry.lastSeen),
      withTimeout(this.#o.client.mGet(ids.map((id) => this.#leases.get(id)!.key)), this.#renewEveryMs, this.#o.clock),
    ]);
    const holders = new Map(ids.map((id, i) => [id, leaseOwner(values[i])]));
    const plan = planShards({ shardIds: ids, self: this.#o.replicaId, live, holders, mine: new Set(this.held()) });
    for (const id of plan.release) await this.release(id);
    await this.#acquireUpTo(plan.target, plan.acquire);
  }

  /** Renews every held lease together; each one lost fires onLose. Rethrows the first Redis error, for the log. */
  async #renewAll(): Promise<void> {
    const ids = [...this.#mine];
    const results = await Promise.allSettled(ids.map((id) => this.#leases.get(id)!.renew()));
    let failure: Error | undefined;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled' && result.value) return;
      if (result.status === 'rejected') failure ??= result.reason as Error;
      this.#lose(ids[i]!, result.status === 'rejected' ? 'Redis did not confirm its renewal' : 'its lease was taken over or expired');
    });
    this.#armDeadline();
    if (failure !== undefined) throw failure;
  }

  /** Tries `candidates` in order, a batch at a time, until `target` shards are held or none is left to try. */
  async #acquireUpTo(target: number, candidates: string[]): Promise<void> {
    let next = 0;
    while (this.#mine.size < target && next < candidates.length && !this.#draining) {
      const batch = candidates.slice(next, next + target - this.#mine.size);
      next += batch.length;
      const taken = await Promise.allSettled(batch.map((id) => this.#leases.get(id)!.acquire()));
      let failure: Error | undefined;
      batch.forEach((id, i) => {
        const lease = this.#leases.get(id)!;
        const result = taken[i]!;
        if (result.status === 'rejected') failure ??= result.reason as Error;
        if (result.status === 'rejected' || !result.value || this.#mine.has(id)) return;
        // releaseAll() ran while this acquisition was in flight: hand it straight back instead of sitting on it.
        if (this.#draining) return void lease.release().catch(() => undefined);
        this.#mine.add(id);
        this.#o.logger.info('Shard lease taken', { shard: id, fence: lease.fence });
        const fence = lease.fence!;
        notify(this.#o.logger, 'onAcquire', () => this.#o.onAcquire(id, fence));
      });
      this.#armDeadline();
      if (failure !== undefined) throw failure;
    }
  }

  #lose(shardId: string, why: string): void {
    if (!this.#mine.delete(shardId)) return;
    this.#o.logger.info(`Shard lease given up: ${why}`, { shard: shardId });
    notify(this.#o.logger, 'onLose', () => this.#o.onLose(shardId));
  }

  /** One timer for the earliest local deadline of the held shards: each passed one is lost then, not at the next tick. */
  #armDeadline(): void {
    this.#deadlineTimer?.abort();
    this.#deadlineTimer = undefined;
    if (this.#mine.size === 0) return;
    const earliest = Math.min(...[...this.#mine].map((id) => this.#leases.get(id)!.deadline));
    const timer = new AbortController();
    this.#deadlineTimer = timer;
    this.#o.clock.sleep(earliest - this.#now(), timer.signal).then(
      () => {
        if (this.#deadlineTimer !== timer) return;
        for (const id of [...this.#mine]) {
          if (!this.#leases.get(id)!.held) this.#lose(id, 'its local deadline passed without a renewal');
        }
        this.#armDeadline();
      },
      () => undefined,
    );
  }
}
