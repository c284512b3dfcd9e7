import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextStep } from '../../src/auth/token-loop.js';
import { fingerprintOf, isExpiring, rotationDeadline, rotationMargin } from '../../src/auth/token-policy.js';
import { AppToken } from '../../src/twitch/tokens.js';
import { ValidateResponse } from '../../src/twitch/wire.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { CLIENT_ID, FakeOAuth } from './fakes.js';

const HOUR = 3_600_000;

test('rotationMargin() is 10% of a long lifetime', () => {
  assert.equal(rotationMargin({ obtainedAt: 0, expiresAt: 5_011_271_000 }), 501_127_100);
});

test('rotationMargin() is at least one hour for a token of a few hours', () => {
  assert.equal(rotationMargin({ obtainedAt: 0, expiresAt: 4 * HOUR }), HOUR);
});

test('rotationMargin() never exceeds half the lifetime of a short test token', () => {
  assert.equal(rotationMargin({ obtainedAt: 0, expiresAt: 60_000 }), 30_000);
  assert.equal(rotationMargin({ obtainedAt: 10, expiresAt: 0 }), 0);
});

test('rotationDeadline() is expiry minus margin, and Infinity for a never-expiring token', () => {
  assert.equal(rotationDeadline({ obtainedAt: 1000, expiresAt: 1000 + 5_011_271_000 }), 1000 + 4_510_143_900);
  assert.equal(rotationDeadline({ obtainedAt: 1000, expiresAt: Number.MAX_SAFE_INTEGER }), Infinity);
  assert.equal(isExpiring({ obtainedAt: 0, expiresAt: 10 * HOUR }, 9 * HOUR - 1), false);
  assert.equal(isExpiring({ obtainedAt: 0, expiresAt: 10 * HOUR }, 9 * HOUR), true);
});

test('fingerprintOf() matches AppToken.fingerprint for the same value', () => {
  const token = new FakeOAuth(new FakeClock()).tokenFor('fingerprint-me-please');
  assert.equal(fingerprintOf('fingerprint-me-please'), token.fingerprint);
  assert.match(token.fingerprint, /^sha256:[0-9a-f]{8}$/);
});

test('nextStep() validates hourly and rotates at the margin, whichever comes first; a supplied token is never rotated', () => {
  const clock = new FakeClock();
  const oauth = new FakeOAuth(clock);
  const t0 = clock.now();
  const long = oauth.tokenFor('long-lived-token-value');
  assert.deepEqual(nextStep(long, { validateIntervalMs: HOUR }, t0), { action: 'validate', at: t0 + HOUR });
  const short = oauth.tokenFor('short-lived-token-value', undefined, 7200);
  assert.deepEqual(nextStep(short, { validateIntervalMs: HOUR }, t0), { action: 'rotate', at: t0 + HOUR });
  const tiny = oauth.tokenFor('tiny-lived-token-value', undefined, 60);
  assert.deepEqual(nextStep(tiny, { validateIntervalMs: HOUR }, t0), { action: 'rotate', at: t0 + 30_000 });
  const supplied = AppToken.fromValidation('supplied-token-value', ValidateResponse.parse({ client_id: CLIENT_ID, expires_in: 60 }), {
    expectedClientId: CLIENT_ID,
    now: t0,
    origin: 'supplied',
  });
  assert.deepEqual(nextStep(supplied, { validateIntervalMs: HOUR }, t0), { action: 'validate', at: t0 + HOUR });
  assert.deepEqual(nextStep(undefined, { validateIntervalMs: HOUR }, t0), { action: 'acquire', at: t0 });
});
