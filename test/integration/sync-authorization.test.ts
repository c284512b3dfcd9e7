/**
 * Issue 12: sync and user authorization, against the emulator (which refuses a create without the grant, as
 * Twitch does). A create refused for a missing grant becomes a `needsAuthorization` entry naming the user, the
 * condition field and the scopes; the implicit grant/revoke subscriptions come with any type that needs a grant;
 * a held create is sent only once Twitch shows the grant; a subscription revoked by a disconnect is reported
 * waiting, then recreated once the user grants again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syncSubscriptions, type SyncOptions, type SyncOutcome } from '../../src/subscriptions/sync.js';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import { CALLBACK, SECRET, desired, helixTally, startRig, type Rig } from './helpers.js';

const FOLLOW: DesiredSubscription = {
  type: 'channel.follow',
  version: '2',
  condition: { broadcaster_user_id: '1000', moderator_user_id: '2000' },
  transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
};
const CHEER: DesiredSubscription = { ...FOLLOW, type: 'channel.cheer', version: '1', condition: { broadcaster_user_id: '1000' } };
const ONLINE = desired('1000');

function syncer(rig: Rig, base: Partial<SyncOptions> = {}) {
  return (list: readonly DesiredSubscription[], more: Partial<SyncOptions> = {}): Promise<SyncOutcome> =>
    syncSubscriptions({
      api: rig.stack.helix,
      authorizations: rig.stack.helix,
      clientId: rig.client.clientId,
      desired: list,
      callbackUrl: CALLBACK,
      prune: false,
      dryRun: false,
      ...base,
      ...more,
    });
}

const types = (rig: Rig): string[] => rig.emu.subscriptions().filter((s) => s.status === 'enabled').map((s) => `${s.type} v${s.version}`).sort();
const waitingOf = (o: SyncOutcome) => o.needsAuthorization.map((p) => ({ user: p.userId, fields: p.fields, scopes: p.scopes, subs: p.waiting.map((d) => d.type).sort() }));

describe('sync with user authorization', () => {
  it('a refused create waits for the moderator it names; the implicit grant/revoke subscriptions are created; no failure is reported', async (t) => {
    const rig = await startRig(t);
    const sync = syncer(rig);
    const dry = await sync([ONLINE, FOLLOW, CHEER], { dryRun: true });
    assert.deepEqual(waitingOf(dry), [
      { user: '1000', fields: ['broadcaster_user_id'], scopes: ['bits:read'], subs: ['channel.cheer'] },
      { user: '2000', fields: ['moderator_user_id'], scopes: ['moderator:read:followers'], subs: ['channel.follow'] },
    ]);
    assert.deepEqual(
      dry.plan.create.filter((d) => d.implicit).map((d) => [d.type, d.condition.client_id]),
      [
        ['user.authorization.grant', rig.client.clientId],
        ['user.authorization.revoke', rig.client.clientId],
      ],
    );
    assert.deepEqual(types(rig), [], 'a dry run creates nothing');

    const one = await sync([ONLINE, FOLLOW, CHEER]);
    assert.deepEqual(types(rig), ['stream.online v1', 'user.authorization.grant v1', 'user.authorization.revoke v1']);
    assert.deepEqual(one.result?.failed, [], 'a missing grant is not an ordinary failure');
    assert.deepEqual(waitingOf(one), waitingOf(dry));
    assert.equal(helixTally(rig.emu)['POST 403'], 2, 'Twitch refused the follow and the cheer');
  });

  it('no implicit subscription when no declared type needs a grant, or without a client id', async (t) => {
    const rig = await startRig(t);
    await syncer(rig)([ONLINE]);
    await syncer(rig, { clientId: undefined })([ONLINE, CHEER]);
    assert.deepEqual(types(rig), ['stream.online v1']);
  });

  it('a held create is not sent until Twitch shows the grant; then it is created without waiting for the hold to end', async (t) => {
    const rig = await startRig(t);
    const sync = syncer(rig, { held: (d) => d.type === 'channel.follow' });
    const one = await sync([ONLINE, FOLLOW]);
    assert.equal(helixTally(rig.emu)['POST 403'], undefined, 'the held create was not sent');
    assert.deepEqual(waitingOf(one), [{ user: '2000', fields: ['moderator_user_id'], scopes: ['moderator:read:followers'], subs: ['channel.follow'] }]);
    assert.equal(one.plan.create.some((d) => d.type === 'channel.follow'), false);

    rig.emu.registerUserToken({ userId: '2000', scopes: ['moderator:read:followers'] });
    const two = await sync([ONLINE, FOLLOW]);
    assert.deepEqual(two.needsAuthorization, []);
    assert.deepEqual(two.result?.created.map((s) => s.type), ['channel.follow']);
  });

  it('a disconnect: the revoked subscription is reported blocked and waiting; a new grant brings it back on the next sync', async (t) => {
    const rig = await startRig(t);
    const sync = syncer(rig);
    rig.emu.registerUserToken({ userId: '2000', scopes: ['moderator:read:followers'] });
    await sync([FOLLOW]);
    const follow = rig.emu.subscriptions().find((s) => s.type === 'channel.follow')!;
    assert.equal(follow.status, 'enabled');

    assert.deepEqual(rig.emu.disconnectUser('2000'), [follow.id]);
    const blocked = await sync([FOLLOW]);
    assert.deepEqual(blocked.plan.blocked.map((b) => [b.existing.id, b.reason]), [[follow.id, 'authorization_revoked']]);
    assert.deepEqual(waitingOf(blocked), [{ user: '2000', fields: ['moderator_user_id'], scopes: ['moderator:read:followers'], subs: ['channel.follow'] }]);
    assert.equal(blocked.result?.recreated, 0);

    rig.emu.registerUserToken({ userId: '2000', scopes: ['moderator:read:followers'] });
    const back = await sync([FOLLOW]);
    assert.deepEqual(back.plan.recreate.map((r) => r.existing.id), [follow.id]);
    assert.equal(back.result?.recreated, 1);
    assert.deepEqual(back.needsAuthorization, []);
    const now = rig.emu.subscriptions().filter((s) => s.type === 'channel.follow');
    assert.deepEqual(now.map((s) => s.status), ['enabled']);
    assert.notEqual(now[0]!.id, follow.id);
  });

  it('when Twitch cannot say who granted what, the sync still runs and the refused subscriptions wait for every user they name', async (t) => {
    const rig = await startRig(t);
    rig.emu.injectFault({ kind: 'status', status: 400, match: { method: 'GET', pathPrefix: '/helix/authorization/users' }, times: 100 });
    const chat: DesiredSubscription = { ...FOLLOW, type: 'channel.chat.message', version: '1', condition: { broadcaster_user_id: '1000', user_id: '3000' } };
    const one = await syncer(rig)([ONLINE, chat]);
    assert.deepEqual(types(rig), ['stream.online v1', 'user.authorization.grant v1', 'user.authorization.revoke v1']);
    assert.deepEqual(
      one.needsAuthorization.map((p) => p.userId),
      ['1000', '3000'],
    );
  });
});
