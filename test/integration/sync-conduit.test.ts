/**
 * Issue 14, item 3: sync in conduit mode end to end against the emulator (its conduits, and conduit
 * subscriptions created with the app token). Declared subscriptions go to the conduit; switching the transport
 * migrates with no gap (every twin created before any old subscription is deleted, and a twin that cannot be
 * created leaves its old subscription in place); a replaced conduit's leftovers are pruned; nothing foreign is
 * touched; an unchanged state converges to a sync that only lists.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withTarget } from '../../src/config/subscriptions-file.js';
import type { WireSubscription } from '../../src/emulator/index.js';
import { syncSubscriptions, type SyncOutcome } from '../../src/subscriptions/sync.js';
import type { DeclaredSubscription, DeliveryTarget, Ownership } from '../../src/twitch/subscription.js';
import { body, CALLBACK, FOREIGN_CALLBACK, helixTally, SECRET, startRig, type Rig } from './helpers.js';

const WEBHOOK: DeliveryTarget = { method: 'webhook', callback: CALLBACK, secret: SECRET };
const onConduit = (id: string): DeliveryTarget => ({ method: 'conduit', conduit_id: id });

const declared = (users: readonly string[], type = 'stream.online'): DeclaredSubscription[] =>
  users.map((u) => ({ type, version: '1', condition: { broadcaster_user_id: u } }));

/** One sync of `list` onto `target`, owning `ownership`. */
function syncer(rig: Rig) {
  return (list: readonly DeclaredSubscription[], target: DeliveryTarget, ownership: Ownership, prune = true): Promise<SyncOutcome> =>
    syncSubscriptions({ api: rig.stack.helix, desired: withTarget(list, target), ownership, prune, dryRun: false });
}

/** `user transport` of each subscription of the emulator, sorted: where each one's events go. */
function placement(rig: Rig, filter: (s: WireSubscription) => boolean = () => true): string[] {
  return rig.emu
    .subscriptions()
    .filter(filter)
    .map((s) => `${s.condition.broadcaster_user_id} ${s.transport.method === 'conduit' ? `conduit:${s.transport.conduit_id}` : s.transport.callback}`)
    .sort();
}

/** The order of subscription writes the emulator answered: `POST 202`, `DELETE 204`... */
function writes(rig: Rig): string[] {
  return rig.emu.stats.requests
    .filter((r) => r.path.startsWith('/helix/eventsub/subscriptions') && r.method !== 'GET')
    .map((r) => `${r.method} ${r.status}`);
}

describe('syncSubscriptions() in conduit mode against the emulator', () => {
  it('migrates webhooks to the conduit with every twin created before any delete, then converges; foreign ones untouched', async (t) => {
    const rig = await startRig(t);
    const sync = syncer(rig);
    const users = ['101', '102', '103', '104'];
    const foreign = (await rig.stack.helix.create(body('101', { callback: FOREIGN_CALLBACK }))).subscription;
    await sync(declared(users), WEBHOOK, { callbackUrl: CALLBACK, conduitIds: [] });
    assert.deepEqual(placement(rig, (s) => s.id !== foreign.id), users.map((u) => `${u} ${CALLBACK}`));

    const conduit = await rig.stack.helix.createConduit(1);
    const ownership = { callbackUrl: CALLBACK, conduitIds: [conduit.id] };
    rig.emu.resetStats();
    const moved = await sync(declared(users), onConduit(conduit.id), ownership, false);
    assert.deepEqual(
      { create: moved.plan.create.length, migrate: moved.plan.migrate.length, delete: moved.plan.delete.length },
      { create: 4, migrate: 4, delete: 0 },
      'a migration even with prune off',
    );
    assert.deepEqual([moved.result?.created.length, moved.result?.migrated, moved.result?.failed], [4, 4, []]);
    assert.deepEqual(writes(rig), [...Array(4).fill('POST 202'), ...Array(4).fill('DELETE 204')], 'no gap: every create before any delete');
    assert.deepEqual(placement(rig, (s) => s.id !== foreign.id), users.map((u) => `${u} conduit:${conduit.id}`));
    assert.ok(rig.emu.subscriptions().every((s) => s.id === foreign.id || s.status === 'enabled'), 'conduit subscriptions are enabled at once');
    assert.deepEqual(placement(rig, (s) => s.id === foreign.id), [`101 ${FOREIGN_CALLBACK}`], 'the foreign twin stays');

    rig.emu.resetStats();
    const again = await sync(declared(users), onConduit(conduit.id), ownership);
    assert.deepEqual(helixTally(rig.emu), { 'GET 200': 1 }, 'an unchanged state only lists');
    assert.equal(again.plan.keep.length, 4);
  });

  it('a twin Twitch refuses keeps its old webhook; the others move', async (t) => {
    const rig = await startRig(t);
    const sync = syncer(rig);
    await sync(declared(['201', '202']), WEBHOOK, { callbackUrl: CALLBACK, conduitIds: [] });
    // Two foreign twins of 201: with ours, the 3 per type and condition that Twitch allows. The conduit twin draws a 429.
    for (const cb of [FOREIGN_CALLBACK, `${FOREIGN_CALLBACK}/2`]) await rig.stack.helix.create(body('201', { callback: cb }));
    const conduit = await rig.stack.helix.createConduit(1);

    const outcome = await sync(declared(['201', '202']), onConduit(conduit.id), { callbackUrl: CALLBACK, conduitIds: [conduit.id] });
    assert.deepEqual(outcome.result?.failed.map((f) => [f.action, f.key, f.code]), [['create', 'stream.online v1 broadcaster_user_id=201', 'SUBSCRIPTION_LIMIT']]);
    assert.equal(outcome.result?.migrated, 1);
    const ours = (s: WireSubscription): boolean => s.transport.callback === CALLBACK || s.transport.method === 'conduit';
    assert.deepEqual(placement(rig, ours), [`201 ${CALLBACK}`, `202 conduit:${conduit.id}`], '201 still delivered by its webhook');
  });

  it('migrates back from the conduit to webhooks when the transport returns to webhook', async (t) => {
    const rig = await startRig(t);
    const sync = syncer(rig);
    const conduit = await rig.stack.helix.createConduit(1);
    const users = ['301', '302'];
    await sync(declared(users), onConduit(conduit.id), { conduitIds: [conduit.id] });
    assert.deepEqual(placement(rig), users.map((u) => `${u} conduit:${conduit.id}`));

    rig.emu.resetStats();
    const back = await sync(declared(users), WEBHOOK, { callbackUrl: CALLBACK, conduitIds: [conduit.id] });
    assert.deepEqual([back.result?.created.length, back.result?.migrated], [2, 2]);
    assert.deepEqual(writes(rig), ['POST 202', 'POST 202', 'DELETE 204', 'DELETE 204']);
    assert.deepEqual(placement(rig), users.map((u) => `${u} ${CALLBACK}`));
  });

  it("moves a replaced conduit's declared subscriptions to the new one and prunes its leftovers; another conduit is never touched", async (t) => {
    const rig = await startRig(t);
    const sync = syncer(rig);
    const [replaced, foreignConduit] = [await rig.stack.helix.createConduit(1), await rig.stack.helix.createConduit(1)];
    await sync([...declared(['401', '402']), ...declared(['401'], 'stream.offline')], onConduit(replaced.id), { conduitIds: [replaced.id] });
    await sync(declared(['401']), onConduit(foreignConduit.id), { conduitIds: [foreignConduit.id] });
    const current = await rig.stack.helix.createConduit(1);

    const outcome = await sync(declared(['401', '402']), onConduit(current.id), { conduitIds: [current.id, replaced.id] });
    assert.deepEqual(outcome.plan.migrate.map((m) => m.existing.transport.conduit_id), [replaced.id, replaced.id]);
    assert.deepEqual(outcome.plan.delete.map((d) => [d.existing.type, d.reason]), [['stream.offline', 'pruned']]);
    assert.deepEqual(placement(rig), [`401 conduit:${current.id}`, `401 conduit:${foreignConduit.id}`, `402 conduit:${current.id}`].sort());
  });

  it('authorization works the same on the conduit: the implicit grant/revoke subscriptions go there, a refused create waits for its user', async (t) => {
    const rig = await startRig(t);
    const conduit = await rig.stack.helix.createConduit(1);
    const follow: DeclaredSubscription = { type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1000', moderator_user_id: '2000' } };
    const outcome = await syncSubscriptions({
      api: rig.stack.helix,
      authorizations: rig.stack.helix,
      clientId: rig.client.clientId,
      desired: withTarget([...declared(['1000']), follow], onConduit(conduit.id)),
      ownership: { conduitIds: [conduit.id] },
      prune: true,
      dryRun: false,
    });
    assert.deepEqual(outcome.result?.failed, []);
    assert.deepEqual(outcome.needsAuthorization.map((p) => [p.userId, p.scopes]), [['2000', ['moderator:read:followers']]]);
    assert.deepEqual(
      rig.emu.subscriptions().map((s) => `${s.type} ${s.transport.method}:${s.transport.conduit_id}`).sort(),
      ['stream.online', 'user.authorization.grant', 'user.authorization.revoke'].map((type) => `${type} conduit:${conduit.id}`),
    );
  });
});
