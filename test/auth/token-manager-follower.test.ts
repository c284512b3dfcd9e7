/**
 * Issue 15: replicas sharing one token through Redis. Only the leader (`mayMint()` true) mints, rotates and
 * revokes; a follower takes the token the shared store holds and, after a 401 or with none, waits for the
 * leader's. A 401 storm across replicas mints once. Real redis-server, fake Twitch (fakes.ts), fake clock.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { createClient } from 'redis';
import { TokenManager, type TokenManagerOptions } from '../../src/auth/token-manager.js';
import { systemClock } from '../../src/lib/clock.js';
import { RedisTokenStore, type RedisClient } from '../../src/storage/redis-token-store.js';
import type { AppToken } from '../../src/twitch/tokens.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { untilSleeping, untilTurn } from '../helpers/wait.js';
import { captureLogs, CLIENT_ID, FakeOAuth, type LogCapture } from './fakes.js';

let server: RedisServerHandle;
before(async () => {
  server = await startRedisServer();
});
after(() => server.dispose());

const DAY = 86_400_000;
/** expires_in 5_011_271 s minus its 10% rotation margin. */
const ROTATE_AFTER = 4_510_143_900;
let prefixes = 0;
/** Every wait here is on an event (a swap, a Redis message): a test that can no longer pass fails instead of hanging. */
const GUARD = { timeout: 15_000 };

interface Replica {
  m: TokenManager;
  store: RedisTokenStore;
  client: RedisClient;
}

interface Cluster {
  prefix: string;
  clock: FakeClock;
  oauth: FakeOAuth;
  logs: LogCapture;
  /** A replica process of its own: its own Redis connection, store and token manager, on the shared prefix. */
  replica(mayMint: () => boolean, overrides?: Partial<TokenManagerOptions>): Promise<Replica>;
}

function cluster(t: TestContext): Cluster {
  const clock = new FakeClock();
  const oauth = new FakeOAuth(clock);
  const logs = captureLogs();
  const prefix = `eventsubd:follower${++prefixes}`;
  return {
    prefix,
    clock,
    oauth,
    logs,
    async replica(mayMint, overrides = {}) {
      const client: RedisClient = createClient({ url: server.url, disableOfflineQueue: true });
      client.on('error', () => {});
      await client.connect();
      // The store paces its lock polls on real time (Redis expires locks in real time); tokens live on the fake clock.
      const store = new RedisTokenStore({ client, prefix, clientId: CLIENT_ID, clock: systemClock, logger: logs.logger });
      const m = new TokenManager({ clientId: CLIENT_ID, oauth, cache: store, clock, logger: logs.logger, canMint: true, random: () => 0, mayMint, ...overrides });
      t.after(async () => {
        await m.close();
        if (client.isOpen) client.destroy();
      });
      return { m, store, client };
    },
  };
}

/**
 * A started leader and follower, once the leader listens for reports of rejected tokens (a report published
 * before that is lost, as it would be in production: the follower then only waits longer).
 */
async function leaderAndFollower(t: TestContext): Promise<{ c: Cluster; l: Replica; f: Replica }> {
  const c = cluster(t);
  const l = await c.replica(leader);
  await l.m.start();
  const f = await c.replica(follower);
  await f.m.start();
  const channel = `${c.prefix}:token:rejected`;
  await untilTurn(async () => ((await l.client.pubSubNumSub(channel))[channel] ?? 0) >= 2, 'the subscriptions to rejected tokens');
  return { c, l, f };
}

const leader = (): boolean => true;
const follower = (): boolean => false;

/** Resolves at the manager's next token change. */
const nextSwap = (m: TokenManager): Promise<void> =>
  new Promise((resolve) => {
    const off = m.onSwap(() => {
      off();
      resolve();
    });
  });

function assertNoSecrets(c: Cluster): void {
  const all = c.logs.lines.join('\n');
  for (const value of c.oauth.table.keys()) assert.ok(!all.includes(value), 'a token value reached the logs');
}

test("TokenManager follower with no token in the store starts at once, reports waiting for the leader's token, and takes it once the leader mints", GUARD, async (t) => {
  const c = cluster(t);
  const f = await c.replica(follower);
  await f.m.start();
  const waiting = f.m.status();
  assert.equal(waiting.state, 'missing');
  assert.equal(waiting.lastError?.code, 'TOKEN_UNAVAILABLE');
  assert.match(waiting.lastError?.message ?? '', /waiting for the leader's token/);
  const call = f.m.getToken(); // a Helix call on the follower waits for the leader's token
  const l = await c.replica(leader);
  await l.m.start();
  const minted = await l.m.getToken();
  const got = await call;
  assert.ok(got.sameValueAs(minted));
  assert.equal(got.origin, 'cache');
  assert.equal(f.m.status().state, 'ok');
  assert.equal(c.oauth.mintCalls, 1);
  assert.deepEqual(f.m.stats, { mints: 0, validations: 1, revocations: 0, rotations: 0 });
  assert.ok(c.logs.records().some((r) => r.msg === "No app token in the shared store yet; waiting for the leader's"));
  assertNoSecrets(c);
});

test('TokenManager: a 401 storm across three replicas on one Redis (one leader, two followers) mints exactly once', GUARD, async (t) => {
  const c = cluster(t);
  const l = await c.replica(leader);
  await l.m.start();
  const followers = [await c.replica(follower), await c.replica(follower)];
  await Promise.all(followers.map((f) => f.m.start()));
  const replicas = [l, ...followers];
  const before = await Promise.all(replicas.map((r) => r.m.getToken()));
  assert.ok(before.every((tok) => tok.sameValueAs(before[0]!)), 'every replica uses the shared token');
  assert.equal(c.oauth.mintCalls, 1);

  c.oauth.kill(before[0]!.reveal()); // Twitch stops accepting it: every replica's next Helix call gets 401
  const after = await Promise.all(replicas.map((r, i) => r.m.tokenRejected(before[i]!)));

  assert.equal(c.oauth.mintCalls, 2, 'one mint for the whole storm');
  const fresh = after[0]!;
  assert.ok(!fresh.sameValueAs(before[0]!));
  assert.ok(after.every((tok) => tok.sameValueAs(fresh)), 'the followers took the leader\'s new token');
  assert.equal((await l.store.read())?.accessToken, fresh.reveal());
  for (const f of followers) {
    assert.equal(f.m.stats.mints, 0);
    assert.equal(f.m.status().fingerprint, fresh.fingerprint);
  }
  assertNoSecrets(c);
});

test('TokenManager: a 401 storm across two processes that may both mint (a CLI beside the leader) mints once, under the Redis lock', GUARD, async (t) => {
  const c = cluster(t);
  const a = await c.replica(leader);
  const b = await c.replica(leader);
  const first = await a.m.getToken();
  assert.ok((await b.m.getToken()).sameValueAs(first));
  c.oauth.kill(first.reveal());
  const [ta, tb] = await Promise.all([a.m.tokenRejected(first), b.m.tokenRejected(first)]);
  assert.equal(c.oauth.mintCalls, 2);
  assert.ok(ta.sameValueAs(tb));
});

test('TokenManager follower never mints, rotates nor revokes: after a 401 with no leader running it waits for one, then fails the call with TOKEN_UNAVAILABLE', GUARD, async (t) => {
  const c = cluster(t);
  const l = await c.replica(leader);
  const token = await l.m.getToken(); // the leader wrote the token, then its process stopped
  await l.m.close();
  const f = await c.replica(follower);
  await f.m.start();
  assert.ok((await f.m.getToken()).sameValueAs(token));
  await assert.rejects(f.m.rotate(), { code: 'TOKEN_UNAVAILABLE', message: /follower replica/ });
  await assert.rejects(f.m.revoke(), { code: 'TOKEN_UNAVAILABLE', message: /follower replica/ });

  c.oauth.kill(token.reveal());
  const sleeps = c.clock.sleeps.length;
  const rejected = assert.rejects(f.m.tokenRejected(token), { code: 'TOKEN_UNAVAILABLE', message: /waiting for the leader's token/ });
  await untilSleeping(c.clock, () => c.clock.sleeps.slice(sleeps).includes(30_000), "the follower's wait for the leader");
  assert.equal(f.m.status().state, 'missing', 'the dead token is no longer offered');
  await c.clock.advance(30_000);
  await rejected;
  assert.equal(c.oauth.mintCalls, 1);
  assert.deepEqual(c.oauth.revoked, []);
  assert.equal((await f.store.read())?.accessToken, token.reveal(), 'the follower left the shared record alone');
  assert.ok(c.logs.records().some((r) => r.msg === 'Twitch rejected the current app token; telling the leader and waiting for its replacement'));
});

test('TokenManager: a 401 that only a follower saw reaches the leader, which checks the token with /validate and re-mints once; the follower takes the new token without waiting out its 30 s', GUARD, async (t) => {
  const { c, l, f } = await leaderAndFollower(t);
  const token = await f.m.getToken();
  const leaderValidations = l.m.stats.validations;

  c.oauth.kill(token.reveal()); // Twitch stops accepting it; only the follower has made a Helix call since
  const fresh = await f.m.tokenRejected(token); // no clock advance: the leader's mint, not the follower's timeout, ends the wait
  assert.ok(!fresh.sameValueAs(token));
  assert.ok((await l.m.getToken()).sameValueAs(fresh), "the follower took the leader's new token");
  assert.equal(c.oauth.mintCalls, 2, 'one mint, by the leader');
  assert.equal(f.m.stats.mints, 0);
  assert.equal(l.m.stats.validations - leaderValidations, 1, 'the leader checked the reported token once before minting');
  assert.equal((await l.store.read())?.accessToken, fresh.reveal());
  const messages = c.logs.records().map((r) => r.msg);
  assert.ok(messages.includes('A follower replica reports a 401 for the app token; checking it with /validate'));
  assertNoSecrets(c);
});

test('TokenManager: a 401 a follower saw for a token Twitch still accepts mints nothing: the leader and the follower each /validate it and keep it', GUARD, async (t) => {
  const { c, l, f } = await leaderAndFollower(t);
  const token = await f.m.getToken();
  const again = await f.m.tokenRejected(token); // a 401 Twitch did not mean: the token is still valid
  assert.ok(again.sameValueAs(token), 'the follower adopted the same token again after its own /validate');
  await untilTurn(() => c.logs.records().some((r) => r.msg === 'Twitch still accepts the app token a follower reported; keeping it'), "the leader's check of the reported token");
  assert.ok((await l.m.getToken()).sameValueAs(token));
  assert.equal(c.oauth.mintCalls, 1, 'no mint');
  assert.equal(f.m.status().state, 'ok');
});

test("TokenManager follower takes the leader's rotated token at the rotation deadline, without minting or revoking", GUARD, async (t) => {
  const c = cluster(t);
  const slow = { validateIntervalMs: 100 * DAY };
  const l = await c.replica(leader, slow);
  await l.m.start();
  const f = await c.replica(follower, slow);
  await f.m.start();
  const old = await f.m.getToken();
  const swapped = Promise.all([nextSwap(l.m), nextSwap(f.m)]);
  await c.clock.advance(ROTATE_AFTER);
  await swapped;
  await untilTurn(() => c.oauth.revoked.length > 0, "the leader's revocation of the old token");
  const rotated = await l.m.getToken();
  assert.ok(!rotated.sameValueAs(old));
  assert.ok((await f.m.getToken()).sameValueAs(rotated));
  assert.equal(c.oauth.mintCalls, 2);
  assert.deepEqual(c.oauth.revoked, [old.reveal()], 'the leader revoked the old token, once');
  assert.deepEqual({ mints: f.m.stats.mints, revocations: f.m.stats.revocations, rotations: f.m.stats.rotations }, { mints: 0, revocations: 0, rotations: 0 });
  assert.equal(l.m.stats.rotations, 1);
});

test('TokenManager follower that becomes leader mints at once when told roleChanged(), not after its wait', GUARD, async (t) => {
  const c = cluster(t);
  let leading = false;
  const r = await c.replica(() => leading);
  await r.m.start();
  await untilSleeping(c.clock, () => c.clock.sleeps.includes(30_000), "the loop's wait for the leader's token");
  assert.equal(c.oauth.mintCalls, 0);
  const swapped = nextSwap(r.m);
  leading = true;
  r.m.roleChanged();
  await swapped;
  assert.equal(c.oauth.mintCalls, 1);
  const token: AppToken = await r.m.getToken();
  assert.equal(token.origin, 'minted');
  assert.equal((await r.store.read())?.accessToken, token.reveal());
  assert.equal(r.m.status().state, 'ok');
});
