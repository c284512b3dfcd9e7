import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test, type TestContext } from 'node:test';
import { systemClock } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/logger.js';
import { Lease, type RedisClient } from '../../src/storage/redis-lease.js';
import { planShards, ReplicaRegistry, ShardLeases } from '../../src/storage/redis-replicas.js';
import { redisClient, startRedisServer } from '../helpers/redis-server.js';
import { untilEmitted, untilTurn } from '../helpers/wait.js';

const TTL = 1200;
const TICK = 300;
/** Command round trips and timer lateness on a busy test machine. */
const SLACK = 300;
const SHARDS = ['0', '1', '2', '3', '4', '5'];

function connect(t: TestContext, url: string): Promise<RedisClient> {
  return redisClient(t, url);
}

interface ShardEvent {
  replica: string;
  shard: string;
  kind: 'acquire' | 'lose';
  at: number;
}

/**
 * Replicas (a registry and shard leases each, on their own client) that report every shard taken or lost on one
 * emitter, and check on each acquisition that no other replica holds that shard at that instant.
 */
function cluster(t: TestContext, url: string) {
  const events = new EventEmitter();
  const log: ShardEvent[] = [];
  const doubles: string[] = [];
  const replicas = new Map<string, { shards: ShardLeases; registry: ReplicaRegistry; client: RedisClient; stop: AbortController }>();
  const add = async (id: string) => {
    const client = await connect(t, url);
    const registry = new ReplicaRegistry({ client, prefix: 'test', replicaId: id, ttlMs: TTL, beatEveryMs: TICK, clock: systemClock, logger: silentLogger });
    const record = (shard: string, kind: ShardEvent['kind']): void => {
      if (kind === 'acquire') {
        for (const [other, r] of replicas) if (other !== id && r.shards.held().includes(shard)) doubles.push(`${shard} taken by ${id} while ${other} held it`);
      }
      log.push({ replica: id, shard, kind, at: performance.now() });
      events.emit('change');
    };
    const shards = new ShardLeases({
      client,
      prefix: 'test',
      replicaId: id,
      shardIds: SHARDS,
      ttlMs: TTL,
      renewEveryMs: TICK,
      registry,
      clock: systemClock,
      logger: silentLogger,
      onAcquire: (shard) => record(shard, 'acquire'),
      onLose: (shard) => record(shard, 'lose'),
    });
    const stop = new AbortController();
    replicas.set(id, { shards, registry, client, stop });
    t.after(async () => {
      stop.abort();
      await shards.close();
      await registry.close();
    });
    registry.start(stop.signal);
    shards.start(stop.signal);
    return replicas.get(id)!;
  };
  const counts = (ids = [...replicas.keys()]) => ids.map((id) => replicas.get(id)!.shards.held().length);
  const heldBy = (ids: string[]) => new Set(ids.flatMap((id) => replicas.get(id)!.shards.held()));
  const until = (cond: () => boolean, what: string) => untilEmitted(events, 'change', cond, what);
  return { add, replicas, counts, heldBy, until, log, doubles };
}

test('planShards() splits n shards into targets that add up to n, by position among the sorted live replicas', () => {
  const holders = new Map(SHARDS.map((id) => [id, undefined]));
  const targets = (live: string[]) => live.map((self) => planShards({ shardIds: SHARDS, self, live, holders, mine: new Set() }).target);
  assert.deepEqual(targets(['a', 'b', 'c']), [2, 2, 2]);
  assert.deepEqual(targets(['a', 'b', 'c', 'd']), [2, 2, 1, 1]);
  assert.deepEqual(targets(['a']), [6]);
  assert.deepEqual(targets(['a', 'b', 'c', 'd', 'e', 'f', 'g']), [1, 1, 1, 1, 1, 1, 0]);
  assert.equal(planShards({ shardIds: SHARDS, self: 'z', live: [], holders, mine: new Set() }).target, 6, 'self counts as live');
});

test('planShards() takes free shards (ours per Redis first), hands over extras only to a replica waiting for them', () => {
  const holders = new Map<string, string | undefined>([['0', 'a'], ['1', 'a'], ['2', 'b'], ['3', 'b'], ['4', undefined], ['5', 'c']]);
  const plan = planShards({ shardIds: SHARDS, self: 'c', live: ['a', 'b', 'c'], holders, mine: new Set(['5']) });
  assert.deepEqual(plan, { target: 2, acquire: ['4'], release: [] });
  const stale = planShards({ shardIds: SHARDS, self: 'c', live: ['a', 'b', 'c'], holders, mine: new Set() });
  assert.deepEqual(stale.acquire, ['5', '4'], 'a lease Redis still names us for comes first');

  const all = new Map(SHARDS.map((id, i) => [id, i < 3 ? 'a' : 'b']));
  const a = planShards({ shardIds: SHARDS, self: 'a', live: ['a', 'b', 'c', 'd'], holders: all, mine: new Set(['0', '1', '2']) });
  assert.deepEqual(a, { target: 2, acquire: [], release: ['2'] }, 'the highest id goes to the newcomers');
  const b = planShards({ shardIds: SHARDS, self: 'b', live: ['a', 'b', 'c', 'd'], holders: all, mine: new Set(['3', '4', '5']) });
  assert.deepEqual(b.release, ['5'], 'b is second of four: its target is 2');
  const d = planShards({ shardIds: SHARDS, self: 'd', live: ['a', 'b', 'c', 'd'], holders: all, mine: new Set() });
  assert.deepEqual(d, { target: 1, acquire: [], release: [] }, 'nothing free yet: d waits for a hand-over');
  const bAlone = planShards({ shardIds: SHARDS, self: 'b', live: ['a', 'b', 'c', 'x', 'y'], holders: all, mine: new Set(['3', '4', '5']) });
  assert.deepEqual(bAlone.release, ['5', '4'], 'target 1 of 5 replicas: two go, highest first');

  const withFree = new Map<string, string | undefined>([...all, ['5', undefined]]);
  assert.deepEqual(planShards({ shardIds: SHARDS, self: 'a', live: ['a', 'b', 'c', 'd'], holders: withFree, mine: new Set(['0', '1', '2']) }).release, [], 'not while a shard is free');
  assert.deepEqual(planShards({ shardIds: SHARDS, self: 'a', live: ['a', 'b'], holders: all, mine: new Set(['0', '1', '2']) }).release, [], 'nobody waits');
});

test('ReplicaRegistry: heartbeats on Redis time, live() lists the replicas seen within the TTL, close() removes one at once', async (t) => {
  const server = await startRedisServer(t);
  const registries = await Promise.all(['r2', 'r1'].map(async (replicaId) => {
    const registry = new ReplicaRegistry({ client: await connect(t, server.url), prefix: 'test', replicaId, ttlMs: TTL, beatEveryMs: TICK, clock: systemClock, logger: silentLogger });
    const stop = new AbortController();
    t.after(async () => {
      stop.abort();
      await registry.close();
    });
    registry.start(stop.signal);
    return registry;
  }));
  const raw = await connect(t, server.url);
  await untilTurn(() => registries.every((r) => r.lastSeen.length === 2), 'both beats seen');
  assert.deepEqual(await registries[0]!.live(), ['r1', 'r2']);
  const [time] = await raw.time();
  const score = await raw.zScore('test:replicas', 'r1');
  assert.ok(Math.abs(score! - Number(time) * 1000) < 5_000, 'the score is Redis server time in ms');

  // A replica whose beats are older than the TTL is not live, whatever clock its own machine keeps.
  await raw.zAdd('test:replicas', { score: Number(time) * 1000 - TTL - 1, value: 'old' });
  assert.deepEqual(await registries[0]!.live(), ['r1', 'r2']);
  await registries[1]!.close();
  assert.deepEqual(await registries[0]!.live(), ['r2']);
});

test('ShardLeases: 6 shards over 3 replicas settle at 2 each, never one shard on two replicas', async (t) => {
  const server = await startRedisServer(t);
  const c = cluster(t, server.url);
  for (const id of ['r1', 'r2', 'r3']) await c.add(id);
  await c.until(() => c.counts().every((n) => n === 2), '2 shards each');
  assert.equal(c.heldBy(['r1', 'r2', 'r3']).size, 6);
  const raw = await connect(t, server.url);
  for (const [id, r] of c.replicas) {
    for (const shard of r.shards.held()) assert.match((await raw.get(`test:shard:${shard}`))!, new RegExp(`^${id}:\\d+$`));
  }
  assert.deepEqual(c.doubles, []);
});

test('ShardLeases: a dead replica\'s shards are all held by the survivors within TTL + one tick', async (t) => {
  const server = await startRedisServer(t);
  const c = cluster(t, server.url);
  for (const id of ['r1', 'r2', 'r3']) await c.add(id);
  await c.until(() => c.counts().every((n) => n === 2), '2 shards each');

  const dead = c.replicas.get('r2')!;
  const diedAt = performance.now();
  dead.stop.abort();
  dead.client.destroy();
  await c.until(() => c.heldBy(['r1', 'r3']).size === 6, 'all 6 shards on the survivors');
  const took = performance.now() - diedAt;
  assert.ok(took <= TTL + TICK + SLACK, `taken over within TTL + one tick: took ${Math.round(took)} ms`);
  assert.deepEqual(c.counts(['r1', 'r3']), [3, 3]);
  await c.until(() => dead.shards.held().length === 0, 'the dead replica\'s own deadline timer giving its shards up');
  assert.deepEqual(c.doubles, []);
});

test('ShardLeases: a 4th replica joining gets its share handed over, no shard unheld for longer than a tick', async (t) => {
  const server = await startRedisServer(t);
  const c = cluster(t, server.url);
  for (const id of ['r1', 'r2', 'r3']) await c.add(id);
  await c.until(() => c.counts().every((n) => n === 2), '2 shards each');
  const joinedAt = performance.now();
  await c.add('r4');
  await c.until(() => c.counts().join() === '2,2,1,1', 'shares of 2, 2, 1 and 1');
  assert.equal(c.heldBy(['r1', 'r2', 'r3', 'r4']).size, 6);

  // Each hand-over: a lose on one replica, then the acquire on another; the gap is how long the shard was unheld.
  const handovers = c.log.filter((e) => e.kind === 'lose' && e.at >= joinedAt);
  assert.deepEqual(handovers.map((e) => e.replica), ['r3'], 'r3 (target 1 now) hands over one, the others keep theirs');
  for (const lost of handovers) {
    const taken = c.log.find((e) => e.kind === 'acquire' && e.shard === lost.shard && e.at >= lost.at)!;
    assert.equal(taken.replica, 'r4');
    assert.ok(taken.at - lost.at <= TICK + SLACK, `shard ${lost.shard} unheld for ${Math.round(taken.at - lost.at)} ms`);
  }
  assert.deepEqual(c.doubles, []);
});

test('ShardLeases: owns() is false, with onLose, once another holder took the shard over; true while ours', async (t) => {
  const server = await startRedisServer(t);
  const c = cluster(t, server.url);
  const r1 = await c.add('r1');
  await c.until(() => c.counts().join() === '6', 'r1 holding all 6');
  assert.equal(await r1.shards.owns('3'), true);
  assert.equal(await r1.shards.owns('nope'), false);

  // A takeover: the lease expired on Redis's side (deleted here) and another replica took it.
  const raw = await connect(t, server.url);
  await raw.del('test:shard:3');
  const usurper = new Lease({ client: raw, key: 'test:shard:3', owner: 'r9', ttlMs: 60_000, clock: systemClock });
  assert.equal(await usurper.acquire(), true);
  assert.equal(await r1.shards.owns('3'), false);
  assert.deepEqual(c.log.filter((e) => e.kind === 'lose').map((e) => e.shard), ['3']);
  assert.equal(r1.shards.held().includes('3'), false);
  assert.equal(await r1.shards.owns('3'), false, 'and stays lost');
  assert.equal((await raw.get('test:shard:3'))!, `r9:${usurper.fence}`, 'the usurper\'s lease is untouched');
});

test('ShardLeases: releaseAll() hands every shard over to the others at once, well under the TTL', async (t) => {
  const server = await startRedisServer(t);
  const c = cluster(t, server.url);
  for (const id of ['r1', 'r2', 'r3']) await c.add(id);
  await c.until(() => c.counts().every((n) => n === 2), '2 shards each');
  const leaving = c.replicas.get('r1')!;
  const releasedAt = performance.now();
  await leaving.shards.releaseAll();
  assert.deepEqual(leaving.shards.held(), []);
  await c.until(() => c.heldBy(['r2', 'r3']).size === 6, 'all 6 on the others');
  const took = performance.now() - releasedAt;
  assert.ok(took <= TICK + SLACK, `handed over within a tick, not the ${TTL} ms TTL: took ${Math.round(took)} ms`);
  assert.deepEqual(c.log.filter((e) => e.replica === 'r1' && e.kind === 'acquire' && e.at > releasedAt), [], 'the leaving replica takes nothing back');
  assert.deepEqual(c.doubles, []);
});

test('ShardLeases: Redis killed and restarted: every shard is given up at once, then all are held again', async (t) => {
  const server = await startRedisServer(t);
  const c = cluster(t, server.url);
  for (const id of ['r1', 'r2']) await c.add(id);
  await c.until(() => c.counts().every((n) => n === 3), '3 shards each');
  const before = c.log.length;
  await server.kill9();
  await c.until(() => c.counts().every((n) => n === 0), 'every shard given up');
  assert.equal(c.log.slice(before).filter((e) => e.kind === 'lose').length, 6);
  await server.restart();
  await c.until(() => c.counts().every((n) => n === 3), '3 shards each again');
  assert.deepEqual(c.doubles, []);
});
