/**
 * Issue 2, "Done when" 4: `list()` follows the emulator's cursors across every page, and each of Twitch's
 * filters (type, status, user_id, subscription_id) returns exactly the right subset, oldest first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { body, startRig } from './helpers.js';

describe('HelixEventSubClient.list() against the emulator with pageSize 4', () => {
  it('returns all 25 subscriptions in 7 pages, and the type, status, user_id and subscription_id subsets', async (t) => {
    const { emu, stack } = await startRig(t, { emulator: { pageSize: 4 } });
    // 15 stream.online (users 1-15) and 10 stream.offline (users 1-10): user 3 appears in both types.
    for (let i = 1; i <= 15; i++) await stack.helix.create(body(String(i)));
    for (let i = 1; i <= 10; i++) await stack.helix.create(body(String(i), { type: 'stream.offline' }));
    const all = emu.subscriptions();
    assert.equal(all.length, 25);
    const revoked = [all[2]!, all[11]!, all[20]!, all[24]!];
    for (const s of revoked) emu.setSubscriptionStatus(s.id, 'authorization_revoked');
    emu.resetStats();

    const listed = await stack.helix.list({});
    assert.equal(listed.pages, 7);
    assert.equal(emu.stats.helix.byMethod.GET, 7, 'one GET per page');
    assert.deepEqual(listed.subscriptions.map((s) => s.id), all.map((s) => s.id), 'every subscription, oldest first, no repeats');
    assert.equal(listed.totalCost, 21, 'total_cost counts the 21 live subscriptions (cost 1 each)');
    assert.equal(listed.maxTotalCost, 10_000);

    const offline = await stack.helix.list({ type: 'stream.offline' });
    assert.deepEqual(offline.subscriptions.map((s) => s.id), all.slice(15).map((s) => s.id));
    assert.equal(offline.pages, 3);

    const byStatus = await stack.helix.list({ status: 'authorization_revoked' });
    assert.deepEqual(byStatus.subscriptions.map((s) => s.id), revoked.map((s) => s.id));
    assert.equal(byStatus.pages, 1);
    const enabled = await stack.helix.list({ status: 'enabled' });
    assert.equal(enabled.subscriptions.length, 21);
    assert.ok(enabled.subscriptions.every((s) => s.status === 'enabled'));
    assert.equal(enabled.pages, 6);

    const user3 = await stack.helix.list({ user_id: '3' });
    assert.deepEqual(
      user3.subscriptions.map((s) => `${s.type}:${s.condition.broadcaster_user_id}`),
      ['stream.online:3', 'stream.offline:3'],
    );
    const user12 = await stack.helix.list({ user_id: '12' });
    assert.deepEqual(user12.subscriptions.map((s) => s.id), [all[11]!.id]);
    const none = await stack.helix.list({ user_id: '999' });
    assert.deepEqual([none.subscriptions.length, none.pages], [0, 1]);

    const one = await stack.helix.list({ subscription_id: all[17]!.id });
    assert.deepEqual(one.subscriptions.map((s) => s.id), [all[17]!.id]);
    assert.equal(emu.stats.helix.byStatus['400'], undefined, 'no filter was sent in a form Twitch refuses');
  });
});
