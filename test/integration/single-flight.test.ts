/**
 * Issue 2, "Done when" 1: a storm of 401s after the app token died costs exactly one mint, and every call is
 * retried once with the new token — proven against the emulator, counting what it saw.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { startRig } from './helpers.js';

async function storm(t: TestContext, calls: number, agent?: { connections: number }): Promise<void> {
  // A big bucket: this test is about 401s, not about pacing (1 000 retries would empty Twitch's 800).
  const { emu, stack } = await startRig(t, { emulator: { bucket: { limit: 100_000, windowMs: 60_000 } }, agent });
  const first = await stack.tokens.getToken();
  assert.equal(emu.stats.mints, 1);
  emu.expireAllTokens();
  emu.resetStats();

  const results = await Promise.all(Array.from({ length: calls }, () => stack.helix.list({})));

  assert.equal(emu.stats.mints, 1, 'exactly one new mint for the whole storm');
  assert.equal(stack.tokens.stats.mints, 2, 'the engine counts the first mint and the single re-mint');
  assert.equal(emu.stats.helix.total, 2 * calls, 'each call: one failed attempt and one retry, nothing more');
  assert.deepEqual(emu.stats.helix.byStatus, { '401': calls, '200': calls });
  const retried = emu.stats.requests.filter((r) => r.path === '/helix/eventsub/subscriptions');
  assert.equal(retried.filter((r) => r.auth === 'invalid').length, calls, 'every first attempt carried the dead token');
  assert.equal(retried.filter((r) => r.auth === 'app' && r.status === 200).length, calls, 'every retry carried the new one');
  assert.ok(results.every((r) => r.pages === 1 && r.subscriptions.length === 0));
  const current = await stack.tokens.getToken();
  assert.ok(!current.sameValueAs(first), 'the engine now uses the new token');
  assert.equal(emu.stats.mints, 1, 'and getToken() did not mint again');
}

describe('TokenManager + HelixEventSubClient against the emulator: concurrent 401s', () => {
  it('100 concurrent list() calls that all get 401 cause exactly one mint and one retry each', async (t) => {
    await storm(t, 100);
  });

  it('1 000 concurrent list() calls that all get 401 still cause exactly one mint', async (t) => {
    await storm(t, 1_000, { connections: 64 });
  });
});
