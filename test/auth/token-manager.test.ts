import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { TokenCache } from '../../src/auth/token-cache.js';
import { TokenManager, type TokenManagerOptions } from '../../src/auth/token-manager.js';
import { TwitchAuthError, TwitchUnreachableError } from '../../src/lib/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { nextCall } from '../helpers/wait.js';
import { captureLogs, CLIENT_ID, FakeOAuth, OTHER_CLIENT_ID, tempDir, type LogCapture } from './fakes.js';

interface Rig {
  clock: FakeClock;
  oauth: FakeOAuth;
  cache: TokenCache;
  logs: LogCapture;
  manager(overrides?: Partial<TokenManagerOptions>): TokenManager;
}

async function rig(t: TestContext, options: { autoAdvance?: boolean; dir?: string } = {}): Promise<Rig> {
  const clock = new FakeClock(undefined, { autoAdvance: options.autoAdvance ?? true });
  const oauth = new FakeOAuth(clock);
  const logs = captureLogs();
  const dir = options.dir ?? (await tempDir(t));
  const cache = new TokenCache({ stateDir: dir, clock, logger: logs.logger });
  const managers: TokenManager[] = [];
  t.after(() => Promise.all(managers.map((m) => m.close())));
  return {
    clock,
    oauth,
    cache,
    logs,
    manager(overrides = {}) {
      const m = new TokenManager({ clientId: CLIENT_ID, oauth, cache, clock, logger: logs.logger, canMint: true, random: () => 0, ...overrides });
      managers.push(m);
      return m;
    },
  };
}

/** No log line ever carries a token value. */
function assertNoSecrets(r: Rig): void {
  const all = r.logs.lines.join('\n');
  for (const value of r.oauth.table.keys()) assert.ok(!all.includes(value), 'a token value reached the logs');
}

test('TokenManager.getToken() mints once, writes the cache, and serves later calls from memory', async (t) => {
  const r = await rig(t);
  const m = r.manager();
  const [a, b] = await Promise.all([m.getToken(), m.getToken()]);
  const c = await m.getToken();
  assert.equal(r.oauth.mintCalls, 1);
  assert.ok(a.sameValueAs(b) && a.sameValueAs(c));
  assert.equal(a.origin, 'minted');
  assert.equal((await r.cache.read())?.accessToken, r.oauth.minted[0]);
  assert.deepEqual(m.stats, { mints: 1, validations: 0, revocations: 0, rotations: 0 });
  const info = r.logs.records().find((l) => l.msg === 'Minted an app token');
  assert.equal(info?.fingerprint, a.fingerprint);
  assert.equal(info?.expiresAt, new Date(r.clock.now() + 5_011_271_000).toISOString());
  assertNoSecrets(r);
});

test('TokenManager.getToken() of a second manager on the same state dir validates the cached token and does not mint', async (t) => {
  const r = await rig(t);
  const first = await r.manager().getToken();
  r.clock.set(r.clock.now() + 3_600_000);
  const second = r.manager();
  const token = await second.getToken();
  assert.ok(token.sameValueAs(first));
  assert.equal(token.origin, 'cache');
  assert.equal(token.obtainedAt, first.obtainedAt, 'the cache keeps the original obtained time');
  assert.equal(r.oauth.mintCalls, 1);
  assert.deepEqual(second.stats, { mints: 0, validations: 1, revocations: 0, rotations: 0 });
  await second.getToken();
  assert.equal(second.stats.validations, 1, 'validated once per process, not per call');
});

test('TokenManager.getToken() in two managers racing on an empty cache mints exactly once (cross-process lock)', async (t) => {
  const r = await rig(t);
  const [a, b] = await Promise.all([r.manager().getToken(), r.manager().getToken()]);
  assert.equal(r.oauth.mintCalls, 1);
  assert.ok(a.sameValueAs(b));
});

for (const [label, register, code] of [
  ['a user token', (o: FakeOAuth) => o.add('cached-user-token-value', { userId: '141981764' }), 'USER_TOKEN_REFUSED'],
  ['a token of another client', (o: FakeOAuth) => o.add('cached-foreign-token-value', { clientId: OTHER_CLIENT_ID }), 'TOKEN_CLIENT_MISMATCH'],
  ['a token Twitch answers 401 for', () => 'cached-dead-token-value', 'TOKEN_INVALID'],
] as const) {
  test(`TokenManager.getToken() discards ${label} found in the cache and mints an app token`, async (t) => {
    const r = await rig(t);
    const value = register(r.oauth);
    await r.cache.write(r.oauth.tokenFor(value));
    const m = r.manager();
    const token = await m.getToken();
    assert.equal(token.origin, 'minted');
    assert.equal(r.oauth.mintCalls, 1);
    assert.equal(m.stats.validations, 1);
    assert.equal((await r.cache.read())?.accessToken, r.oauth.minted[0]);
    const warn = r.logs.records().find((l) => l.msg === 'Discarding the cached token: /validate refused it');
    assert.equal(warn?.code, code);
    assertNoSecrets(r);
  });
}

test('TokenManager.getToken() with canMint false removes a refused cached token and fails with TOKEN_UNAVAILABLE', async (t) => {
  const r = await rig(t);
  await r.cache.write(r.oauth.tokenFor(r.oauth.add('cached-user-token-2', { userId: '1' })));
  const m = r.manager({ canMint: false });
  await assert.rejects(m.getToken(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'TOKEN_UNAVAILABLE');
    assert.match(err.message, /TWITCH_CLIENT_SECRET/);
    return true;
  });
  assert.equal(await r.cache.read(), undefined);
  assert.equal(r.oauth.mintCalls, 0);
});

test('TokenManager.getToken() ignores a cache file written for another client ID without validating it', async (t) => {
  const r = await rig(t);
  await r.cache.write(r.oauth.tokenFor(r.oauth.add('other-client-file-token'), OTHER_CLIENT_ID));
  const m = r.manager();
  await m.getToken();
  assert.equal(m.stats.validations, 0);
  assert.equal(r.oauth.mintCalls, 1);
  assert.equal((await r.cache.read())?.clientId, CLIENT_ID);
});

test('TokenManager.getToken() with canMint false uses a valid cached token', async (t) => {
  const r = await rig(t);
  await r.cache.write(r.oauth.tokenFor(r.oauth.add('cached-app-token-ok')));
  const token = await r.manager({ canMint: false }).getToken();
  assert.equal(token.origin, 'cache');
  assert.equal(r.oauth.mintCalls, 0);
});

test('TokenManager.getToken() does not adopt a cached token within its rotation margin', async (t) => {
  const r = await rig(t);
  await r.cache.write(r.oauth.tokenFor(r.oauth.add('cached-nearly-expired')));
  r.clock.set(r.clock.now() + 4_600_000_000);
  const m = r.manager();
  const token = await m.getToken();
  assert.equal(token.origin, 'minted');
  assert.equal(m.stats.validations, 0);
});

for (const [label, register, code] of [
  ['a user token', (o: FakeOAuth) => o.add('supplied-user-token', { userId: '141981764' }), 'USER_TOKEN_REFUSED'],
  ['a token of another client', (o: FakeOAuth) => o.add('supplied-foreign-token', { clientId: OTHER_CLIENT_ID }), 'TOKEN_CLIENT_MISMATCH'],
  ['a token Twitch answers 401 for', () => 'supplied-dead-token', 'TOKEN_INVALID'],
] as const) {
  test(`TokenManager.getToken() refuses ${label} in TWITCH_ACCESS_TOKEN with ${code} and never mints`, async (t) => {
    const r = await rig(t);
    const m = r.manager({ suppliedToken: register(r.oauth) });
    await assert.rejects(m.getToken(), { code });
    await assert.rejects(m.getToken(), { code });
    assert.equal(r.oauth.mintCalls, 0);
    assert.equal(r.oauth.validatedAt.length, 1, 'a refusal is final: not validated again');
    assert.equal(m.status().state, 'refused');
    assert.equal(m.status().lastError?.code, code);
    assert.equal(await r.cache.read(), undefined);
  });
}

test('TokenManager uses a valid supplied token as is, never caches it, and refuses it on a Helix 401', async (t) => {
  const r = await rig(t);
  const m = r.manager({ suppliedToken: r.oauth.add('supplied-app-token-ok') });
  const token = await m.getToken();
  assert.equal(token.origin, 'supplied');
  assert.equal(await r.cache.read(), undefined);
  await assert.rejects(m.tokenRejected(token), { code: 'TOKEN_INVALID' });
  await assert.rejects(m.getToken(), { code: 'TOKEN_INVALID' });
  assert.equal(r.oauth.mintCalls, 0);
});

test('TokenManager.tokenRejected() from 100 concurrent callers with the current token mints exactly once', async (t) => {
  const r = await rig(t);
  const m = r.manager();
  const old = await m.getToken();
  const results = await Promise.all(Array.from({ length: 100 }, () => m.tokenRejected(old)));
  assert.equal(r.oauth.mintCalls, 2);
  assert.equal(r.oauth.validatedAt.length, 0, 'one shared re-mint: no caller had to adopt it from the cache');
  const fresh = results[0]!;
  assert.ok(!fresh.sameValueAs(old));
  assert.ok(results.every((x) => x.sameValueAs(fresh)));
  assert.equal((await r.cache.read())?.accessToken, r.oauth.minted[1]);
  assert.ok((await m.getToken()).sameValueAs(fresh));
});

test('TokenManager.tokenRejected() with an already replaced token returns the current one without minting', async (t) => {
  const r = await rig(t);
  const m = r.manager();
  const old = await m.getToken();
  const fresh = await m.tokenRejected(old);
  const again = await Promise.all(Array.from({ length: 10 }, () => m.tokenRejected(old)));
  assert.equal(r.oauth.mintCalls, 2);
  assert.ok(again.every((x) => x.sameValueAs(fresh)));
});

test('TokenManager.tokenRejected() adopts a newer token another process cached instead of minting', async (t) => {
  const r = await rig(t);
  const daemon = r.manager();
  const old = await daemon.getToken();
  const cli = r.manager();
  const rotated = await cli.rotate();
  assert.deepEqual(rotated, { previous: old.fingerprint, current: r.oauth.tokenFor(r.oauth.minted[1]!).fingerprint });
  assert.deepEqual(r.oauth.revoked, [r.oauth.minted[0]]);
  const next = await daemon.tokenRejected(old);
  assert.equal(next.reveal(), r.oauth.minted[1]);
  assert.equal(next.origin, 'cache');
  assert.equal(r.oauth.mintCalls, 2, 'the daemon adopted the CLI token');
});

test('TokenManager.getToken() does not retry TWITCH_AUTH_FAILED', async (t) => {
  const r = await rig(t);
  r.oauth.mintFailures.push(new TwitchAuthError(403, 'invalid client secret'));
  const m = r.manager();
  await assert.rejects(m.getToken(), { code: 'TWITCH_AUTH_FAILED' });
  assert.equal(r.oauth.mintCalls, 1);
  assert.equal(m.status().state, 'refused', 'a person must fix the credentials: status says refused, as the metric does');
  assert.equal(m.status().lastError?.code, 'TWITCH_AUTH_FAILED');
});

test('TokenManager.getToken() retries network failures with backoff, then fails with TOKEN_UNAVAILABLE', async (t) => {
  const r = await rig(t);
  for (let i = 0; i < 3; i++) r.oauth.mintFailures.push(new TwitchUnreachableError('connect ECONNREFUSED'));
  const m = r.manager({ mintAttempts: 3 });
  await assert.rejects(m.getToken(), (err: Error & { code?: string; cause?: { code?: string } }) => {
    assert.equal(err.code, 'TOKEN_UNAVAILABLE');
    assert.equal(err.cause?.code, 'TWITCH_UNREACHABLE');
    return true;
  });
  assert.equal(r.oauth.mintCalls, 3);
  assert.ok(r.clock.sleeps.includes(250) && r.clock.sleeps.includes(500), `backoff sleeps ${r.clock.sleeps.join(',')}`);
  r.oauth.mintFailures.push(new TwitchUnreachableError('reset'));
  assert.equal((await m.getToken()).origin, 'minted', 'a second failure then success is absorbed');
  assert.equal(r.oauth.mintCalls, 5);
});

test('TokenManager.revoke() revokes the cached token, removes the cache and forgets it', async (t) => {
  const r = await rig(t);
  const m = r.manager();
  const token = await m.getToken();
  assert.equal(await m.revoke(), token.fingerprint);
  assert.deepEqual(r.oauth.revoked, [token.reveal()]);
  assert.equal(await access(r.cache.path).then(() => true, () => false), false);
  assert.equal(m.status().state, 'missing');
  assert.equal(m.stats.revocations, 1);
  assert.ok(!(await m.getToken()).sameValueAs(token));
  assert.equal(await r.manager().revoke(), r.oauth.tokenFor(r.oauth.minted[1]!).fingerprint);
});

test('TokenManager.inspect() reports the cached token without minting, and refusals with their code', async (t) => {
  const r = await rig(t);
  assert.deepEqual(await r.manager().inspect(), { state: 'missing' });
  const token = await r.manager().getToken();
  const status = await r.manager().inspect();
  assert.equal(status.state, 'ok');
  assert.equal(status.origin, 'cache');
  assert.equal(status.fingerprint, token.fingerprint);
  assert.equal(status.expiresAt, token.expiresAt);
  r.oauth.kill(token.reveal());
  const dead = await r.manager().inspect();
  assert.equal(dead.state, 'refused');
  assert.equal(dead.lastError?.code, 'TOKEN_INVALID');
  const user = await r.manager({ suppliedToken: r.oauth.add('inspect-user-token', { userId: '9' }) }).inspect();
  assert.deepEqual([user.state, user.origin, user.lastError?.code], ['refused', 'supplied', 'USER_TOKEN_REFUSED']);
  assert.equal(r.oauth.mintCalls, 1);
  assert.equal((await r.cache.read())?.accessToken, token.reveal(), 'inspect never changes the cache');
});

test('TokenManager.status() goes missing → ok → expiring as the token ages', async (t) => {
  const r = await rig(t);
  const m = r.manager();
  assert.deepEqual(m.status(), { state: 'missing' });
  const token = await m.getToken();
  const ok = m.status();
  assert.deepEqual(ok, {
    state: 'ok',
    origin: 'minted',
    fingerprint: token.fingerprint,
    obtainedAt: r.clock.now(),
    expiresAt: r.clock.now() + 5_011_271_000,
    validatedAt: r.clock.now(),
  });
  r.clock.set(token.obtainedAt + 4_510_143_900);
  assert.equal(m.status().state, 'expiring');
});

test('TokenManager.getToken() lets one caller stop waiting while the shared mint goes on for the others', async (t) => {
  const r = await rig(t);
  let open!: () => void;
  r.oauth.mintGate = new Promise<void>((resolve) => (open = resolve));
  const m = r.manager();
  const minting = nextCall(r.oauth, 'mint');
  const ac = new AbortController();
  const impatient = m.getToken(ac.signal);
  const patient = m.getToken();
  await minting; // both callers wait on the one mint, held at its gate
  ac.abort();
  await assert.rejects(impatient, { code: 'ABORTED' });
  open();
  assert.equal((await patient).reveal(), r.oauth.minted[0]);
  assert.equal(r.oauth.mintCalls, 1);
});

test('TokenManager.getToken() keeps serving a token within its margin when a replacement cannot be minted', async (t) => {
  const r = await rig(t);
  const m = r.manager({ mintAttempts: 1 });
  const token = await m.getToken();
  r.clock.set(token.obtainedAt + 4_600_000_000);
  r.oauth.mintFailures.push(new TwitchUnreachableError('down'));
  assert.ok((await m.getToken()).sameValueAs(token));
  assert.equal(m.status().state, 'expiring');
  assert.equal(m.status().lastError?.code, 'TOKEN_UNAVAILABLE');
  r.clock.set(token.expiresAt);
  r.oauth.mintFailures.push(new TwitchUnreachableError('down'));
  await assert.rejects(m.getToken(), { code: 'TOKEN_UNAVAILABLE' });
});

test('TokenManager.rotate() refuses to replace a supplied token', async (t) => {
  const r = await rig(t);
  const m = r.manager({ suppliedToken: r.oauth.add('supplied-app-token-rotate') });
  await assert.rejects(m.rotate(), { code: 'TOKEN_UNAVAILABLE' });
  assert.equal(r.oauth.mintCalls, 0);
});
