/**
 * Issue 2, "Done when" 2: a 58-day app token minted by the emulator is rotated by the token manager's
 * background loop at expiry minus 10% — not earlier (no 2^31-1 ms timer overflow, no hourly-validation
 * mistake), exactly once, and the old token is revoked at the emulator. One FakeClock drives both sides.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_TOKEN_TTL_SECONDS } from '../../src/emulator/options.js';
import type { FakeClock } from '../helpers/fake-clock.js';
import { eventually, startRig, validateStatus } from './helpers.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LIFETIME_MS = DEFAULT_TOKEN_TTL_SECONDS * 1000;
/** expiry − 10% of the lifetime. */
const ROTATE_AFTER_MS = LIFETIME_MS - Math.floor(LIFETIME_MS / 10);

/**
 * Moves the clock to `target`, one wake-up of the token loop at a time, waiting (in real time) for the
 * loop's HTTP work to finish and for it to sleep again before moving on.
 */
async function runUntil(clock: FakeClock, target: number): Promise<void> {
  for (;;) {
    await eventually(() => clock.pending > 0, 'the token loop sleeps');
    const next = clock.nextWake();
    if (next === undefined || next > target) break;
    await clock.advance(next - clock.now());
  }
  await clock.advance(target - clock.now());
  await eventually(() => clock.pending > 0, 'the token loop sleeps');
}

describe('TokenManager.start() against the emulator: rotation of a 58-day token', () => {
  it('validates hourly, rotates exactly once at expiry − 10% (not 1 ms before) and revokes the old token', async (t) => {
    const { emu, clock, stack } = await startRig(t);
    const t0 = clock.now();
    const loop = new AbortController();
    t.after(() => loop.abort());
    await stack.tokens.start(loop.signal);
    assert.equal(emu.stats.mints, 1);
    const old = (await stack.tokens.getToken()).reveal();
    assert.equal(stack.tokens.status().expiresAt, t0 + LIFETIME_MS, 'the engine sees the emulator\'s 58-day lifetime');

    // Day by day to 10 s before the deadline (past the 24.8-day timer limit): validations, no mint.
    for (let day = 1; t0 + day * DAY < t0 + ROTATE_AFTER_MS - 10_000; day++) {
      await runUntil(clock, t0 + day * DAY);
      assert.equal(emu.stats.mints, 1, `no mint on day ${day}`);
    }
    await runUntil(clock, t0 + ROTATE_AFTER_MS - 10_000);
    assert.equal(emu.stats.mints, 1, 'no mint 10 s before expiry − 10%');
    assert.equal(emu.stats.revocations, 0);
    const hours = Math.floor((ROTATE_AFTER_MS - 10_000) / HOUR);
    assert.equal(emu.stats.validations, hours, 'the loop validated the token every hour');
    assert.equal(await validateStatus(emu, old), 200, 'the old token still works before the rotation');

    // Validations ran on whole hours, so /validate's whole-second expires_in kept the expiry exact.
    assert.equal(stack.tokens.status().expiresAt, t0 + LIFETIME_MS);
    await runUntil(clock, t0 + ROTATE_AFTER_MS - 1);
    assert.equal(emu.stats.mints, 1, 'no mint 1 ms before expiry − 10%');
    await runUntil(clock, t0 + ROTATE_AFTER_MS);
    await eventually(() => emu.stats.revocations === 1, 'the old token is revoked');
    assert.equal(emu.stats.mints, 2, 'exactly one mint at expiry − 10%');
    assert.equal(stack.tokens.stats.rotations, 1);
    assert.equal(await validateStatus(emu, old), 401, 'the emulator no longer accepts the old token');

    const current = await stack.tokens.getToken();
    assert.notEqual(current.reveal(), old);
    assert.equal(await validateStatus(emu, current.reveal()), 200);
    assert.equal(current.obtainedAt, t0 + ROTATE_AFTER_MS, 'minted exactly at expiry − 10%');
    assert.equal(current.expiresAt, current.obtainedAt + LIFETIME_MS, 'the new token has a full 58-day life');
    const listed = await stack.helix.list({});
    assert.equal(listed.pages, 1, 'Helix accepts the new token');
    assert.equal(emu.stats.helix.byStatus['401'], undefined, 'no request ever went out with the revoked token');

    await runUntil(clock, clock.now() + DAY);
    assert.equal(emu.stats.mints, 2, 'no second rotation in the day after');
  });
});
