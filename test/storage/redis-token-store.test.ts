/**
 * RedisTokenStore against a real redis-server: the record has token.json's shape, the lock excludes across
 * clients and outlives neither its holder's crash nor its TTL while renewed, and the watch sees other processes'
 * changes (pub/sub, the fallback poll, and a reconnection).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test, type TestContext } from 'node:test';
import { createClient } from 'redis';
import { TokenCache } from '../../src/auth/token-cache.js';
import { systemClock } from '../../src/lib/clock.js';
import { RedisTokenStore, type RedisClient, type RedisTokenStoreOptions } from '../../src/storage/redis-token-store.js';
import { captureLogs, CLIENT_ID, FakeOAuth, OTHER_CLIENT_ID, tempDir } from '../auth/fakes.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { redisClient, startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { deferred, untilTurn } from '../helpers/wait.js';

let server: RedisServerHandle;
before(async () => {
  server = await startRedisServer();
});
after(() => server.dispose());

let prefixes = 0;
/** A prefix of its own per test, so tests on the shared server never see each other's keys. */
const freshPrefix = (): string => `eventsubd:test${++prefixes}`;

function connect(t: TestContext, url = server.url): Promise<RedisClient> {
  return redisClient(t, url);
}

async function store(t: TestContext, options: Partial<RedisTokenStoreOptions> & { prefix: string }) {
  const logs = captureLogs();
  const client = options.client ?? (await connect(t));
  const s = new RedisTokenStore({ clientId: CLIENT_ID, clock: systemClock, logger: logs.logger, ...options, client });
  return { store: s, client, logs };
}

/** `promise`, or a failure naming `what` after a guard timeout: a watch that never fires fails the test. */
async function guarded<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('RedisTokenStore.write() stores the JSON of token.json, field for field, and read() returns it', async (t) => {
  const prefix = freshPrefix();
  const { store: s, client } = await store(t, { prefix });
  const clock = new FakeClock();
  const oauth = new FakeOAuth(clock);
  const cache = new TokenCache({ stateDir: await tempDir(t), clock });
  for (const [value, expiresIn] of [['redis-round-trip-token-1', 5_011_271], ['redis-never-expiring-token', 0]] as const) {
    const token = oauth.tokenFor(value, CLIENT_ID, expiresIn);
    await s.write(token);
    await cache.write(token);
    const record = JSON.parse((await client.get(`${prefix}:token`))!) as Record<string, unknown>;
    assert.deepEqual(record, JSON.parse(await readFile(cache.path, 'utf8')));
    assert.equal(record.expires_at, expiresIn === 0 ? null : new Date(clock.now() + expiresIn * 1000).toISOString());
    assert.deepEqual(await s.read(), await cache.read());
  }
  assert.equal((await s.read())?.expiresAt, Number.MAX_SAFE_INTEGER);
  assert.equal(s.key, `${prefix}:token`);
});

test('RedisTokenStore.remove() deletes the record; read() of a missing record is undefined without a log line', async (t) => {
  const { store: s, logs } = await store(t, { prefix: freshPrefix() + ':' });
  await s.remove();
  assert.equal(await s.read(), undefined);
  await s.write(new FakeOAuth(new FakeClock()).tokenFor('redis-token-to-remove'));
  assert.ok(await s.read());
  await s.remove();
  assert.equal(await s.read(), undefined);
  assert.deepEqual(logs.lines, []);
});

for (const [label, body, msg] of [
  ['not JSON', '{"access_token":"secret-partial-redis-token', 'Ignoring the token record in Redis: it is not valid JSON'],
  ['the wrong shape', '{"access_token":"secret-shape-redis-token","client_id":"x","obtained_at":"yesterday"}', 'Ignoring the token record in Redis: it does not have the expected shape'],
  [
    'minted for another client ID',
    JSON.stringify({ access_token: 'secret-foreign-redis-token', client_id: OTHER_CLIENT_ID, obtained_at: '2026-11-24T10:00:00.000Z', expires_at: null }),
    'Ignoring the token record in Redis: it was minted for another client ID',
  ],
] as const) {
  test(`RedisTokenStore.read() treats a record ${label} as absent, with a warning that never shows the token`, async (t) => {
    const prefix = freshPrefix();
    const { store: s, client, logs } = await store(t, { prefix });
    await client.set(`${prefix}:token`, body);
    assert.equal(await s.read(), undefined);
    const records = logs.records();
    assert.equal(records.length, 1);
    assert.equal(records[0]?.msg, msg);
    assert.equal(records[0]?.key, `${prefix}:token`);
    assert.ok(!logs.lines.join('').includes('secret-'), 'no part of the token is logged');
  });
}

test('RedisTokenStore.read() fails with REDIS_UNAVAILABLE, naming the key, when Redis is gone', async (t) => {
  const prefix = freshPrefix();
  const client = await connect(t);
  const { store: s } = await store(t, { prefix, client });
  client.destroy();
  await assert.rejects(s.read(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'REDIS_UNAVAILABLE');
    assert.match(err.message, new RegExp(`^Cannot read the token record ${prefix}:token from Redis: `));
    return true;
  });
});

test('RedisTokenStore.withLock() excludes a second store on another connection until the first releases', async (t) => {
  const prefix = freshPrefix();
  const a = await store(t, { prefix });
  const b = await store(t, { prefix });
  const events: string[] = [];
  const entered = deferred();
  const gate = deferred();
  const first = a.store.withLock(async () => {
    events.push('a in');
    entered.resolve();
    await gate.promise;
    events.push('a out');
    return 'a';
  });
  await entered.promise;
  const owner = await a.client.get(`${prefix}:token:lock`);
  assert.match(owner ?? '', /^[0-9a-f-]{36}$/);
  const second = b.store.withLock(async () => {
    events.push('b in');
    return (await b.client.get(`${prefix}:token:lock`)) ?? 'no lock';
  });
  // b polls: its lock attempts are visible as failed SET NX calls; wait for a few of them.
  const stats = async () => Number(/calls=(\d+)/.exec((await a.client.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_set:')) ?? '')?.[1] ?? 0);
  const setsBefore = await stats();
  await untilTurn(async () => (await stats()) >= setsBefore + 3, 'b to try the lock three more times');
  assert.deepEqual(events, ['a in'], 'b must wait while a holds the lock');
  gate.resolve();
  const [ra, rb] = await Promise.all([first, second]);
  assert.equal(ra, 'a');
  assert.notEqual(rb, owner, 'b holds a lock of its own');
  assert.match(rb, /^[0-9a-f-]{36}$/);
  assert.deepEqual(events, ['a in', 'a out', 'b in']);
  assert.equal(await a.client.exists(`${prefix}:token:lock`), 0, 'released');
});

test('RedisTokenStore.withLock() releases the lock when the function throws', async (t) => {
  const prefix = freshPrefix();
  const { store: s, client } = await store(t, { prefix });
  await assert.rejects(
    s.withLock(async () => {
      throw new Error('inside');
    }),
    /inside/,
  );
  assert.equal(await client.exists(`${prefix}:token:lock`), 0);
  assert.equal(await s.withLock(async () => 7), 7);
});

test('RedisTokenStore.withLock(): the lock of a holder that crashed expires with its TTL and another takes it', async (t) => {
  const prefix = freshPrefix();
  const crashed = await connect(t);
  const a = await store(t, { prefix, client: crashed, lockTtlMs: 300 });
  const b = await store(t, { prefix, lockWaitMs: 10_000 });
  const entered = deferred();
  const never = deferred();
  t.after(() => never.resolve()); // ends a's renewal loop once the test is over
  void a.store.withLock(async () => {
    entered.resolve();
    await never.promise;
  }).catch(() => undefined);
  await entered.promise;
  const held = await b.client.get(`${prefix}:token:lock`);
  crashed.destroy(); // a's process "dies": no renewal, no release
  const inside = await b.store.withLock(async () => b.client.get(`${prefix}:token:lock`));
  assert.ok(inside && inside !== held, 'b entered holding a lock of its own, not going on without one');
  assert.ok(!b.logs.lines.join('').includes('going on without it'));
});

test('RedisTokenStore.withLock() renews the lock while its holder works past the TTL; a waiter then goes on without it', async (t) => {
  const prefix = freshPrefix();
  const a = await store(t, { prefix, lockTtlMs: 400 });
  const b = await store(t, { prefix, lockWaitMs: 1_600 });
  const entered = deferred();
  const gate = deferred();
  const first = a.store.withLock(async () => {
    entered.resolve();
    await gate.promise;
  });
  await entered.promise;
  const owner = await a.client.get(`${prefix}:token:lock`);
  // b waits four TTLs: only renewals keep a's lock alive that long.
  const inside = await b.store.withLock(async () => a.client.get(`${prefix}:token:lock`));
  assert.equal(inside, owner, 'a still held its lock when b gave up waiting');
  const warn = b.logs.records().find((r) => r.msg === 'Another process has held the token lock too long; going on without it');
  assert.equal(warn?.key, `${prefix}:token:lock`);
  gate.resolve();
  await first;
  assert.equal(await a.client.exists(`${prefix}:token:lock`), 0);
});

test('RedisTokenStore.withLock() never releases a lock that expired and was taken by another process', async (t) => {
  const prefix = freshPrefix();
  // a's clock never moves: it cannot renew, so its lock expires in Redis after 100 ms.
  const a = await store(t, { prefix, lockTtlMs: 100, clock: new FakeClock() });
  const b = await store(t, { prefix, lockWaitMs: 10_000 });
  const aGate = deferred();
  const bEntered = deferred();
  const bGate = deferred();
  const first = a.store.withLock(() => aGate.promise);
  await untilTurn(async () => (await a.client.exists(`${prefix}:token:lock`)) === 1, "a's lock");
  const second = b.store.withLock(async () => {
    bEntered.resolve();
    await bGate.promise;
  });
  await bEntered.promise;
  const bOwner = await b.client.get(`${prefix}:token:lock`);
  aGate.resolve();
  await first;
  assert.equal(await b.client.get(`${prefix}:token:lock`), bOwner, "a's release left b's lock alone");
  bGate.resolve();
  await second;
});

test('RedisTokenStore.withLock() stops waiting with ABORTED when its signal aborts', async (t) => {
  const prefix = freshPrefix();
  const { store: s, client } = await store(t, { prefix, clock: new FakeClock() });
  await client.set(`${prefix}:token:lock`, 'someone-else', { expiration: { type: 'PX', value: 60_000 } });
  const ac = new AbortController();
  const waiting = s.withLock(async () => 'never', ac.signal);
  ac.abort();
  await assert.rejects(waiting, { code: 'ABORTED' });
  assert.equal(await client.get(`${prefix}:token:lock`), 'someone-else');
});

test('RedisTokenStore.watch() calls onChange when another store writes or removes the record, not for its own writes', async (t) => {
  const prefix = freshPrefix();
  const a = await store(t, { prefix });
  const b = await store(t, { prefix });
  const ac = new AbortController();
  t.after(() => ac.abort());
  let changes = 0;
  let onChange = (): void => {};
  a.store.watch(() => {
    changes++;
    onChange();
  }, ac.signal);
  await untilTurn(async () => (await a.client.pubSubNumSub(`${prefix}:token:changed`))[`${prefix}:token:changed`] === 1, 'the subscription');
  const token = new FakeOAuth(new FakeClock()).tokenFor('watched-redis-token');
  const next = (): Promise<void> => new Promise((resolve) => (onChange = resolve));

  let seen = next();
  await a.store.write(token); // its own write: published first, and ignored
  await b.store.write(token);
  await guarded(seen, "onChange for b's write");
  assert.equal(changes, 1);
  seen = next();
  await b.store.remove();
  await guarded(seen, "onChange for b's remove");
  assert.equal(changes, 2);

  ac.abort();
  await untilTurn(async () => (await a.client.pubSubNumSub(`${prefix}:token:changed`))[`${prefix}:token:changed`] === 0, 'the subscriber to close');
});

test('RedisTokenStore.watch() sees a change made without a message through its fallback poll', async (t) => {
  const prefix = freshPrefix();
  const { store: s, client } = await store(t, { prefix, watchPollMs: 20 });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const changed = deferred();
  s.watch(() => changed.resolve(), ac.signal);
  await client.set(`${prefix}:token`, '{"written":"by hand, no PUBLISH"}');
  await guarded(changed.promise, 'the poll to see the change');
});

test('RedisTokenStore.watch() calls onChange after its subscriber reconnects, for messages lost meanwhile', async (t) => {
  const own = await startRedisServer(t);
  const prefix = freshPrefix();
  // The parent never reconnects: the watch's subscriber has a reconnection policy of its own.
  const client: RedisClient = createClient({ url: own.url, disableOfflineQueue: true, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  t.after(() => {
    if (client.isOpen) client.destroy();
  });
  const logs = captureLogs();
  const s = new RedisTokenStore({ client, prefix, clientId: CLIENT_ID, clock: systemClock, logger: logs.logger });
  const ac = new AbortController();
  t.after(() => ac.abort());
  let changes = 0;
  const changed = deferred();
  s.watch(() => {
    changes++;
    changed.resolve();
  }, ac.signal);
  await untilTurn(async () => (await client.pubSubNumSub(`${prefix}:token:changed`))[`${prefix}:token:changed`] === 1, 'the subscription');
  await own.restart();
  await guarded(changed.promise, 'onChange after the reconnection');
  assert.equal(changes, 1);
  assert.ok(logs.records().some((r) => r.msg === 'The token watch lost its Redis connection; reconnecting'));
});

test('RedisTokenStore.reportRejected() reaches watchRejected() on another connection as the fingerprint alone; anything else on the channel is ignored', async (t) => {
  const prefix = freshPrefix();
  const leader = await store(t, { prefix });
  const follower = await store(t, { prefix });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const reports: string[] = [];
  let onReport = (): void => {};
  leader.store.watchRejected((fingerprint) => {
    reports.push(fingerprint);
    onReport();
  }, ac.signal);
  const channel = `${prefix}:token:rejected`;
  await untilTurn(async () => (await leader.client.pubSubNumSub(channel))[channel] === 1, 'the subscription');
  const seen = new Promise<void>((resolve) => (onReport = resolve));
  await follower.client.publish(channel, 'not a fingerprint'); // a stray or hostile message: never handed on
  await follower.client.publish(channel, 'sha256:0123456789'); // too long
  await follower.store.reportRejected('sha256:0badc0de');
  await guarded(seen, 'the report');
  assert.deepEqual(reports, ['sha256:0badc0de']);

  ac.abort();
  await untilTurn(async () => (await leader.client.pubSubNumSub(channel))[channel] === 0, 'the subscriber to close');
  follower.client.destroy();
  await assert.rejects(follower.store.reportRejected('sha256:0badc0de'), { code: 'REDIS_UNAVAILABLE', message: /token:rejected/ });
});
