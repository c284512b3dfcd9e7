/**
 * RedisCursor against a real redis-server: 0 when absent, never moved backwards (an old leader's late save must
 * not rewind the new leader's cursor), and a key holding anything but a seq is an error naming the key.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { createClient } from 'redis';
import { RedisCursor } from '../../src/storage/redis-cursor.js';
import type { RedisClient } from '../../src/storage/redis-token-store.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';

let server: RedisServerHandle;
before(async () => {
  server = await startRedisServer();
});
after(() => server.dispose());

let prefixes = 0;
const freshPrefix = (): string => `eventsubd:cursor${++prefixes}`;

async function connect(t: TestContext): Promise<RedisClient> {
  const client: RedisClient = createClient({ url: server.url, disableOfflineQueue: true });
  client.on('error', () => {});
  await client.connect();
  t.after(() => {
    if (client.isOpen) client.destroy();
  });
  return client;
}

test('RedisCursor.load() is 0 before any save, then the saved seq, under PREFIX:cursor:<name>', async (t) => {
  const client = await connect(t);
  const prefix = freshPrefix();
  const cursor = new RedisCursor({ client, prefix, name: 'forwarder' });
  assert.equal(cursor.key, `${prefix}:cursor:forwarder`);
  assert.equal(await cursor.load(), 0);
  await cursor.save(0);
  assert.equal(await cursor.load(), 0);
  await cursor.save(41);
  assert.equal(await cursor.load(), 41);
  assert.equal(await client.get(`${prefix}:cursor:forwarder`), '41');
  await cursor.save(Number.MAX_SAFE_INTEGER);
  assert.equal(await cursor.load(), Number.MAX_SAFE_INTEGER);
});

test('RedisCursor.save() never moves the cursor backwards: an old leader saving late does not rewind the new one', async (t) => {
  const prefix = freshPrefix();
  const oldLeader = new RedisCursor({ client: await connect(t), prefix, name: 'forwarder' });
  const newLeader = new RedisCursor({ client: await connect(t), prefix, name: 'forwarder' });
  await oldLeader.save(100);
  await newLeader.save(250);
  await oldLeader.save(120); // the old leader's save, arriving after the takeover
  assert.equal(await newLeader.load(), 250);
  assert.equal(await oldLeader.load(), 250);
  await newLeader.save(250);
  await newLeader.save(251);
  assert.equal(await oldLeader.load(), 251);
  // Numbers, not strings: "9" > "10" as text.
  await newLeader.save(1_000);
  await oldLeader.save(999);
  assert.equal(await newLeader.load(), 1_000);
});

test('RedisCursor.save() of interleaved concurrent saves keeps the largest seq', async (t) => {
  const prefix = freshPrefix();
  const cursors = [await connect(t), await connect(t), await connect(t)].map((client) => new RedisCursor({ client, prefix, name: 'forwarder' }));
  const seqs = Array.from({ length: 300 }, (_, i) => (i * 7919) % 1009);
  await Promise.all(seqs.map((seq, i) => cursors[i % 3]!.save(seq)));
  assert.equal(await cursors[0]!.load(), Math.max(...seqs));
});

for (const value of ['abc', '-1', '1.5', '12abc', ' 7', '99999999999999999', '']) {
  test(`RedisCursor refuses a key holding ${JSON.stringify(value)}: load() and save() fail naming the key, and the value stays`, async (t) => {
    const client = await connect(t);
    const prefix = freshPrefix();
    const cursor = new RedisCursor({ client, prefix, name: 'forwarder' });
    await client.set(cursor.key, value);
    const refusal = (err: Error & { code?: string }): boolean => {
      assert.equal(err.code, 'STATE_DIR_UNUSABLE');
      assert.match(err.message, new RegExp(`^Cannot use the cursor ${prefix}:cursor:forwarder in Redis: it must hold a non-negative integer: current value is `));
      assert.ok(err.message.includes(JSON.stringify(value)), err.message);
      assert.match(err.message, /delete it to deliver again from the oldest record kept/);
      return true;
    };
    await assert.rejects(cursor.load(), refusal);
    await assert.rejects(cursor.save(5), refusal);
    assert.equal(await client.get(cursor.key), value);
  });
}

test('RedisCursor.save() refuses a seq that is not a non-negative integer, and a bad name at construction', async (t) => {
  const client = await connect(t);
  const cursor = new RedisCursor({ client, prefix: freshPrefix(), name: 'forwarder' });
  for (const seq of [-1, 1.5, Number.NaN, 2 ** 53]) {
    await assert.rejects(cursor.save(seq), { code: 'STATE_DIR_UNUSABLE', message: `Cannot save the cursor as 'seq' must be a non-negative integer: current value is ${seq}` });
  }
  assert.equal(await cursor.load(), 0);
  assert.throws(() => new RedisCursor({ client, prefix: 'p', name: 'a:b' }), { code: 'STATE_DIR_UNUSABLE' });
});

test('RedisCursor fails with REDIS_UNAVAILABLE, naming the key, when Redis is gone', async (t) => {
  const client = await connect(t);
  const prefix = freshPrefix();
  const cursor = new RedisCursor({ client, prefix, name: 'forwarder' });
  client.destroy();
  await assert.rejects(cursor.load(), { code: 'REDIS_UNAVAILABLE', message: new RegExp(`^Cannot read the cursor ${prefix}:cursor:forwarder from Redis: `) });
  await assert.rejects(cursor.save(1), { code: 'REDIS_UNAVAILABLE', message: new RegExp(`^Cannot save the cursor ${prefix}:cursor:forwarder in Redis: `) });
});
