import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createClient } from 'redis';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';

/** A connected client for `url`, closed after the test; its offline queue off so a dead server fails fast. */
async function connect(t: TestContext, url: string) {
  const client = createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  t.after(() => client.destroy());
  return client;
}

/** Whether the process `pid` still exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('startRedisServer() starts a durable redis-server on a loopback port that answers PING', async (t) => {
  const server = await startRedisServer(t);
  assert.match(server.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(server.url, `redis://127.0.0.1:${server.port}`);
  const client = await connect(t, server.url);
  assert.equal(await client.ping(), 'PONG');
  const config = await client.configGet('*');
  assert.equal(config.appendonly, 'yes');
  assert.equal(config.appendfsync, 'always');
  assert.equal(config.save, '');
  assert.equal(config.bind, '127.0.0.1');
  assert.equal(config.dir, server.dir);
  assert.ok(alive(server.pid));
});

test('startRedisServer() passes appendfsync, appendonly and extra args', async (t) => {
  const server = await startRedisServer(t, { appendfsync: 'everysec', appendonly: false, args: ['--maxmemory', '12mb'] });
  const client = await connect(t, server.url);
  const config = await client.configGet('*');
  assert.equal(config.appendonly, 'no');
  assert.equal(config.appendfsync, 'everysec');
  assert.equal(config.maxmemory, String(12 * 1024 * 1024));
});

test('restart() keeps a key written with appendfsync always, on the same port and dir, even after kill9()', async (t) => {
  const server = await startRedisServer(t);
  const before = { pid: server.pid, port: server.port, url: server.url };
  let client = await connect(t, server.url);
  await client.set('k', 'written before the crash');
  await client.xAdd('journal', '1-0', { r: '{"seq":1}' });
  await server.kill9();
  assert.equal(alive(before.pid), false, 'kill9() resolves once the process is gone');
  await assert.rejects(client.ping(), 'the killed server answers nothing');

  await server.restart();
  assert.notEqual(server.pid, before.pid);
  assert.deepEqual({ port: server.port, url: server.url }, { port: before.port, url: before.url });
  assert.ok(existsSync(join(server.dir, 'appendonlydir')), 'the AOF lives in the handle\'s dir');
  client = await connect(t, server.url);
  assert.equal(await client.get('k'), 'written before the crash', 'an acknowledged write survives SIGKILL via the AOF');
  assert.equal(await client.xLen('journal'), 1);

  // restart() of a running server stops it with SIGTERM first.
  const running = server.pid;
  await server.restart();
  assert.equal(alive(running), false);
  client = await connect(t, server.url);
  assert.equal(await client.get('k'), 'written before the crash');
});

test('stop() ends the process and is idempotent; dispose() removes the dir', async (t) => {
  const server: RedisServerHandle = await startRedisServer();
  t.after(() => server.dispose());
  const pid = server.pid;
  await server.stop();
  await server.stop();
  assert.equal(alive(pid), false);
  assert.ok(existsSync(server.dir), 'stop() keeps the data for restart()');
  await server.dispose();
  assert.equal(existsSync(server.dir), false);
  await assert.rejects(server.restart(), /disposed/);
});

test('startRedisServer({ password }) refuses clients without it and puts it in url', async (t) => {
  const server = await startRedisServer(t, { password: 'p@ss word' });
  assert.equal(server.url, `redis://default:p%40ss%20word@127.0.0.1:${server.port}`);
  const client = await connect(t, server.url);
  assert.equal(await client.ping(), 'PONG');

  // node-redis authenticates in its first command (HELLO): a refused client fails to connect at all.
  for (const [url, refusal] of [[`redis://127.0.0.1:${server.port}`, /NOAUTH/], [`redis://default:wrong@127.0.0.1:${server.port}`, /WRONGPASS/]] as const) {
    const refused = createClient({ url, socket: { reconnectStrategy: false } });
    refused.on('error', () => {});
    t.after(() => refused.destroy());
    await assert.rejects(refused.connect(), refusal);
  }
});

test('startRedisServer() fails with a clear error, never a skip, when redis-server is not installed', async (t) => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  t.after(() => {
    process.env.PATH = path;
  });
  await assert.rejects(startRedisServer(t), (err: Error) => {
    assert.equal(err.name, 'RedisServerMissingError');
    assert.match(err.message, /install Debian's redis-server; \.ci\/run does/);
    return true;
  });
});
