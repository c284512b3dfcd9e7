/**
 * Issue 2, "Done when" 7: declarative sync end to end against the emulator. A change in the desired list and
 * in Twitch's statuses produces exactly the expected creates, recreates and deletes; a blocked subscription
 * is reported and left alone; a subscription with another callback is never touched; a third sync of the
 * unchanged state sends no write at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syncSubscriptions, type SyncOutcome } from '../../src/subscriptions/sync.js';
import type { WireSubscription } from '../../src/emulator/index.js';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import { body, CALLBACK, desired, FOREIGN_CALLBACK, helixTally, startRig } from './helpers.js';

const userOf = (s: { condition: Record<string, string> }): string => s.condition.broadcaster_user_id ?? '?';
const users = (subs: readonly { condition: Record<string, string> }[]): string[] => subs.map(userOf).sort();

describe('syncSubscriptions() end to end against the emulator', () => {
  it('creates, recreates, prunes, reports blocked, spares foreign subscriptions, then converges to zero writes', async (t) => {
    const { emu, stack } = await startRig(t);
    const sync = (list: readonly DesiredSubscription[]): Promise<SyncOutcome> =>
      syncSubscriptions({ api: stack.helix, desired: list, callbackUrl: CALLBACK, prune: true, dryRun: false });

    // Another team's subscriptions on the same client ID: one for a user we also declare, one we will prune.
    const foreignTwin = (await stack.helix.create(body('100', { callback: FOREIGN_CALLBACK }))).subscription;
    const foreignOther = (await stack.helix.create(body('900', { callback: FOREIGN_CALLBACK, type: 'stream.offline' }))).subscription;
    emu.setSubscriptionStatus(foreignOther.id, 'notification_failures_exceeded');

    const first10 = Array.from({ length: 10 }, (_, i) => desired(String(100 + i)));
    const one = await sync(first10);
    assert.equal(one.result?.created.length, 10);
    assert.deepEqual(one.plan.delete, []);
    const ours = (): WireSubscription[] => emu.subscriptions().filter((s) => s.transport.callback === CALLBACK);
    assert.deepEqual(users(ours()), users(first10));
    const byUser = new Map(ours().map((s) => [userOf(s), s]));

    // Remove 100, add 110; Twitch disabled 101 (our receiver failed) and 102 (the user revoked the app).
    const second10 = [...first10.slice(1), desired('110')];
    emu.setSubscriptionStatus(byUser.get('101')!.id, 'notification_failures_exceeded');
    emu.setSubscriptionStatus(byUser.get('102')!.id, 'authorization_revoked');
    emu.resetStats();

    const two = await sync(second10);
    assert.deepEqual(users(two.plan.create), ['110']);
    assert.deepEqual(users(two.plan.recreate.map((r) => r.desired)), ['101']);
    assert.deepEqual(two.plan.delete.map((d) => [d.existing.id, d.reason]), [[byUser.get('100')!.id, 'pruned']]);
    assert.deepEqual(two.plan.blocked.map((b) => [b.existing.id, b.reason]), [[byUser.get('102')!.id, 'authorization_revoked']]);
    assert.equal(two.plan.keep.length, 7);
    assert.deepEqual(two.plan.unmanaged, []);
    assert.deepEqual(
      { created: users(two.result!.created), recreated: two.result!.recreated, deleted: two.result!.deleted, failed: two.result!.failed },
      { created: ['110'], recreated: 1, deleted: 1, failed: [] },
    );
    assert.deepEqual(helixTally(emu), { 'GET 200': 1, 'DELETE 204': 2, 'POST 202': 2 }, 'exactly 2 deletes and 2 creates');

    const after = new Map(ours().map((s) => [userOf(s), s]));
    assert.deepEqual([...after.keys()].sort(), ['101', '102', '103', '104', '105', '106', '107', '108', '109', '110']);
    assert.notEqual(after.get('101')!.id, byUser.get('101')!.id, '101 was recreated under a new id');
    assert.equal(after.get('101')!.status, 'enabled');
    assert.deepEqual(after.get('102'), { ...byUser.get('102')!, status: 'authorization_revoked' }, 'blocked one untouched');
    for (const u of ['103', '109']) assert.equal(after.get(u)!.id, byUser.get(u)!.id, `${u} kept as it was`);
    const foreign = emu.subscriptions().filter((s) => s.transport.callback === FOREIGN_CALLBACK);
    assert.deepEqual(foreign.map((s) => [s.id, s.status]), [
      [foreignTwin.id, 'enabled'],
      [foreignOther.id, 'notification_failures_exceeded'],
    ], 'foreign subscriptions are never deleted nor recreated, whatever their status');

    emu.resetStats();
    const three = await sync(second10);
    assert.deepEqual(helixTally(emu), { 'GET 200': 1 }, 'the third sync only lists');
    assert.deepEqual(three.result, { created: [], adopted: [], recreated: 0, deleted: 0, migrated: 0, failed: [], removed: [], added: [] });
    assert.equal(three.plan.keep.length, 9);
    assert.deepEqual(three.plan.blocked.map((b) => b.existing.id), [byUser.get('102')!.id], 'still reported as blocked');
  });
});
