/**
 * The daemon's hold on creates refused for a missing grant (src/daemon/authorization-watch.ts), on a FakeClock:
 * held for an hour, then tried once more and held again; released at once by a grant event for one of its users;
 * logged once per user and scope set.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthorizationWatch, AUTHORIZATION_RETRY_MS } from '../../src/daemon/authorization-watch.js';
import type { GrantStore } from '../../src/auth/grant-store.js';
import { Registry } from '../../src/lib/metrics.js';
import type { PendingGrant } from '../../src/subscriptions/authorization.js';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import { captureLogs } from '../auth/fakes.js';
import { FakeClock } from '../helpers/fake-clock.js';

const transport = { method: 'webhook' as const, callback: 'https://e.example.com/cb', secret: 'x'.repeat(20) };
const FOLLOW: DesiredSubscription = { type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1', moderator_user_id: '2' }, transport };
const CHEER: DesiredSubscription = { type: 'channel.cheer', version: '1', condition: { broadcaster_user_id: '1' }, transport };
const pending = (userId: string, scopes: string[], waiting: DesiredSubscription[]): PendingGrant => ({ userId, fields: ['x'], scopes, waiting });

function watch() {
  const clock = new FakeClock();
  const logs = captureLogs();
  const recorded: string[] = [];
  const syncs: string[] = [];
  const grants = {
    recordEvent: async (e: { userId: string }) => void recorded.push(`grant ${e.userId}`),
    markRevoked: async (userId: string) => void recorded.push(`revoke ${userId}`),
  } as unknown as GrantStore;
  const w = new AuthorizationWatch({ clientId: 'me', grants, clock, logger: logs.logger, registry: new Registry(), requestSync: (ms, reason) => syncs.push(`${ms} ${reason}`) });
  const warnings = () => logs.records().filter((r) => r.msg === 'Declared subscriptions wait for a user to authorize the app').length;
  return { w, clock, recorded, syncs, warnings };
}

test('a refused create is held for an hour, then sent once more and held again', async () => {
  const { w, clock, warnings } = watch();
  assert.equal(w.held(FOLLOW), false);
  w.onSync([pending('2', ['moderator:read:followers'], [FOLLOW])]);
  assert.equal(w.held(FOLLOW), true);
  assert.equal(w.held(CHEER), false);
  await clock.advance(AUTHORIZATION_RETRY_MS - 1);
  w.onSync([pending('2', ['moderator:read:followers'], [FOLLOW])]);
  assert.equal(w.held(FOLLOW), true, 'a sync within the hour does not extend the hold');
  await clock.advance(1);
  assert.equal(w.held(FOLLOW), false, 'an hour later the create is tried again');
  w.onSync([pending('2', ['moderator:read:followers'], [FOLLOW])]);
  assert.equal(w.held(FOLLOW), true, 'refused again: held another hour');
  assert.equal(warnings(), 1, 'the same user and scopes are logged once');
  w.onSync([pending('2', ['moderator:read:followers'], [FOLLOW]), pending('1', ['bits:read'], [CHEER])]);
  assert.equal(warnings(), 2, 'a new user is logged');
  w.onSync([]);
  assert.equal(w.held(FOLLOW), false, 'nothing waits: no hold');
  w.onSync([pending('2', ['moderator:read:followers'], [FOLLOW])]);
  assert.equal(warnings(), 3, 'waiting again after it was resolved is logged again');
});

test('a grant event for a user releases their holds and asks for a sync a second later; other clients and bad events are ignored', async () => {
  const { w, recorded, syncs } = watch();
  w.onSync([pending('2', ['moderator:read:followers'], [FOLLOW]), pending('1', ['bits:read'], [CHEER])]);
  w.onNotification('user.authorization.grant', { client_id: 'someone-else', user_id: '2', user_login: 'm' });
  w.onNotification('user.authorization.grant', { client_id: 'me', user_id: 2 });
  w.onNotification('channel.follow', { client_id: 'me', user_id: '2' });
  assert.deepEqual(syncs, []);
  w.onNotification('user.authorization.grant', { client_id: 'me', user_id: '2', user_login: 'mod', user_name: 'Mod' });
  assert.equal(w.held(FOLLOW), false);
  assert.equal(w.held(CHEER), true, 'only that user\'s holds');
  assert.deepEqual(syncs, ['1000 authorization granted']);
  w.onNotification('user.authorization.revoke', { client_id: 'me', user_id: '1', user_login: null, user_name: null });
  assert.deepEqual(syncs, ['1000 authorization granted', '1000 authorization revoked']);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(recorded, ['grant 2', 'revoke 1']);
  assert.deepEqual((w.status().revoked as Array<{ user_id: string; login: string | null }>).map((r) => [r.user_id, r.login]), [['1', null]]);
});
