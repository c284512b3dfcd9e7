import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { systemClock } from '../../src/lib/clock.js';
import { AppError, ConfigError } from '../../src/lib/errors.js';
import { createJsonLogger, type Logger } from '../../src/lib/logger.js';
import { parseRedisUrl, redactRedisUrl, RedisConnection, type RedisConnectionOptions } from '../../src/storage/redis-connection.js';
import { redisClient, startRedisServer } from '../helpers/redis-server.js';
import type { RedisClient } from '../../src/storage/types.js';

const PASSWORD = 'correct-horse-battery';

/** A logger whose lines are kept for assertions. */
function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createJsonLogger({ sink: { write: (l: string) => lines.push(l) }, level: 'debug' }), lines };
}

/** A connection closed after the test. */
function connection(t: TestContext, o: Partial<RedisConnectionOptions> & { url: string }): RedisConnection {
  const c = new RedisConnection({ durability: { kind: 'fsync' }, clock: systemClock, logger: captureLogger().logger, ...o });
  t.after(() => c.close());
  return c;
}

/** Resolves with the next value `onReadyChange` reports that equals `want`; rejects after `ms`. */
function readyBecomes(c: RedisConnection, want: boolean, ms = 10_000): Promise<void> {
  if (c.ready === want) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      off();
      reject(new Error(`ready did not become ${want} within ${ms} ms`));
    }, ms);
    const off = c.onReadyChange((ready) => {
      if (ready !== want) return;
      clearTimeout(guard);
      off();
      resolve();
    });
  });
}

/** An admin client on `url`, closed after the test. */
function admin(t: TestContext, url: string): Promise<RedisClient> {
  return redisClient(t, url, { reconnect: false });
}

test('parseRedisUrl() accepts redis:// and rediss:// and refuses anything else without echoing a password', () => {
  assert.equal(parseRedisUrl('redis://127.0.0.1:6379').port, '6379');
  assert.equal(parseRedisUrl('rediss://user:pw@redis.example.com/2').protocol, 'rediss:');
  for (const raw of ['http://u:hunter2-secret@host:1', 'hunter2-secret', 'redis://u:hunter2-secret@host/db', 'unix:///tmp/hunter2-secret']) {
    assert.throws(
      () => parseRedisUrl(raw),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.code, 'CONFIG_INVALID');
        assert.equal(err.setting, 'EVENTSUBD_REDIS_URL');
        assert.match(err.message, /EVENTSUBD_REDIS_URL/);
        assert.doesNotMatch(err.message, /hunter2-secret/);
        return true;
      },
      raw,
    );
  }
});

test('redactRedisUrl() replaces the password with ***', () => {
  assert.equal(redactRedisUrl('redis://default:s3cret-pass@127.0.0.1:6379/1'), 'redis://default:***@127.0.0.1:6379/1');
  assert.equal(redactRedisUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
  assert.equal(redactRedisUrl('not a url s3cret'), '(invalid URL)');
});

test('RedisConnection.start() on a durable Redis is ready, pipelines on client, duplicates, and close() is idempotent', async (t) => {
  const server = await startRedisServer(t);
  const c = connection(t, { url: server.url });
  await c.start();
  assert.equal(c.ready, true);
  const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => c.client.incr(`k${i % 3}`)));
  assert.equal(replies.length, 100);
  const dup = await c.duplicate();
  assert.notEqual(await dup.clientId(), await c.client.clientId());
  assert.equal(await c.waitReady(10), true);
  const changes: boolean[] = [];
  c.onReadyChange((r) => changes.push(r));
  await c.close();
  await c.close();
  assert.equal(c.ready, false);
  assert.deepEqual(changes, [false]);
  assert.equal(dup.isOpen, false, 'close() closes the duplicates too');
});

test('RedisConnection fails commands fast while Redis is down (no offline queue)', async (t) => {
  const server = await startRedisServer(t);
  const c = connection(t, { url: server.url });
  await c.start();
  await server.stop();
  await readyBecomes(c, false);
  const t0 = performance.now();
  await assert.rejects(c.client.ping());
  assert.ok(performance.now() - t0 < 1000, 'rejected at once, not queued');
  await server.restart();
  await readyBecomes(c, true);
  assert.equal(await c.client.ping(), 'PONG');
});

test('durability fsync: appendfsync everysec rejects start() with REDIS_NOT_DURABLE (exit 78) naming what to change', async (t) => {
  const server = await startRedisServer(t, { appendfsync: 'everysec' });
  const c = connection(t, { url: server.url });
  await assert.rejects(c.start(), (err: unknown) => {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'REDIS_NOT_DURABLE');
    assert.equal(err.exitCode, 78);
    assert.match(err.message, /appendfsync is everysec/);
    assert.match(err.message, /appendonly yes/);
    assert.match(err.message, /appendfsync always/);
    assert.match(err.message, /EVENTSUBD_REDIS_DURABILITY=replicas:N or trust/);
    return true;
  });
  assert.equal(c.ready, false);
});

test('durability trust starts on a Redis without AOF and says at warn level that durability is not checked', async (t) => {
  const server = await startRedisServer(t, { appendonly: false, appendfsync: 'everysec' });
  const { logger, lines } = captureLogger();
  const c = connection(t, { url: server.url, durability: { kind: 'trust' }, logger });
  await c.start();
  assert.equal(c.ready, true);
  assert.ok(lines.some((l) => /"level":"warn"/.test(l) && /durability is not checked/.test(l)), lines.join(''));
});

test('durability replicas:N does not require the AOF check (WAIT is its durability)', async (t) => {
  const server = await startRedisServer(t, { appendfsync: 'everysec' });
  const c = connection(t, { url: server.url, durability: { kind: 'replicas', replicas: 1 } });
  await c.start();
  assert.equal(c.ready, true);
});

test('durability fsync on a Redis that refuses CONFIG (managed Redis) fails with REDIS_NOT_DURABLE saying to use trust', async (t) => {
  const server = await startRedisServer(t);
  const root = await admin(t, server.url);
  await root.sendCommand(['ACL', 'SETUSER', 'app', 'on', '>app-password-1', '~*', '&*', '+@all', '-config']);
  const c = connection(t, { url: `redis://app:app-password-1@127.0.0.1:${server.port}` });
  await assert.rejects(c.start(), (err: unknown) => {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'REDIS_NOT_DURABLE');
    assert.match(err.message, /CONFIG GET was refused/);
    assert.match(err.message, /EVENTSUBD_REDIS_DURABILITY=trust/);
    assert.doesNotMatch(err.message, /app-password-1/);
    return true;
  });
});

test('a wrong password rejects start() with CONFIG_INVALID; the password is in neither the message nor the log', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const { logger, lines } = captureLogger();
  const wrong = 'wrong-password-42';
  const c = connection(t, { url: `redis://default:${wrong}@127.0.0.1:${server.port}`, logger });
  await assert.rejects(c.start(), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.exitCode, 78);
    assert.match(err.message, /EVENTSUBD_REDIS_URL/);
    assert.match(err.message, /WRONGPASS/);
    assert.doesNotMatch(err.message, new RegExp(wrong));
    assert.doesNotMatch(err.message, new RegExp(PASSWORD));
    return true;
  });
  const log = lines.join('');
  assert.doesNotMatch(log, new RegExp(wrong));
  assert.doesNotMatch(log, new RegExp(PASSWORD));
  // And an ACL that refuses the user: NOPERM/WRONGPASS for a disabled user is the same configuration error.
  const root = await admin(t, server.url);
  await root.sendCommand(['ACL', 'SETUSER', 'off-user', 'off', '>off-user-pass', '~*', '+@all']);
  const off = connection(t, { url: `redis://off-user:off-user-pass@127.0.0.1:${server.port}`, logger });
  await assert.rejects(off.start(), { code: 'CONFIG_INVALID' });
  assert.doesNotMatch(lines.join(''), /off-user-pass/);
});

test('Redis down at start: start() resolves not ready, and the connection becomes ready by itself once Redis is up', async (t) => {
  const server = await startRedisServer(t);
  await server.stop();
  const { logger, lines } = captureLogger();
  const c = connection(t, { url: server.url, logger });
  await c.start();
  assert.equal(c.ready, false);
  assert.equal(await c.waitReady(50), false);
  assert.ok(lines.some((l) => /Redis is unreachable/.test(l)));
  const becameReady = c.waitReady(20_000);
  await server.restart();
  assert.equal(await becameReady, true);
  assert.equal(await c.client.ping(), 'PONG');
});

test('a Redis that fails the durability check after a reconnection makes the connection not ready, logged, until it passes again', async (t) => {
  const server = await startRedisServer(t);
  const root = await admin(t, server.url);
  const { logger, lines } = captureLogger();
  const c = connection(t, { url: server.url, logger });
  await c.start();
  assert.equal(c.ready, true);
  await root.configSet('appendfsync', 'everysec');
  // Drop the connection: it reconnects and checks again.
  await root.sendCommand(['CLIENT', 'KILL', 'ID', String(await c.client.clientId())]);
  await readyBecomes(c, false);
  await untilLogged(lines, /failed the durability check/);
  assert.ok(c.client.isOpen, 'still connected, never closed nor crashed');
  await root.configSet('appendfsync', 'always');
  await root.sendCommand(['CLIENT', 'KILL', 'ID', String(await c.client.clientId())]);
  await readyBecomes(c, true);
});

/** Waits for a log line matching `re` (the check runs right after the reconnection). */
async function untilLogged(lines: string[], re: RegExp): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!lines.some((l) => re.test(l))) {
    if (performance.now() > deadline) throw new Error(`No log line matched ${re}: ${lines.join('')}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

test('connectOnce() returns a ready connection, or throws REDIS_UNAVAILABLE within its timeout, or the config error', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const base = { durability: { kind: 'fsync' } as const, clock: systemClock, logger: captureLogger().logger };
  const ok = await RedisConnection.connectOnce({ ...base, url: server.url });
  t.after(() => ok.close());
  assert.equal(ok.ready, true);
  await assert.rejects(RedisConnection.connectOnce({ ...base, url: `redis://default:nope-nope-1@127.0.0.1:${server.port}` }), { code: 'CONFIG_INVALID' });
  await server.stop();
  const t0 = performance.now();
  await assert.rejects(RedisConnection.connectOnce({ ...base, url: server.url, timeoutMs: 300 }), (err: unknown) => {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'REDIS_UNAVAILABLE');
    assert.doesNotMatch(err.message, new RegExp(PASSWORD));
    assert.match(err.message, /\*\*\*/);
    return true;
  });
  assert.ok(performance.now() - t0 < 3000);
});
