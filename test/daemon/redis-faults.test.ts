/**
 * `eventsubd run` with EVENTSUBD_REDIS_URL against a real redis-server (child processes: exit codes, signals): Redis
 * down at start, killed mid-load, not durable, behind a password the daemon does not have; a leader paused past its
 * lease.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { createClient } from 'redis';
import type { JournalRecord } from '../../src/journal/types.js';
import { runCli } from '../helpers/cli.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { DaemonProcess, httpGet, jsonLines, replicaFixture, startDaemon, status, useFixture, waitFor, type Fixture } from './harness.js';
import { send } from './messages.js';

const PREFIX = 'eventsubd-faults';

async function streamIds(url: string): Promise<string[]> {
  const client = createClient({ url });
  await client.connect();
  try {
    const entries = (await client.xRange(`${PREFIX}:journal`, '-', '+')) ?? [];
    return entries.map((e) => (JSON.parse(String(e.message.record)) as JournalRecord).message_id);
  } finally {
    await client.close();
  }
}

function redisEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return { EVENTSUBD_REDIS_URL: url, EVENTSUBD_REDIS_PREFIX: PREFIX, ...extra };
}

async function role(f: Fixture): Promise<string> {
  return String(((await status(f)) as unknown as { replication: { role: string } }).replication.role);
}

describe('the daemon on Redis: faults', { timeout: 120_000 }, () => {
  test('Redis down at start: the daemon starts, is not ready, answers 503, and recovers by itself', async (t) => {
    const redis = await startRedisServer(t);
    await redis.stop();
    const { f } = await useFixture(t);
    const d = new DaemonProcess(f, redisEnv(redis.url));
    t.after(() => d.kill9());
    await waitFor('the daemon to listen', async () => (await httpGet(f, '/healthz')).status === 200, { timeoutMs: 15_000 });
    assert.ok(d.logs().some((l) => l.msg === 'eventsubd is ready'), 'READY=1 is sent without Redis: receiving waits for it, start does not');
    const ready = await httpGet(f, '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(JSON.parse(ready.body).redis_ready, false);
    const early = randomUUID();
    const refused = await send(f, { messageId: early });
    assert.equal(refused.status, 503, 'nothing is acknowledged that is not stored');

    await redis.restart();
    await waitFor('/readyz 200 once Redis is back', async () => (await httpGet(f, '/readyz')).status === 200, { timeoutMs: 20_000 });
    const answer = await send(f, { messageId: early });
    assert.equal(answer.status, 204, "Twitch's retry of the refused message is stored");
    assert.deepEqual(await streamIds(redis.url), [early]);
    // The CLI reads the same stream; with Redis gone it says so (exit 1), it does not wait.
    const tail = await runCli(['events', 'tail', '--json'], { env: f.env(redisEnv(redis.url)) });
    assert.equal(tail.code, 0, tail.stderr);
    assert.deepEqual(jsonLines(tail.stdout).map((r) => [r.seq, r.message_id]), [[1, early]]);
    assert.equal(await d.stop(), 0);
    await redis.stop();
    const down = await runCli(['events', 'tail'], { env: f.env(redisEnv(redis.url)) });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /REDIS_UNAVAILABLE/);
  });

  test('Redis killed mid-load and restarted: every acknowledged message is in the stream, once', async (t) => {
    const redis = await startRedisServer(t);
    const { f, start } = await useFixture(t);
    await start(redisEnv(redis.url));
    const acked: string[] = [];
    const refused: string[] = [];
    let sent = 0;
    const ids = Array.from({ length: 600 }, () => randomUUID());
    const crash = (async () => {
      await waitFor('a third of the load', () => sent >= 200, { timeoutMs: 30_000, intervalMs: 2 });
      await redis.kill9();
      await redis.restart();
    })();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          const r = await send(f, { messageId: id });
          sent += 1;
          (r.status === 204 ? acked : refused).push(id);
          assert.ok(r.status === 204 || r.status === 503, `only 204 or 503, got ${r.status}`);
        }
      }),
    );
    await crash;
    t.diagnostic(`${acked.length} acknowledged, ${refused.length} refused with 503 around the crash`);
    const stored = await streamIds(redis.url);
    const once = new Set(stored);
    assert.equal(once.size, stored.length, 'no message id twice');
    assert.deepEqual(acked.filter((id) => !once.has(id)), [], 'every acknowledged message survived kill -9 of Redis');
  });

  test('appendfsync everysec: exit 78 REDIS_NOT_DURABLE naming the Redis settings; trust starts', async (t) => {
    const redis = await startRedisServer(t, { appendfsync: 'everysec' });
    const { f, start } = await useFixture(t);
    const d = new DaemonProcess(f, redisEnv(redis.url));
    const { code } = await d.exited;
    assert.equal(code, 78);
    assert.match(d.stderr, /REDIS_NOT_DURABLE/);
    assert.match(d.stderr, /appendfsync always/);
    const trusting = await start(redisEnv(redis.url, { EVENTSUBD_REDIS_DURABILITY: 'trust' }));
    assert.ok(trusting.logs().some((l) => /durability/i.test(l.msg) && l.level === 'warn'), 'trust is said in the log at start');
  });

  test('a wrong password: exit 78, and the password is printed nowhere', async (t) => {
    const redis = await startRedisServer(t, { password: 'right-password-123' });
    const { f } = await useFixture(t);
    const wrong = redis.url.replace('right-password-123', 'wrong-password-456');
    const d = new DaemonProcess(f, redisEnv(wrong));
    const { code } = await d.exited;
    assert.equal(code, 78);
    assert.match(d.stderr, /CONFIG_INVALID/);
    assert.match(d.stderr, /EVENTSUBD_REDIS_URL/);
    assert.doesNotMatch(d.stderr + d.stdout, /wrong-password-456|right-password-123/);
  });

  test('a leader paused (SIGSTOP) past its lease: another leads, and the resumed one follows', async (t) => {
    const redis = await startRedisServer(t);
    const { f, start } = await useFixture(t);
    const env = redisEnv(redis.url, { EVENTSUBD_REDIS_LEASE_MS: '1500' });
    const first = await start(env);
    await waitFor('the first replica to lead', async () => (await role(f)) === 'leader', { timeoutMs: 10_000 });
    const g = await replicaFixture(f, 'second');
    const second = await startDaemon(g, env);
    t.after(() => second.kill9());
    assert.equal(await role(g), 'follower');
    first.child.kill('SIGSTOP');
    t.after(() => void first.child.kill('SIGCONT'));
    await waitFor('the second replica to lead', async () => (await role(g)) === 'leader', { timeoutMs: 1500 * 3 });
    first.child.kill('SIGCONT');
    await waitFor('the resumed replica to answer', async () => (await httpGet(f, '/healthz')).status === 200, { timeoutMs: 10_000 });
    assert.equal(await role(f), 'follower', 'the resumed replica does not act as leader');
    assert.equal(await role(g), 'leader');
  });

  test('SIGHUP on a follower asks the leader to sync', async (t) => {
    const redis = await startRedisServer(t);
    const { f, start } = await useFixture(t);
    await start(redisEnv(redis.url));
    await waitFor('the first replica to lead and sync', async () => (await role(f)) === 'leader' && (await status(f)).sync.result === 'ok', { timeoutMs: 15_000 });
    const g = await replicaFixture(f, 'second');
    const follower = await startDaemon(g, redisEnv(redis.url));
    t.after(() => follower.kill9());
    assert.equal(await role(g), 'follower');
    follower.child.kill('SIGHUP');
    await waitFor('the leader to sync for the follower', async () => /requested by a follower/.test(String((await status(f)).sync.reason)), { timeoutMs: 10_000 });
    assert.equal((await status(g)).sync.result, null, 'the follower itself does not sync');
  });
});
