import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createClient } from 'redis';
import { systemClock } from '../../src/lib/clock.js';
import type { Logger } from '../../src/lib/logger.js';
import { LeaderElection, Lease, leaseOwner, safetyMarginMs, type RedisClient, type Role } from '../../src/storage/redis-lease.js';
import { redisClient, startRedisServer } from '../helpers/redis-server.js';
import { untilEmitted } from '../helpers/wait.js';

const TTL = 1000;
const RENEW = 250;
/** Command round trips and timer lateness on a busy test machine. */
const SLACK = 250;

function connect(t: TestContext, url: string): Promise<RedisClient> {
  return redisClient(t, url);
}

interface LogLine {
  level: string;
  msg: string;
}

/** A logger that keeps its lines and emits 'log' on `events` after each. */
function captureLogger(lines: LogLine[], events = new EventEmitter()): Logger {
  const log = (level: string) => (msg: string) => {
    lines.push({ level, msg });
    events.emit('log');
  };
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => logger };
  return logger;
}

interface Change {
  id: string;
  role: Role;
  fence: number | undefined;
  at: number;
}

/**
 * Elections that report every change of role on one emitter, and check on each 'leader' that no other election of
 * the group reports 'leader' at that instant (never two leaders in overlapping local-deadline windows).
 */
function group(t: TestContext) {
  const events = new EventEmitter();
  const changes: Change[] = [];
  const members = new Map<string, LeaderElection>();
  const overlaps: string[] = [];
  const add = (id: string, client: RedisClient, options: { ttlMs?: number; renewEveryMs?: number; logs?: LogLine[]; logEvents?: EventEmitter } = {}) => {
    const election = new LeaderElection({
      client,
      prefix: 'test:',
      replicaId: id,
      ttlMs: options.ttlMs ?? TTL,
      renewEveryMs: options.renewEveryMs ?? RENEW,
      clock: systemClock,
      logger: captureLogger(options.logs ?? [], options.logEvents),
      onChange: (role, fence) => {
        if (role === 'leader') {
          for (const [other, e] of members) if (other !== id && e.role === 'leader') overlaps.push(`${id} led while ${other} did`);
        }
        changes.push({ id, role, fence, at: performance.now() });
        events.emit('change');
      },
    });
    members.set(id, election);
    const stop = new AbortController();
    t.after(async () => {
      stop.abort();
      await election.close();
    });
    election.start(stop.signal);
    return { election, stop };
  };
  const leaders = () => [...members].filter(([, e]) => e.role === 'leader').map(([id]) => id);
  const until = (cond: () => boolean, what: string) => untilEmitted(events, 'change', cond, what);
  return { add, changes, leaders, until, overlaps, members };
}

/** A TCP proxy to Redis whose traffic can be held (both ways): the commands of a client behind it hang. */
async function pausableProxy(t: TestContext, port: number) {
  let paused = false;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (paused) held.push(() => to.write(chunk));
      else to.write(chunk);
    });
  };
  const server = createServer((inbound) => {
    const outbound = netConnect(port, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    forward(inbound, outbound);
    forward(outbound, inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port: proxyPort } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${proxyPort}`,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      for (const send of held.splice(0)) send();
    },
  };
}

test('Lease: acquire() is exclusive, fences grow with every acquisition, renew() and release() are compare-and-set', async (t) => {
  const server = await startRedisServer(t);
  const client = await connect(t, server.url);
  const lease = (owner: string) => new Lease({ client, key: 'test:lease', owner, ttlMs: 5_000, clock: systemClock });
  const a = lease('a');
  const b = lease('b');

  assert.equal(await a.acquire(), true);
  assert.equal(a.held, true);
  const first = a.fence!;
  assert.ok(first >= 1);
  assert.equal(await client.get('test:lease'), `a:${first}`);
  assert.equal(await b.acquire(), false, 'a held lease is not taken');
  assert.equal(b.held, false);
  assert.equal(await b.renew(), false, 'nothing to renew without an acquisition');
  assert.equal(await a.renew(), true);

  await a.release();
  assert.equal(a.held, false);
  assert.equal(await client.exists('test:lease'), 0);
  assert.equal(await b.acquire(), true);
  assert.ok(b.fence! > first, 'the next holder gets a larger fence');
  assert.equal(leaseOwner(await client.get('test:lease')), 'b');

  // a's old value no longer matches: neither a renewal nor a release by a touches b's lease.
  const stale = lease('a');
  assert.equal(await stale.acquire(), false);
  await a.release();
  assert.equal(leaseOwner(await client.get('test:lease')), 'b');

  // An owner whose value Redis still holds (an answer lost to a timeout) takes it back, in a new term.
  const again = lease('b');
  assert.equal(await again.acquire(), true);
  assert.ok(again.fence! > b.fence!);
  assert.equal(await b.renew(), false, 'the older term of the same owner lost its compare-and-set');
  assert.equal(b.held, false);
  assert.equal(await again.renew(), true);
  // An owner named like a prefix of another is another owner.
  assert.equal(await lease('b:1').acquire(), false);
  assert.equal(leaseOwner('b:1:17'), 'b:1');
});

test('Lease: held ends at the local deadline (send time + TTL − margin) even while Redis still holds the key', async (t) => {
  const server = await startRedisServer(t);
  const client = await connect(t, server.url);
  let now = 1_000;
  const lease = new Lease({ client, key: 'test:lease', owner: 'a', ttlMs: 10_000, clock: systemClock, monotonicNow: () => now });
  assert.equal(await lease.acquire(), true);
  assert.equal(lease.deadline, 1_000 + 10_000 - safetyMarginMs(10_000));
  now = lease.deadline - 1;
  assert.equal(lease.held, true);
  now = lease.deadline;
  assert.equal(lease.held, false, 'a resumed process sees it at once, before any timer runs');
  assert.equal(lease.fence, undefined);
  assert.ok((await client.pTTL('test:lease')) > 5_000, 'Redis still holds it: the holder stopped trusting it first');
  assert.equal(await lease.renew(), true, 'a renewal Redis confirms makes it held again');
  assert.equal(lease.deadline, now + 10_000 - safetyMarginMs(10_000));
});

test('LeaderElection: one leader among three, and all agree on who it is', async (t) => {
  const server = await startRedisServer(t);
  const g = group(t);
  for (const id of ['r1', 'r2', 'r3']) g.add(id, await connect(t, server.url));
  await g.until(() => g.leaders().length === 1, 'a leader');
  const [leader] = g.leaders();
  const elections = [...g.members.values()];
  for (const e of elections) assert.equal(await e.leader(), leader);
  assert.equal(elections.filter((e) => e.fence !== undefined).length, 1, 'only the leader has a fence');
  assert.deepEqual(g.overlaps, []);
});

test('LeaderElection: a leader killed without release is replaced within TTL + one renewal; fences grow', async (t) => {
  const server = await startRedisServer(t);
  const g = group(t);
  const clients = new Map<string, RedisClient>();
  const stops = new Map<string, AbortController>();
  for (const id of ['r1', 'r2', 'r3']) {
    const client = await connect(t, server.url);
    clients.set(id, client);
    stops.set(id, g.add(id, client).stop);
  }
  await g.until(() => g.leaders().length === 1, 'a leader');
  const dead = g.leaders()[0]!;
  const oldFence = g.members.get(dead)!.fence!;

  const killedAt = performance.now();
  stops.get(dead)!.abort();
  clients.get(dead)!.destroy();
  await g.until(() => g.changes.some((c) => c.role === 'leader' && c.id !== dead), 'a new leader');
  const next = g.changes.find((c) => c.role === 'leader' && c.id !== dead)!;
  const took = next.at - killedAt;
  assert.ok(took <= TTL + RENEW + SLACK, `a new leader within TTL + one renewal: took ${Math.round(took)} ms`);
  assert.ok(took >= TTL - RENEW - SLACK, `not before the dead leader's lease could expire: took ${Math.round(took)} ms`);
  assert.ok(next.fence! > oldFence);
  const stepDown = g.changes.find((c) => c.id === dead && c.role === 'follower');
  assert.ok(stepDown && stepDown.at <= next.at, 'the dead leader\'s own deadline timer stepped it down first');
  assert.deepEqual(g.overlaps, []);
});

test('LeaderElection: close() hands over at once, well under the TTL', async (t) => {
  const server = await startRedisServer(t);
  const g = group(t);
  for (const id of ['r1', 'r2']) g.add(id, await connect(t, server.url), { ttlMs: 5_000, renewEveryMs: RENEW });
  await g.until(() => g.leaders().length === 1, 'a leader');
  const leaving = g.members.get(g.leaders()[0]!)!;
  const closedAt = performance.now();
  await leaving.close();
  assert.equal(leaving.role, 'follower');
  await g.until(() => g.leaders().length === 1, 'the other replica leading');
  const took = performance.now() - closedAt;
  assert.ok(took <= RENEW + SLACK, `handed over within one renewal of the other, not the 5 s TTL: took ${Math.round(took)} ms`);
  await leaving.close();
  assert.deepEqual(g.overlaps, []);
});

test('LeaderElection: a leader whose Redis hangs steps down at its local deadline, before the next tick and before anyone else leads', async (t) => {
  const server = await startRedisServer(t);
  const proxy = await pausableProxy(t, server.port);
  const g = group(t);
  // The renewal interval is close to the local deadline (TTL 1000 − margin 200 = 800 ms): a step-down that waited
  // for the next tick and its 700 ms command timeout would come after 1400 ms, past Redis's own expiry.
  const timing = { ttlMs: 1_000, renewEveryMs: 700 };
  g.add('hung', await connect(t, proxy.url), timing);
  await g.until(() => g.leaders()[0] === 'hung', 'the replica behind the proxy leading');
  const ledAt = performance.now();
  proxy.pause();
  g.add('healthy', await connect(t, server.url), timing);

  await g.until(() => g.leaders()[0] === 'healthy', 'the healthy replica leading');
  const down = g.changes.find((c) => c.id === 'hung' && c.role === 'follower')!;
  const up = g.changes.find((c) => c.id === 'healthy' && c.role === 'leader')!;
  assert.ok(down.at <= up.at, 'the hung leader reported follower before the other led');
  assert.ok(down.at - ledAt <= 1_000 - safetyMarginMs(1_000) + SLACK, `stepped down at its deadline: after ${Math.round(down.at - ledAt)} ms`);
  assert.deepEqual(g.overlaps, []);

  // Its queued renewals reach Redis once the link comes back: compare-and-set refuses them.
  proxy.resume();
  const hungClient = await connect(t, proxy.url);
  assert.equal(await hungClient.ping(), 'PONG');
  const hung = g.members.get('hung')!;
  assert.equal(await hung.leader(), 'healthy');
  assert.equal(hung.role, 'follower');
  assert.ok(up.fence! > g.changes.find((c) => c.id === 'hung' && c.role === 'leader')!.fence!);
});

test('LeaderElection: Redis killed and restarted: the leader steps down, logs the outage once, and leads again in a new term', async (t) => {
  const server = await startRedisServer(t);
  const client: RedisClient = createClient({ url: server.url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 50 } });
  client.on('error', () => {});
  await client.connect();
  t.after(() => {
    if (client.isOpen) client.destroy();
  });
  const logs: LogLine[] = [];
  const logEvents = new EventEmitter();
  const g = group(t);
  const election = g.add('only', client, { logs, logEvents }).election;
  await g.until(() => election.role === 'leader', 'leading');
  const firstFence = election.fence!;

  await server.kill9();
  await g.until(() => g.changes.at(-1)?.role === 'follower', 'stepping down');
  await untilEmitted(logEvents, 'log', () => logs.filter((l) => l.msg.startsWith('Redis is still unreachable')).length >= 3, 'three failed ticks');
  assert.equal(logs.filter((l) => l.level === 'warn' && l.msg.startsWith('Redis is unreachable')).length, 1, 'one warning per outage');

  await server.restart();
  await g.until(() => election.role === 'leader', 'leading again');
  assert.ok(election.fence! > firstFence, 'a new term, with a fence the AOF kept growing');
  assert.equal(await election.leader(), 'only');
  assert.equal(logs.filter((l) => l.msg.startsWith('Redis answers again')).length, 1);
});

test('LeaderElection: an onChange listener that throws is logged and changes nothing', async (t) => {
  const server = await startRedisServer(t);
  const logs: LogLine[] = [];
  const events = new EventEmitter();
  const election = new LeaderElection({
    client: await connect(t, server.url),
    prefix: 'test',
    replicaId: 'r1',
    ttlMs: TTL,
    renewEveryMs: RENEW,
    clock: systemClock,
    logger: captureLogger(logs, events),
    onChange: () => {
      throw new Error('listener bug');
    },
  });
  const stop = new AbortController();
  t.after(async () => {
    stop.abort();
    await election.close();
  });
  election.start(stop.signal);
  await untilEmitted(events, 'log', () => logs.some((l) => l.level === 'error'), 'the listener error logged');
  assert.equal(election.role, 'leader');
  assert.deepEqual(logs.filter((l) => l.level !== 'info').map((l) => l.msg), ['The onChange listener threw']);
  assert.throws(() => new LeaderElection({ client: {} as RedisClient, prefix: 'p', replicaId: 'x', ttlMs: 1_000, renewEveryMs: 900, clock: systemClock, logger: captureLogger([]) }), /'renewEveryMs' must be positive and below the TTL minus its safety margin \(800 ms\): current value is 900/);
});

/**
 * A child process running one election (the source modules, through tsx) that prints each change of role and, every
 * 20 ms, the role it would act on: what a SIGSTOPped leader does first when it resumes.
 */
function electionChild(t: TestContext, url: string) {
  const module = (path: string) => JSON.stringify(pathToFileURL(join(process.cwd(), path)).href);
  const code = `import { createClient } from 'redis';
import { LeaderElection } from ${module('src/storage/redis-lease.ts')};
import { systemClock } from ${module('src/lib/clock.ts')};
import { silentLogger } from ${module('src/lib/logger.ts')};
const out = (o) => process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\\n');
const client = createClient({ url: process.argv[1], disableOfflineQueue: true });
client.on('error', () => {});
await client.connect();
const election = new LeaderElection({ client, prefix: 'test', replicaId: 'child', ttlMs: ${TTL}, renewEveryMs: ${RENEW},
  clock: systemClock, logger: silentLogger, onChange: (role, fence) => out({ change: role, fence }) });
election.start(new AbortController().signal);
setInterval(() => out({ role: election.role }), 20);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    child.kill('SIGKILL');
  });
  const lines: Array<{ t: number; change?: Role; role?: Role; fence?: number }> = [];
  const events = new EventEmitter();
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(JSON.parse(line));
    events.emit('line');
  });
  return { pid: child.pid!, lines, until: (cond: () => boolean, what: string) => untilEmitted(events, 'line', cond, what) };
}

test('LeaderElection: a leader SIGSTOPped past its lease is replaced, and when it resumes it never acts as leader', async (t) => {
  const server = await startRedisServer(t);
  const child = electionChild(t, server.url);
  await child.until(() => child.lines.some((l) => l.change === 'leader'), 'the child leading');
  const stoppedAt = Date.now();
  process.kill(child.pid, 'SIGSTOP');

  const g = group(t);
  const healthy = g.add('healthy', await connect(t, server.url)).election;
  await g.until(() => healthy.role === 'leader', 'the healthy replica leading');
  const tookOver = Date.now();
  assert.ok(tookOver - stoppedAt <= TTL + RENEW + SLACK, `took over within TTL + one renewal: ${tookOver - stoppedAt} ms`);

  const resumedAt = Date.now();
  process.kill(child.pid, 'SIGCONT');
  await child.until(() => child.lines.some((l) => l.t >= resumedAt && l.change === 'follower'), 'the child stepping down');
  await child.until(() => child.lines.filter((l) => l.t >= resumedAt).length >= 10, 'the child working on for a while');
  const after = child.lines.filter((l) => l.t >= resumedAt);
  assert.deepEqual(after.filter((l) => l.role === 'leader' || l.change === 'leader'), [], 'not one act as leader after resuming');
  assert.equal(after[0]!.role ?? after[0]!.change, 'follower', 'the first thing it saw was that its deadline had passed');
  assert.equal(healthy.role, 'leader');
  assert.equal(await healthy.leader(), 'healthy');
});
