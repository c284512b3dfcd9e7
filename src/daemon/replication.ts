/**
 * Several replicas on one Redis (README "Running several replicas"): this replica's connection, the shared journal,
 * its membership and the leader election. The leader runs what must run once (the subscription syncs, minting and
 * rotating the shared token, the forwarder from its one cursor); every replica receives, journals and serves the
 * stream. A follower's SIGHUP asks the leader to sync over a Redis channel.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config/settings.js';
import type { Clock } from '../lib/clock.js';
import { toAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/retry.js';
import { RedisConnection, redactRedisUrl, type RedisClient } from '../storage/redis-connection.js';
import { RedisJournal } from '../storage/redis-journal.js';
import { LeaderElection } from '../storage/redis-lease.js';
import { ReplicaRegistry, ShardLeases } from '../storage/redis-replicas.js';
import { RedisTokenStore } from '../storage/redis-token-store.js';
import { RedisConduitStore } from '../storage/redis-conduit-store.js';
import type { ShardOwnership, ShardOwnershipEvents } from '../conduit/conduit-runtime.js';
import { redisKey } from '../storage/types.js';

export type Role = 'leader' | 'follower';
type RedisSettings = NonNullable<Config['redis']>;

export interface ReplicationOptions {
  redis: RedisSettings;
  retention: { maxBytes: number; maxAgeMs: number };
  clock: Clock;
  logger: Logger;
  /** Default: host name, pid and 3 random bytes, so that a restarted process is a new replica. */
  replicaId?: string | undefined;
  pid: number;
}

/** A new replica id: readable in `/status` and logs, unique across restarts. */
export function newReplicaId(pid: number): string {
  return `${hostname()}-${pid}-${randomBytes(3).toString('hex')}`;
}

export class Replication {
  readonly replicaId: string;
  readonly connection: RedisConnection;
  readonly journal: RedisJournal;
  readonly #o: ReplicationOptions;
  readonly #logger: Logger;
  readonly #election: LeaderElection;
  readonly #registry: ReplicaRegistry;
  readonly #roleListeners = new Set<(role: Role) => void>();
  readonly #syncListeners = new Set<(reason: string) => void>();
  #subscriber: RedisClient | undefined;
  #closed = false;

  private constructor(o: ReplicationOptions, connection: RedisConnection, journal: RedisJournal, replicaId: string) {
    this.#o = o;
    this.#logger = o.logger.child({ component: 'replication', replica: replicaId });
    this.replicaId = replicaId;
    this.connection = connection;
    this.journal = journal;
    const common = { client: connection.client, prefix: o.redis.prefix, replicaId, clock: o.clock };
    this.#election = new LeaderElection({
      ...common,
      ttlMs: o.redis.leaseMs,
      logger: this.#logger,
      onChange: (role) => this.#roleChanged(role),
    });
    this.#registry = new ReplicaRegistry({ ...common, ttlMs: o.redis.leaseMs, logger: this.#logger });
  }

  /**
   * Connects (a Redis that is down is not fatal: the connection retries and the replica is not ready meanwhile) and
   * opens the shared journal.
   * @throws ConfigError (CONFIG_INVALID) for a wrong password or ACL; AppError (REDIS_NOT_DURABLE) for a Redis
   *   that does not persist every write while EVENTSUBD_REDIS_DURABILITY asks it to.
   */
  static async open(o: ReplicationOptions): Promise<Replication> {
    const replicaId = o.replicaId ?? newReplicaId(o.pid);
    const logger = o.logger.child({ component: 'redis' });
    const connection = new RedisConnection({ url: o.redis.url, durability: o.redis.durability, clock: o.clock, logger });
    try {
      await connection.start();
      if (!connection.ready) logger.warn('Redis is not reachable yet: not ready until it is; retrying', { url: redactRedisUrl(o.redis.url) });
      const journal = await RedisJournal.open({
        connection,
        prefix: o.redis.prefix,
        clock: o.clock,
        logger: o.logger.child({ component: 'journal' }),
        retention: o.retention,
        durability: o.redis.durability,
      });
      return new Replication(o, connection, journal, replicaId);
    } catch (err) {
      await connection.close();
      throw err;
    }
  }

  /** Starts membership, the election and the sync-request channel; all of them ride out Redis outages by themselves. */
  start(signal: AbortSignal): void {
    this.#registry.start(signal);
    this.#election.start(signal);
    void this.#listenForSyncRequests(signal);
  }

  get role(): Role {
    return this.#election.role;
  }

  /** Called on every change of role (never twice in a row with the same role). */
  onRole(listener: (role: Role) => void): void {
    this.#roleListeners.add(listener);
  }

  /** The leader is asked to sync (SIGHUP on a follower); the listener runs on the leader only. */
  onSyncRequest(listener: (reason: string) => void): void {
    this.#syncListeners.add(listener);
  }

  /** A follower asks the leader to sync. Resolves once Redis took the request (no leader: nobody hears it, said in the log). */
  async requestSync(reason: string): Promise<void> {
    const heard = await this.connection.client.publish(this.#channel, reason);
    if (heard === 0) this.#logger.warn('No replica listens for sync requests: the request is lost', { reason });
  }

  /** For `/status`: role, ids, the replicas seen, Redis's state. */
  status(): Record<string, unknown> {
    return {
      role: this.role,
      replica_id: this.replicaId,
      leader_fence: this.#election.fence ?? null,
      replicas: this.#registry.lastSeen,
      redis: { ready: this.connection.ready, prefix: this.#o.redis.prefix },
    };
  }

  /** The shared app token and its mint lock (`PREFIX:token`, `PREFIX:token:lock`). */
  tokenStore(clientId: string): RedisTokenStore {
    return new RedisTokenStore({
      client: this.connection.client,
      prefix: this.#o.redis.prefix,
      clientId,
      clock: this.#o.clock,
      logger: this.#o.logger.child({ component: 'tokens' }),
    });
  }

  /** The conduit record the leader writes and the followers read (`PREFIX:conduit`). */
  conduitStore(): RedisConduitStore {
    return new RedisConduitStore({ client: this.connection.client, prefix: this.#o.redis.prefix });
  }

  /**
   * Conduit mode: this replica's fair share of the shards `0..shards-1`, each under a fenced lease (`PREFIX:shard:<id>`).
   * Every replica in the membership runs one, so the shares add up.
   */
  shardLeases(shards: number, events: ShardOwnershipEvents): ShardOwnership {
    return new ShardLeases({
      client: this.connection.client,
      prefix: this.#o.redis.prefix,
      replicaId: this.replicaId,
      shardIds: Array.from({ length: shards }, (_, i) => String(i)),
      ttlMs: this.#o.redis.leaseMs,
      registry: this.#registry,
      clock: this.#o.clock,
      logger: this.#o.logger.child({ component: 'conduit' }),
      onAcquire: (shardId, fence) => events.onAcquire(shardId, fence),
      onLose: (shardId) => events.onLose(shardId),
    });
  }

  /** Hands the leadership over (released, not left to expire), leaves the membership, closes the journal and the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#election.close().catch((err: unknown) => this.#logger.warn('The leader lease could not be released', { error: toAppError(err) }));
    await this.#registry.close().catch(() => undefined);
    await this.#subscriber?.close().catch(() => undefined);
    await this.journal.close();
    await this.connection.close();
  }

  get #channel(): string {
    return redisKey(this.#o.redis.prefix, 'sync-requests');
  }

  /** Subscribes to the followers' sync requests, retrying while Redis is down (node-redis re-subscribes after a reconnect). */
  async #listenForSyncRequests(signal: AbortSignal): Promise<void> {
    for (let attempt = 1; !this.#closed && !signal.aborted; attempt++) {
      try {
        const sub = (this.#subscriber = await this.connection.duplicate());
        if (this.#closed) return void (await sub.close().catch(() => undefined));
        await sub.subscribe(this.#channel, (reason: string) => {
          if (this.role !== 'leader') return;
          for (const l of this.#syncListeners) l(`requested by a follower: ${reason}`);
        });
        return;
      } catch (err) {
        if (attempt === 1) this.#logger.warn('Sync requests from followers cannot be heard yet; retrying', { error: toAppError(err) });
        await this.#subscriber?.close().catch(() => undefined);
        this.#subscriber = undefined;
        await this.#o.clock.sleep(backoffDelay(attempt, { baseMs: 500, maxMs: 10_000 }), signal).catch(() => undefined);
      }
    }
  }

  #roleChanged(role: Role): void {
    this.#logger.info(role === 'leader' ? 'This replica leads' : 'This replica follows', { fence: this.#election.fence });
    for (const l of this.#roleListeners) {
      try {
        l(role);
      } catch (err) {
        this.#logger.error('A role listener failed', { error: toAppError(err) });
      }
    }
  }
}
