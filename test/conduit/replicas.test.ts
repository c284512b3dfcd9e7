/**
 * Conduit shards across replicas (SPEC "Several replicas: Redis", "Conduit shards across replicas"; issue 15
 * item 4): three ConduitRuntimes in one process act as three replicas on one real redis-server (shard leases and
 * the replica registry of src/storage/redis-replicas.ts, the conduit record in Redis) and the emulator standing
 * in for Twitch. Six shards are spread two per replica, each on its own live session; a crashed replica's shards
 * are assigned again within the lease TTL + 10 s; a replica whose lease was taken over never PATCHes that shard;
 * a replica that stops gracefully hands its shards over without the emulator dropping one message; and every
 * message delivered is journaled exactly once in the journal the three share.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { createClient } from 'redis';
import { Agent } from 'undici';
import { ConduitManager } from '../../src/conduit/conduit-manager.js';
import { ConduitRuntime, type ShardOwnership, type ShardOwnershipEvents } from '../../src/conduit/conduit-runtime.js';
import { loadConfig } from '../../src/config/settings.js';
import { buildTwitchStack } from '../../src/daemon/twitch-stack.js';
import { startEmulator, type Emulator, type SentMessage } from '../../src/emulator/index.js';
import { systemClock } from '../../src/lib/clock.js';
import type { AppError } from '../../src/lib/errors.js';
import { silentLogger } from '../../src/lib/logger.js';
import { Dedup } from '../../src/receiver/dedup.js';
import { Intake } from '../../src/receiver/intake.js';
import type { JournalSink } from '../../src/receiver/types.js';
import { RedisConduitStore } from '../../src/storage/redis-conduit-store.js';
import { ReplicaRegistry, ShardLeases } from '../../src/storage/redis-replicas.js';
import type { RedisClient } from '../../src/storage/redis-lease.js';
import { redisKey } from '../../src/storage/types.js';
import type { ConduitApi } from '../../src/twitch/types.js';
import { captureLogs } from '../auth/fakes.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { untilTurn } from '../helpers/wait.js';

const SHARDS = 6;
const SHARD_IDS = Array.from({ length: SHARDS }, (_, i) => String(i));

let redis: RedisServerHandle;
before(async () => {
  redis = await startRedisServer();
});
after(() => redis.dispose());

let prefixes = 0;

/**
 * A TCP relay between one replica and the emulator's /ws: `crash()` drops every connection without a close frame
 * (the emulator records 1006, as for a dead machine) and refuses new ones, as a crashed replica would.
 */
async function wsRelay(target: number): Promise<{ url: string; crash(): void }> {
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  };
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    track(client);
    track(upstream);
    // Either side gone (closed, reset): the other goes too, as a single TCP connection would.
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const crash = (): void => {
    server.close();
    for (const s of sockets) s.resetAndDestroy();
  };
  return { url: `ws://127.0.0.1:${port}/ws`, crash };
}

interface Replica {
  id: string;
  runtime: ConduitRuntime;
  manager: ConduitManager;
  /** Every PATCH this replica sent, in order. */
  patches: Array<{ shardId: string; sessionId: string }>;
  /** Every fencing check this replica made, in order. */
  fenceChecks: Array<{ shardId: string; owned: boolean }>;
  logs: ReturnType<typeof captureLogs>;
  /** Stops renewing its shard leases, nothing released (a paused process). */
  pauseLeases(): void;
  /** A crash: heartbeats and lease renewals stop, nothing released, its sockets drop without a close frame. */
  crash(): void;
  /** The shard ids held, and the session each assigned one is on. */
  held(): string[];
  sessions(): Map<string, string>;
}

interface Cluster {
  emu: Emulator;
  replicas: Replica[];
  conduitId(): string;
  /** A conduit subscription per shard, whose broadcaster hashes to that shard. */
  subscriptionOf: Map<string, string>;
  /** Message ids appended to the shared journal, in order (duplicates included, if any). */
  journaled: string[];
  /** Redis, for the test's own reads and writes. */
  admin: RedisClient;
  prefix: string;
}

async function redisClient(): Promise<RedisClient> {
  const client: RedisClient = createClient({ url: redis.url, disableOfflineQueue: true });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The shard the emulator routes a broadcaster's events to first (conduits.ts `pick`). */
function shardOf(broadcasterId: string): string {
  return String(createHash('sha256').update(broadcasterId).digest().readUInt32BE(0) % SHARDS);
}

/** Starts the emulator, the Twitch stack, and three replicas r0 (the leader), r1, r2; all closed after the test. */
async function startCluster(t: TestContext, o: { leaseTtlMs: number }): Promise<Cluster> {
  const prefix = `eventsubd:replicas${++prefixes}`;
  const emu = await startEmulator({ clock: systemClock, bucket: { limit: 100_000, windowMs: 60_000 } });
  const stateDir = await mkdtemp(join(tmpdir(), 'eventsubd-replicas-'));
  const agent = new Agent();
  const client = emu.clients[0]!;
  const config = loadConfig({
    TWITCH_CLIENT_ID: client.clientId,
    TWITCH_CLIENT_SECRET: client.clientSecret,
    TWITCH_API_URL: emu.apiUrl,
    TWITCH_AUTH_URL: emu.authUrl,
    EVENTSUBD_STATE_DIR: stateDir,
    EVENTSUBD_TRANSPORT: 'conduit',
  }) as ReturnType<typeof loadConfig> & { clientId: string };
  const stack = buildTwitchStack(config, { clock: systemClock, logger: silentLogger, dispatcher: agent });
  const admin = await redisClient();
  const clients = [admin];
  const journaled: string[] = [];
  const sink: JournalSink = {
    append: async (entry) => {
      journaled.push(entry.message_id);
      return { seq: journaled.length };
    },
  };
  const emuPort = Number(new URL(emu.url).port);
  const replicas: Replica[] = [];
  const relays: Array<{ crash(): void }> = [];
  for (let i = 0; i < 3; i++) {
    const id = `r${i}`;
    const redisOfReplica = await redisClient();
    clients.push(redisOfReplica);
    const relay = await wsRelay(emuPort);
    relays.push(relay);
    const logs = captureLogs();
    const logger = logs.logger.child({ replica: id });
    const patches: Replica['patches'] = [];
    const fenceChecks: Replica['fenceChecks'] = [];
    const api: ConduitApi = {
      listConduits: (opts) => stack.helix.listConduits(opts),
      createConduit: (n, opts) => stack.helix.createConduit(n, opts),
      updateConduit: (cid, n, opts) => stack.helix.updateConduit(cid, n, opts),
      deleteConduit: (cid, opts) => stack.helix.deleteConduit(cid, opts),
      listShards: (cid, filter, opts) => stack.helix.listShards(cid, filter, opts),
      updateShards: (cid, shards, opts) => {
        for (const s of shards) patches.push({ shardId: s.id, sessionId: s.sessionId });
        return stack.helix.updateShards(cid, shards, opts);
      },
    };
    const manager = new ConduitManager({
      api,
      store: new RedisConduitStore({ client: redisOfReplica, prefix }),
      configuredId: undefined,
      shards: SHARDS,
      clock: systemClock,
      logger,
      mayWrite: () => id === 'r0',
      followBackoff: { baseMs: 20, maxMs: 200 },
    });
    const crashed = new AbortController();
    const paused = new AbortController();
    const ownership = (events: ShardOwnershipEvents): ShardOwnership => {
      const registry = new ReplicaRegistry({ client: redisOfReplica, prefix, replicaId: id, ttlMs: o.leaseTtlMs, clock: systemClock, logger });
      const leases = new ShardLeases({
        client: redisOfReplica,
        prefix,
        replicaId: id,
        shardIds: SHARD_IDS,
        ttlMs: o.leaseTtlMs,
        registry,
        clock: systemClock,
        logger,
        onAcquire: events.onAcquire,
        onLose: events.onLose,
      });
      return {
        start: (signal) => {
          registry.start(AbortSignal.any([signal, crashed.signal]));
          leases.start(AbortSignal.any([signal, crashed.signal, paused.signal]));
        },
        held: () => leases.held(),
        owns: async (shardId) => {
          const owned = await leases.owns(shardId);
          fenceChecks.push({ shardId, owned });
          return owned;
        },
        release: (shardId) => leases.release(shardId),
        // Leaving the registry with the leases lets the survivors count this replica out at once (a larger share each).
        releaseAll: async () => {
          await leases.releaseAll();
          await registry.close();
        },
        close: async () => {
          await leases.close();
          await registry.close();
        },
      };
    };
    const runtime = new ConduitRuntime({
      conduits: manager,
      shards: SHARDS,
      wsUrl: relay.url,
      intake: new Intake({ journal: sink, dedup: new Dedup({ clock: systemClock }), clock: systemClock }),
      clock: systemClock,
      logger,
      ownership,
      shardOptions: { welcomeTimeoutMs: 2_000, backoff: { baseMs: 20, maxMs: 200 } },
      backoff: { baseMs: 20, maxMs: 200 },
      handoverMs: 10_000,
      handoverPollMs: 50,
      followEveryMs: 200,
    });
    replicas.push({
      id,
      runtime,
      manager,
      patches,
      fenceChecks,
      logs,
      pauseLeases: () => paused.abort(),
      crash: () => {
        crashed.abort();
        relay.crash();
      },
      held: () => runtime.status().shards.map((s) => s.id),
      sessions: () => new Map(runtime.status().shards.filter((s) => s.state === 'assigned').map((s) => [s.id, s.session_id!])),
    });
  }
  t.after(async () => {
    // The emulator first: its sessions end, so no replica waits out a handover deadline while closing.
    await emu.close();
    await Promise.all(replicas.map((r) => r.runtime.close()));
    for (const relay of relays) relay.crash();
    for (const client of clients) client.destroy();
    await stack.close();
    await agent.close();
    await rm(stateDir, { recursive: true, force: true });
  });
  // Started together: the followers wait for the leader to record the conduit.
  const ids = await Promise.all(replicas.map((r) => r.runtime.start()));
  assert.equal(new Set(ids).size, 1, `the three replicas use one conduit: ${ids.join(', ')}`);
  const conduitId = ids[0]!;
  // One subscription per shard, on a broadcaster hashing to it, so that the test can aim a message at a shard.
  const subscriptionOf = new Map<string, string>();
  for (let b = 1000; subscriptionOf.size < SHARDS; b++) {
    const shard = shardOf(String(b));
    if (subscriptionOf.has(shard)) continue;
    const created = await stack.helix.create({
      type: 'stream.online',
      version: '1',
      condition: { broadcaster_user_id: String(b) },
      transport: { method: 'conduit', conduit_id: conduitId },
    });
    subscriptionOf.set(shard, created.subscription.id);
  }
  return { emu, replicas, conduitId: () => conduitId, subscriptionOf, journaled, admin, prefix };
}

interface EmulatedShard {
  id: string;
  status: string;
  transport?: { session_id?: string };
}

/**
 * Whether every shard of the conduit is enabled at the emulator on a connected session, each its own, and each
 * the session of the one replica among `replicas` that holds that shard.
 */
function allAssigned(c: Cluster, replicas: readonly Replica[]): boolean {
  const conduit = c.emu.conduits().find((x) => x.id === c.conduitId());
  if (!conduit || conduit.shard_count !== SHARDS) return false;
  const connected = new Set(c.emu.wsSessions().filter((s) => s.status === 'connected').map((s) => s.id));
  const ours = new Map<string, string>();
  for (const r of replicas) for (const [shard, session] of r.sessions()) ours.set(shard, session);
  const seen = new Set<string>();
  for (const shard of conduit.shards as EmulatedShard[]) {
    const session = shard.transport?.session_id;
    if (shard.status !== 'enabled' || !session || !connected.has(session) || ours.get(shard.id) !== session || seen.has(session)) return false;
    seen.add(session);
  }
  return seen.size === SHARDS;
}

/** One notification aimed at each shard; returns what the emulator did with each, and the shard it was aimed at. */
function sendRound(c: Cluster): Array<SentMessage & { aimed: string }> {
  return SHARD_IDS.flatMap((shard) => c.emu.sendEvents(c.subscriptionOf.get(shard)!).map((m) => ({ ...m, aimed: shard })));
}

/** Waits until every message id in `sent` is journaled, then asserts each is there exactly once. */
async function assertJournaledOnce(c: Cluster, sent: readonly SentMessage[]): Promise<void> {
  const ids = sent.map((m) => m.message_id);
  await untilTurn(() => { const have = new Set(c.journaled); return ids.every((id) => have.has(id)); }, `${ids.length} messages journaled`, 10_000);
  const counts = new Map<string, number>();
  for (const id of c.journaled) counts.set(id, (counts.get(id) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'no message journaled twice');
  assert.equal(c.journaled.length, counts.size);
}

test('six shards over three replicas: two each on its own session; a crashed replica\'s shards are assigned again within the lease TTL + 10 s', async (t) => {
  const ttlMs = 1_000;
  const c = await startCluster(t, { leaseTtlMs: ttlMs });
  const [r0, r1, r2] = c.replicas as [Replica, Replica, Replica];
  await untilTurn(() => c.replicas.every((r) => r.held().length === 2) && allAssigned(c, c.replicas), 'two shards per replica, all six assigned', 15_000);
  assert.deepEqual(c.replicas.flatMap((r) => r.held()).sort(), SHARD_IDS, 'each shard held by one replica');
  for (const r of c.replicas) assert.equal(r.runtime.statusLine(), 'conduit 2/2 shards assigned, 2 of 6 held');
  assert.deepEqual(r1.runtime.status().shards_held, r1.held());

  const before = sendRound(c);
  assert.deepEqual(before.filter((m) => m.dropped), [], 'every shard enabled: nothing dropped');
  await assertJournaledOnce(c, before);

  const patchesBefore = r2.patches.length;
  const crashedAt = performance.now();
  r2.crash();
  await untilTurn(() => allAssigned(c, [r0, r1]), 'the six shards assigned again to the two survivors', ttlMs + 10_000);
  const tookMs = performance.now() - crashedAt;
  assert.ok(tookMs < ttlMs + 10_000, `all shards assigned again in ${Math.round(tookMs)} ms`);
  assert.deepEqual([r0.held().length, r1.held().length], [3, 3], 'the survivors share the six');
  assert.equal(r2.patches.length, patchesBefore, 'the crashed replica PATCHed nothing more');

  const afterTakeover = sendRound(c);
  assert.deepEqual(afterTakeover.filter((m) => m.dropped), []);
  await assertJournaledOnce(c, [...before, ...afterTakeover]);
  t.diagnostic(`takeover after a crash: ${Math.round(tookMs)} ms (lease TTL ${ttlMs} ms)`);
});

test('a replica that stops gracefully hands its shards over: no message sent meanwhile is dropped, each is journaled once', async (t) => {
  const c = await startCluster(t, { leaseTtlMs: 1_000 });
  const [r0, r1, r2] = c.replicas as [Replica, Replica, Replica];
  await untilTurn(() => c.replicas.every((r) => r.held().length === 2) && allAssigned(c, c.replicas), 'two shards per replica, all six assigned', 15_000);
  const handedOver = r1.held();
  const droppedBefore = c.emu.stats.conduitDropped;
  const logsBefore = r1.logs.lines.length;

  const sent: Array<SentMessage & { aimed: string }> = [];
  let stopping = false;
  const sender = (async () => {
    // A round to every shard on each turn of the event loop, until a few rounds after the close returned.
    for (let roundsAfterClose = 0; roundsAfterClose < 20; ) {
      sent.push(...sendRound(c));
      if (stopping) roundsAfterClose++;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  })();
  await untilTurn(() => sent.length >= 60, 'messages flowing before the stop');
  const closing = performance.now();
  await r1.runtime.close();
  const closedAt = performance.now() - closing;
  stopping = true;
  await sender;

  assert.deepEqual(sent.filter((m) => m.dropped).length, 0, 'the emulator dropped nothing during the handover');
  assert.equal(c.emu.stats.conduitDropped, droppedBefore);
  // Not even retried on a neighbour: a shard handed over never left `enabled` (a neighbour may be handed over too).
  assert.deepEqual(sent.filter((m) => m.shard !== m.aimed).length, 0, 'every message went to the shard it was aimed at');
  const toHandedOver = sent.filter((m) => handedOver.includes(m.aimed));
  assert.ok(toHandedOver.length > 0, 'messages were aimed at the shards handed over');
  await assertJournaledOnce(c, sent);
  assert.ok(allAssigned(c, [r0, r2]), 'the survivors hold every shard');
  const outcomes = r1.logs.records().slice(logsBefore).filter((l) => l.msg === 'Handed a conduit shard over: closing its WebSocket').map((l) => [l.shard, l.outcome]);
  assert.deepEqual(
    outcomes.sort(),
    handedOver.map((s) => [s, 'another replica assigned it']).sort(),
    'each socket closed only once a survivor had assigned its shard',
  );
  t.diagnostic(`graceful handover of shards ${handedOver.join(', ')}: ${Math.round(closedAt)} ms, ${sent.length} messages sent meanwhile`);
});

test('a replica whose shard lease was taken over does not PATCH that shard again (fencing)', async (t) => {
  // A long TTL: the paused replica still trusts its lease locally when its shard's new session asks to be assigned.
  const c = await startCluster(t, { leaseTtlMs: 5_000 });
  const r1 = c.replicas[1]!;
  await untilTurn(() => c.replicas.every((r) => r.held().length === 2) && allAssigned(c, c.replicas), 'two shards per replica, all six assigned', 15_000);
  const [shard] = r1.held() as [string];
  const session = r1.sessions().get(shard)!;

  r1.pauseLeases();
  // What another replica does once the lease has expired: it takes the key, with a newer fence.
  await c.admin.set(redisKey(c.prefix, `shard:${shard}`), 'r9:999999', { PX: 60_000 });
  const patched = r1.patches.filter((p) => p.shardId === shard).length;
  // Twitch moves the session: the shard's new socket gets a new session id, which would need a PATCH.
  c.emu.reconnectWs(session, { graceMs: 60_000, newSessionId: true });
  await untilTurn(() => r1.fenceChecks.some((f) => f.shardId === shard && !f.owned), 'the fencing check refusing the shard');
  await untilTurn(() => !r1.held().includes(shard), 'the shard given up');
  assert.equal(r1.patches.filter((p) => p.shardId === shard).length, patched, 'no PATCH of the shard after its lease was taken over');
  assert.ok(
    r1.logs.records().some((l) => l.msg === 'No longer holding a conduit shard: handing it over' && l.shard === shard),
    'the replica said it gave the shard up',
  );
});

test('RedisConduitStore keeps conduit.json\'s JSON under PREFIX:conduit; a key holding something else is refused, never guessed over', async () => {
  const client = await redisClient();
  try {
    const prefix = `eventsubd:replicas${++prefixes}:`;
    const store = new RedisConduitStore({ client, prefix });
    assert.equal(store.where, `Redis key ${prefix}conduit`, 'a prefix ending in ":" gets no second one');
    assert.equal(await store.read(), undefined);
    const record = { conduit_id: 'c-1', created_at: '2026-12-05T12:00:00.000Z', previous: ['c-0'] };
    await store.write(record);
    assert.equal(await client.get(`${prefix}conduit`), `${JSON.stringify(record, null, 2)}\n`, 'the file\'s exact text');
    assert.deepEqual(await store.read(), record);
    await client.set(`${prefix}conduit`, '{"conduit":');
    await assert.rejects(store.read(), (err: AppError) => err.code === 'STATE_DIR_UNUSABLE' && /not valid JSON/.test(err.message));
    await client.set(`${prefix}conduit`, '{"id":"c-1"}');
    await assert.rejects(store.read(), (err: AppError) => err.code === 'STATE_DIR_UNUSABLE' && /not a conduit record/.test(err.message));
  } finally {
    client.destroy();
  }
  const closed = createClient({ url: redis.url, disableOfflineQueue: true });
  await assert.rejects(new RedisConduitStore({ client: closed, prefix: 'p' }).read(), (err: AppError) => err.code === 'REDIS_UNAVAILABLE');
});
