/**
 * Issue 12 in the daemon, in-process: a declared follow waits for its moderator (logged once, held an hour,
 * shown in /status and /metrics); the emulator's `user.authorization.grant` reaches the daemon as Twitch would
 * send it and a sync creates the follow a second later on the clock; a disconnect marks the grant revoked and
 * reports the follow blocked; a new grant brings it back, all in one daemon.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { request, type Agent } from 'undici';
import type { Emulator } from '../../src/emulator/index.js';
import { parsePrometheusText, sampleValue } from '../helpers/prom-text.js';
import { untilSleeping, untilTurn } from '../helpers/wait.js';
import type { StatusDoc } from './harness.js';
import { startInProcessDaemon, type InProcessDaemon } from './in-process.js';

const FOLLOW = { type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1000', moderator_user_id: '2000' } };
const ONLINE = { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1000' } };

async function getStatus(d: InProcessDaemon): Promise<StatusDoc> {
  const res = await request(d.daemon.url + '/status', { dispatcher: d.agent });
  return (await res.body.json()) as StatusDoc;
}

async function metrics(d: InProcessDaemon): Promise<ReturnType<typeof parsePrometheusText>> {
  const res = await request(d.daemon.url + '/metrics', { dispatcher: d.agent });
  return parsePrometheusText(await res.body.text());
}

/** The user consents at the emulator's authorize page and the code is exchanged, as `eventsubd authorize` does. */
async function grant(emu: Emulator, agent: Agent, userId: string, scopes: string): Promise<void> {
  const client = emu.clients[0]!;
  const query = new URLSearchParams({ response_type: 'code', client_id: client.clientId, redirect_uri: 'http://localhost:3000', scope: scopes, state: 's', emulator_user_id: userId });
  const page = await request(`${emu.authUrl}/authorize?${query.toString()}`, { dispatcher: agent });
  await page.body.dump();
  const code = new URL(page.headers.location as string).searchParams.get('code')!;
  const res = await request(`${emu.authUrl}/token`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, code, grant_type: 'authorization_code', redirect_uri: 'http://localhost:3000' }).toString(),
  });
  assert.equal(res.statusCode, 200);
  await res.body.dump();
}

const refusedCreates = (emu: Emulator): number => emu.stats.requests.filter((r) => r.method === 'POST' && r.path === '/helix/eventsub/subscriptions' && r.status === 403).length;
const follows = (emu: Emulator) => emu.subscriptions().filter((s) => s.type === 'channel.follow');
const logged = (d: InProcessDaemon, msg: string) => d.logs.records().filter((r) => r.msg === msg);
const isSync = (s: Record<string, string>): boolean => /sync (ok|partial|error)/.test(s.STATUS ?? '');

test('daemon: a follow waits for its moderator, then a grant event creates it, a disconnect blocks it, a new grant brings it back', async (t) => {
  const d = await startInProcessDaemon(t, {}, { subscriptions: [ONLINE, FOLLOW] });
  const first = await d.notifier.next(isSync);
  assert.match(first.STATUS!, /, 1 waiting for authorization\)/);
  await untilTurn(() => d.emulator.subscriptions().filter((s) => s.type.startsWith('user.authorization.') && s.status === 'enabled').length === 2, 'the implicit subscriptions verified');

  const status = await getStatus(d);
  assert.deepEqual(status.authorization.missing.map((m) => [m.user_id, m.fields, m.scopes, m.subscriptions, m.command]), [
    ['2000', ['moderator_user_id'], ['moderator:read:followers'], ['channel.follow v2 broadcaster_user_id=1000 moderator_user_id=2000'], 'eventsubd authorize --user 2000'],
  ]);
  assert.equal(status.authorization.missing[0]!.retry_at, new Date(d.clock.now() + 3_600_000).toISOString());
  assert.equal(status.sync.waiting_for_authorization, 1);
  assert.deepEqual(status.sync.applied?.failed, 0, 'not an ordinary failure');
  let m = await metrics(d);
  assert.equal(sampleValue(m, 'eventsubd_authorization_missing_users'), 1);
  assert.equal(sampleValue(m, 'eventsubd_authorization_waiting_subscriptions'), 1);
  assert.equal(refusedCreates(d.emulator), 1);

  // Another sync within the hour: the refused create is held back, and not logged again.
  const reloaded = d.notifier.next(isSync);
  await d.daemon.reload();
  assert.match((await reloaded).STATUS!, /1 waiting for authorization/);
  assert.equal(refusedCreates(d.emulator), 1, 'the held create was not sent again');
  assert.equal(logged(d, 'Declared subscriptions wait for a user to authorize the app').length, 1, 'logged once per user and scopes');

  // The moderator authorizes: Twitch sends user.authorization.grant; the daemon syncs a second later.
  await grant(d.emulator, d.agent, '2000', 'moderator:read:followers');
  await untilTurn(() => logged(d, 'A user authorized the app; syncing their waiting subscriptions').length === 1, 'the grant event');
  const afterGrant = d.notifier.next(isSync);
  await untilSleeping(d.clock, () => d.clock.nextWake() === d.clock.now() + 1_000, 'the sync requested 1 s after the grant');
  await d.clock.advance(1_000);
  assert.match((await afterGrant).STATUS!, /sync ok \(\d+ kept, 1 created, 0 recreated, 0 deleted, 0 blocked\)/);
  await untilTurn(() => follows(d.emulator)[0]?.status === 'enabled', 'the follow verified');
  assert.deepEqual((await getStatus(d)).authorization, { missing: [], revoked: [] });
  const rec = (): { users: Record<string, { how: string; revoked_at: string | null }> } => JSON.parse(readFileSync(join(d.stateDir, 'authorizations.json'), 'utf8'));
  await untilTurn(() => {
    try {
      return rec().users['2000']?.how === 'grant_event';
    } catch {
      return false;
    }
  }, 'the grant recorded');

  // The moderator disconnects the app: Twitch revokes the follow and sends user.authorization.revoke.
  const followId = follows(d.emulator)[0]!.id;
  assert.deepEqual(d.emulator.disconnectUser('2000'), [followId]);
  await untilTurn(() => logged(d, 'A user disconnected the app: Twitch revokes the subscriptions that need their grant until they authorize again').length === 1, 'the revoke event');
  const afterRevoke = d.notifier.next(isSync);
  await untilSleeping(d.clock, () => d.clock.nextWake() === d.clock.now() + 1_000, 'the sync requested after the revoke');
  await d.clock.advance(1_000);
  assert.match((await afterRevoke).STATUS!, /1 blocked, 1 waiting for authorization\)/);
  const blocked = await getStatus(d);
  assert.deepEqual(blocked.sync.blocked, [{ id: followId, type: 'channel.follow', status: 'authorization_revoked' }]);
  assert.deepEqual(blocked.authorization.revoked.map((r) => r.user_id), ['2000']);
  assert.deepEqual(blocked.authorization.missing.map((r) => r.user_id), ['2000']);
  await untilTurn(() => rec().users['2000']?.revoked_at !== null, 'the grant marked revoked');
  m = await metrics(d);
  assert.equal(sampleValue(m, 'eventsubd_authorization_events_total', { kind: 'grant' }), 1);
  assert.equal(sampleValue(m, 'eventsubd_authorization_events_total', { kind: 'revoke' }), 1);
  assert.equal(sampleValue(m, 'eventsubd_revocations_total', { status: 'authorization_revoked' }), 1);

  // A new grant: the revoked follow is recreated, without a restart.
  await grant(d.emulator, d.agent, '2000', 'moderator:read:followers');
  await untilTurn(() => logged(d, 'A user authorized the app; syncing their waiting subscriptions').length === 2, 'the second grant event');
  const back = d.notifier.next(isSync);
  await untilSleeping(d.clock, () => d.clock.nextWake() === d.clock.now() + 1_000, 'the sync after the second grant');
  await d.clock.advance(1_000);
  assert.match((await back).STATUS!, /sync ok \(\d+ kept, 0 created, 1 recreated, 0 deleted, 0 blocked\)/);
  await untilTurn(() => follows(d.emulator).some((s) => s.status === 'enabled' && s.id !== followId), 'the follow recreated');
  assert.deepEqual((await getStatus(d)).authorization, { missing: [], revoked: [] });
});

test('daemon: a grant event for another client, or a malformed one, changes nothing', async (t) => {
  const d = await startInProcessDaemon(t, {}, { subscriptions: [FOLLOW] });
  await d.notifier.next(isSync);
  const sub = { id: 'x', type: 'user.authorization.grant', version: '1', status: 'enabled', cost: 1, condition: { client_id: 'other' }, transport: { method: 'webhook', callback: 'https://events.example.com/twitch/eventsub' }, created_at: new Date(d.clock.now()).toISOString() };
  assert.equal(await d.deliver(JSON.stringify({ subscription: sub, event: { client_id: 'other', user_id: '2000', user_login: 'm', user_name: 'm' } })), 204);
  assert.equal(await d.deliver(JSON.stringify({ subscription: sub, event: { client_id: d.emulator.clients[0]!.clientId, user_id: 2000 } })), 204);
  const m = await metrics(d);
  assert.equal(sampleValue(m, 'eventsubd_authorization_events_total', { kind: 'grant' }), undefined);
  assert.equal(logged(d, 'A user authorized the app; syncing their waiting subscriptions').length, 0);
  assert.equal((await getStatus(d)).journal.head, 2, 'both were journaled all the same: every new message is data');
});
