import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { TokenManager, type TokenManagerOptions } from '../../src/auth/token-manager.js';
import { MAX_TIMER_MS } from '../../src/lib/clock.js';
import { TwitchAuthError, TwitchUnreachableError, type AppError } from '../../src/lib/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs, CLIENT_ID, FakeOAuth, MemoryStore, type LogCapture } from './fakes.js';

const HOUR = 3_600_000;
/** expires_in 5_011_271 s minus a 10% margin. */
const ROTATE_AFTER = 4_510_143_900;

interface Rig {
  clock: FakeClock;
  oauth: FakeOAuth;
  store: MemoryStore;
  logs: LogCapture;
  fatal: AppError[];
  m: TokenManager;
}

function rig(t: TestContext, overrides: Partial<TokenManagerOptions> = {}): Rig {
  const clock = new FakeClock();
  const oauth = new FakeOAuth(clock);
  const store = new MemoryStore();
  const logs = captureLogs();
  const fatal: AppError[] = [];
  const m = new TokenManager({
    clientId: CLIENT_ID,
    oauth,
    cache: store,
    clock,
    logger: logs.logger,
    canMint: true,
    random: () => 0,
    onFatal: (err) => fatal.push(err),
    ...overrides,
  });
  t.after(() => m.close());
  return { clock, oauth, store, logs, fatal, m };
}

test('TokenManager.start() rotates a 58-day token at expiry minus 10%, not at the 2^31-1 ms timer limit nor at once', async (t) => {
  const r = rig(t, { validateIntervalMs: 100 * 24 * HOUR });
  const t0 = r.clock.now();
  await r.m.start();
  assert.equal(r.oauth.mintCalls, 1);
  await r.clock.advance(1);
  assert.equal(r.oauth.mintCalls, 1, 'no early rotation after ~1 ms (timer overflow)');
  await r.clock.advance(MAX_TIMER_MS);
  assert.equal(r.oauth.mintCalls, 1, 'no rotation when the first clamped sleep ends');
  await r.clock.advance(t0 + ROTATE_AFTER - 1 - r.clock.now());
  assert.equal(r.oauth.mintCalls, 1, 'not a millisecond early');
  await r.clock.advance(1);
  assert.equal(r.oauth.mintCalls, 2, 'rotated exactly at expiresAt - margin');
  assert.ok(Math.max(...r.clock.sleeps) <= MAX_TIMER_MS, 'every sleep is clamped');
  assert.deepEqual(r.oauth.revoked, [r.oauth.minted[0]], 'the old token is revoked after the rotation');
  assert.deepEqual(r.m.stats, { mints: 2, validations: 0, revocations: 1, rotations: 1 });
  assert.equal(r.store.value?.accessToken, r.oauth.minted[1]);
  assert.equal((await r.m.getToken()).reveal(), r.oauth.minted[1]);
  const rotated = r.logs.records().find((l) => l.msg === 'Rotated the app token');
  assert.ok(rotated && rotated.current !== rotated.previous);
  assert.ok(!r.logs.lines.join('').includes('minted-app-token'), 'no token value in the logs');
});

test('TokenManager.start() validates hourly and still rotates a 58-day token at the right time', async (t) => {
  const r = rig(t);
  const t0 = r.clock.now();
  await r.m.start();
  await r.clock.advance(5 * HOUR);
  assert.deepEqual(r.oauth.validatedAt, [1, 2, 3, 4, 5].map((h) => t0 + h * HOUR));
  assert.equal(r.m.stats.validations, 5);
  assert.equal(r.m.status().validatedAt, t0 + 5 * HOUR);
  await r.clock.advance(t0 + ROTATE_AFTER - 1 - r.clock.now());
  assert.equal(r.oauth.mintCalls, 1);
  assert.equal(r.m.stats.validations, Math.floor(ROTATE_AFTER / HOUR));
  await r.clock.advance(1);
  assert.equal(r.oauth.mintCalls, 2);
  assert.equal(r.m.stats.rotations, 1);
});

test('TokenManager loop re-mints when the hourly validation answers 401', async (t) => {
  const r = rig(t);
  const first = await (async () => {
    await r.m.start();
    return r.m.getToken();
  })();
  r.oauth.kill(first.reveal());
  await r.clock.advance(HOUR);
  assert.equal(r.oauth.mintCalls, 2);
  const next = await r.m.getToken();
  assert.ok(!next.sameValueAs(first));
  assert.equal(r.m.status().state, 'ok');
  assert.equal(r.m.stats.rotations, 0, 'a re-mint after a 401 is not a rotation');
});

test('TokenManager loop calls onFatal once and stops when a supplied token turns invalid', async (t) => {
  const r = rig(t, { suppliedToken: 'supplied-app-token-loop' });
  r.oauth.add('supplied-app-token-loop');
  await r.m.start();
  r.oauth.kill('supplied-app-token-loop');
  await r.clock.advance(HOUR);
  assert.deepEqual(r.fatal.map((e) => e.code), ['TOKEN_INVALID']);
  assert.equal(r.m.status().state, 'refused');
  await assert.rejects(r.m.getToken(), { code: 'TOKEN_INVALID' });
  await r.clock.advance(5 * HOUR);
  assert.equal(r.oauth.validatedAt.length, 2, 'the loop stopped');
  assert.equal(r.oauth.mintCalls, 0);
  assert.equal(r.fatal.length, 1);
});

test('TokenManager.start() rejects a supplied user token without calling onFatal or minting', async (t) => {
  const r = rig(t, { suppliedToken: 'supplied-user-token-start' });
  r.oauth.add('supplied-user-token-start', { userId: '141981764' });
  await assert.rejects(r.m.start(), { code: 'USER_TOKEN_REFUSED' });
  assert.deepEqual(r.fatal, []);
  assert.equal(r.oauth.mintCalls, 0);
  assert.equal(r.clock.pending, 0, 'no loop runs');
});

test('TokenManager.start() resolves after a failed mint, reports it in status() and retries in the background', async (t) => {
  const r = rig(t);
  r.oauth.mintFailures.push(new TwitchAuthError(403, 'invalid client secret'));
  await r.m.start();
  assert.equal(r.m.status().state, 'refused');
  assert.equal(r.m.status().lastError?.code, 'TWITCH_AUTH_FAILED');
  await r.clock.advance(499);
  assert.equal(r.oauth.mintCalls, 1);
  await r.clock.advance(1);
  assert.equal(r.oauth.mintCalls, 2);
  assert.equal(r.m.status().state, 'ok');
  assert.equal(r.m.status().lastError, undefined);
});

test('TokenManager loop keeps retrying a failing rotation with backoff capped at 5 minutes, using the old token meanwhile', async (t) => {
  const r = rig(t, { validateIntervalMs: 100 * 24 * HOUR, random: () => 0.999999 });
  const t0 = r.clock.now();
  await r.m.start();
  const first = await r.m.getToken();
  for (let i = 0; i < 60; i++) r.oauth.mintFailures.push(new TwitchUnreachableError('down'));
  await r.clock.advance(t0 + ROTATE_AFTER - r.clock.now() + 2_000);
  assert.equal(r.oauth.mintCalls, 4, 'one rotation attempt: three mint attempts');
  assert.equal(r.m.status().state, 'expiring');
  assert.equal(r.m.status().lastError?.code, 'TOKEN_UNAVAILABLE');
  assert.ok((await r.m.getToken()).sameValueAs(first), 'the unexpired token is still served');
  const before = r.clock.sleeps.length;
  await r.clock.advance(3 * HOUR);
  const retrySleeps = r.clock.sleeps.slice(before, -1); // the last one waits for the new token's validation
  assert.ok(Math.max(...retrySleeps) <= 300_000, `loop backoff capped: ${Math.max(...retrySleeps)}`);
  assert.ok(retrySleeps.filter((ms) => ms >= 290_000).length >= 5, 'the cap is reached and kept');
  assert.equal(r.oauth.mintCalls, 62);
  assert.equal(r.m.status().state, 'ok', 'eventually rotated');
  assert.equal(r.m.stats.rotations, 1);
});

test('TokenManager loop logs a failed revoke of the old token at warn and keeps the new token', async (t) => {
  const r = rig(t, { validateIntervalMs: 100 * 24 * HOUR });
  await r.m.start();
  r.oauth.revokeFailure = new TwitchUnreachableError('revoke failed');
  await r.clock.advance(ROTATE_AFTER);
  assert.equal(r.m.stats.rotations, 1);
  assert.equal(r.m.stats.revocations, 0);
  assert.equal((await r.m.getToken()).reveal(), r.oauth.minted[1]);
  const warn = r.logs.records().find((l) => l.msg === 'Could not revoke the previous app token');
  assert.equal(warn?.level, 'warn');
});

test('TokenManager.start() is idempotent and close() stops the loop', async (t) => {
  const r = rig(t);
  await Promise.all([r.m.start(), r.m.start()]);
  await r.m.start();
  assert.equal(r.oauth.mintCalls, 1);
  assert.equal(r.clock.pending, 1, 'one loop');
  await r.m.close();
  await r.m.close();
  assert.equal(r.clock.pending, 0);
  await r.clock.advance(3 * HOUR);
  assert.equal(r.oauth.validatedAt.length, 0);
});

test('TokenManager loop ends when the start() signal aborts', async (t) => {
  const r = rig(t);
  const ac = new AbortController();
  await r.m.start(ac.signal);
  ac.abort();
  await r.clock.advance(0);
  assert.equal(r.clock.pending, 0);
  await r.clock.advance(2 * HOUR);
  assert.equal(r.m.stats.validations, 0);
});

test('TokenManager loop picks up a token replaced by tokenRejected() and validates it an hour later', async (t) => {
  const r = rig(t);
  const t0 = r.clock.now();
  await r.m.start();
  const old = await r.m.getToken();
  await r.clock.advance(HOUR / 2);
  await r.m.tokenRejected(old);
  await r.clock.advance(HOUR);
  assert.deepEqual(r.oauth.validatedAt, [t0 + HOUR + HOUR / 2]);
});
