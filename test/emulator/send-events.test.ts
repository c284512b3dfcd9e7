/**
 * `POST /_emulator/subscriptions/ID/events` (notifications and revocations to a subscription of either transport),
 * `conduit.shard.disabled`, a conduit's deletion, and `GET /_emulator/conduits`, with real `ws` clients on loopback.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Emulator, EmulatorOptions } from '../../src/emulator/index.js';
import { defaultEvent } from '../../src/emulator/send-events.js';
import type { StoredSubscription } from '../../src/emulator/state.js';
import { verifySignature } from '../../src/twitch/signature.js';
import { EXAMPLE_BROADCASTER_ID } from '../../src/twitch/event-examples.js';
import { eventually, helix, mint, SECRET, setup, startReceiver, webhookBody, type Received } from './helpers.js';
import { conduitOn, control, subscribe, wsClient, type Frame } from './ws-helpers.js';

async function started(t: TestContext, options: EmulatorOptions = {}) {
  const s = await setup(t, options);
  const auth = { token: await mint(s.emu, s.client), clientId: s.client.clientId };
  return { ...s, auth };
}

/** An emulator delivering webhooks to a local receiver that answers 204 (callbacks are accepted without a challenge). */
async function withReceiver(t: TestContext) {
  const receiver = await startReceiver(t, () => ({ status: 204, body: '' }));
  const s = await started(t, { deliverTo: receiver.origin, verification: 'accept' });
  return { ...s, receiver };
}

const events = (emu: Emulator, id: string, body?: unknown) => control(emu, 'POST', `/_emulator/subscriptions/${encodeURIComponent(id)}/events`, body);
const bodyOf = (r: Received): Frame => JSON.parse(r.body.toString('utf8'));
/** A webhook create body (helpers.ts webhookBody) typed for subscribe(). */
const hookBody = (overrides: Parameters<typeof webhookBody>[0] = {}) => webhookBody(overrides) as Parameters<typeof subscribe>[2];

test('events to a conduit subscription: each message named, on the shard of its broadcaster, with the default event filled from the condition', async (t) => {
  const { emu, auth } = await started(t);
  const clients = [await wsClient(t, emu), await wsClient(t, emu)];
  const conduitId = await conduitOn(emu, auth, clients.map((c) => c.id));
  const sub = await subscribe(emu, auth, { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '31337' }, transport: { method: 'conduit', conduit_id: conduitId } });
  const res = await events(emu, sub, { count: 5 });
  assert.equal(res.status, 200, res.text);
  const sent = res.json.data as { message_id: string; shard: string }[];
  assert.equal(sent.length, 5);
  assert.equal(new Set(sent.map((s) => s.message_id)).size, 5);
  const shard = sent[0]!.shard;
  assert.ok(sent.every((s) => s.shard === shard && Object.keys(s).length === 2), JSON.stringify(sent));
  const target = clients[Number(shard)]!;
  await target.until((f) => f.length === 6, 'five notifications');
  const frames = target.of('notification');
  assert.deepEqual(frames.map((f) => f.metadata.message_id), sent.map((s) => s.message_id));
  const [frame] = frames;
  assert.equal(frame.metadata.subscription_type, 'stream.online');
  assert.equal(frame.metadata.subscription_version, '1');
  assert.equal(frame.payload.subscription.id, sub);
  assert.deepEqual(frame.payload.subscription.transport, { method: 'conduit', conduit_id: conduitId });
  assert.equal(frame.payload.event.broadcaster_user_id, '31337');
  assert.equal(frame.payload.event.type, 'live');
  assert.equal(JSON.stringify(frame.payload.event).includes(EXAMPLE_BROADCASTER_ID), false, 'no trace of the example broadcaster');
  assert.equal(clients[1 - Number(shard)]!.of('notification').length, 0);
  assert.equal(emu.stats.conduitSent, 5);
  assert.equal((await control(emu, 'GET', '/_emulator/stats')).json.conduitSent, 5);

  const given = await events(emu, sub, { event: { broadcaster_user_id: '31337', custom: true } });
  await target.until((f) => f.length === 7, 'the given event');
  assert.deepEqual(target.frames[6].payload.event, { broadcaster_user_id: '31337', custom: true });
  assert.equal(target.frames[6].metadata.message_id, given.json.data[0].message_id);
});

test('events to a conduit subscription whose shards are down are dropped, each one named and counted', async (t) => {
  const { emu, auth } = await started(t);
  const clients = [await wsClient(t, emu), await wsClient(t, emu), await wsClient(t, emu)];
  const conduitId = await conduitOn(emu, auth, clients.map((c) => c.id));
  const sub = await subscribe(emu, auth, { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '555' }, transport: { method: 'conduit', conduit_id: conduitId } });
  const first = (await events(emu, sub)).json.data[0].shard as string;
  emu.terminateWs(clients[Number(first)]!.id);
  const second = (await events(emu, sub)).json.data[0].shard as string;
  assert.notEqual(second, first, 'one retry on another shard');
  emu.terminateWs(clients[Number(second)]!.id);
  const dropped = await events(emu, sub, { count: 3 });
  assert.equal(dropped.status, 200);
  assert.equal(dropped.json.data.length, 3);
  for (const d of dropped.json.data) assert.deepEqual(Object.keys(d).sort(), ['dropped', 'message_id']);
  assert.ok(dropped.json.data.every((d: { dropped: boolean }) => d.dropped === true));
  assert.equal(emu.stats.conduitDropped, 3);
  assert.equal(emu.stats.conduitSent, 2);
});

test('events to a webhook subscription: signed POSTs to its callback, with the ids the answer names', async (t) => {
  const { emu, auth, receiver } = await withReceiver(t);
  const created = await helix(emu, { ...auth, method: 'POST', body: webhookBody({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1001', moderator_user_id: '1002' } }) });
  assert.equal(created.status, 403, 'channel.follow needs the grant first');
  emu.registerUserToken({ userId: '1002', scopes: ['moderator:read:followers'] });
  const sub = await subscribe(emu, auth, hookBody({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1001', moderator_user_id: '1002' } }));
  const res = await events(emu, sub, { count: 3 });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json.data[0]), ['message_id']);
  await eventually(() => receiver.received.length === 3);
  assert.deepEqual(new Set(receiver.received.map((r) => r.headers['twitch-eventsub-message-id'])), new Set(res.json.data.map((s: { message_id: string }) => s.message_id)));
  const [r] = receiver.received;
  assert.equal(r!.url, '/twitch/eventsub');
  assert.equal(r!.headers['twitch-eventsub-message-type'], 'notification');
  assert.equal(r!.headers['twitch-eventsub-subscription-type'], 'channel.follow');
  const header = (name: string): string => String(r!.headers[name]);
  assert.ok(verifySignature([SECRET], header('twitch-eventsub-message-id'), header('twitch-eventsub-message-timestamp'), r!.body, header('twitch-eventsub-message-signature')));
  const body = bodyOf(r!);
  assert.equal(body.subscription.id, sub);
  assert.equal(body.event.broadcaster_user_id, '1001');
});

test('a revocation: the subscription takes the reason as status and the message goes out once; then nothing more is sent', async (t) => {
  const { emu, auth, receiver } = await withReceiver(t);
  const c = await wsClient(t, emu);
  const conduitId = await conduitOn(emu, auth, [c.id]);
  const onConduit = await subscribe(emu, auth, { type: 'stream.offline', version: '1', condition: { broadcaster_user_id: '7' }, transport: { method: 'conduit', conduit_id: conduitId } });
  const res = await events(emu, onConduit, { message_type: 'revocation' });
  assert.equal(res.status, 200, res.text);
  await c.until((f) => f.length === 2, 'the revocation');
  const frame = c.frames[1];
  assert.equal(frame.metadata.message_type, 'revocation');
  assert.equal(frame.metadata.message_id, res.json.data[0].message_id);
  assert.equal(frame.payload.subscription.status, 'authorization_revoked');
  assert.equal(frame.payload.event, undefined);
  assert.equal(emu.subscriptions().find((s) => s.id === onConduit)?.status, 'authorization_revoked');
  const again = await events(emu, onConduit);
  assert.equal(again.status, 409);
  assert.match(again.json.message, /not enabled/);

  const hook = await subscribe(emu, auth, hookBody());
  await eventually(() => emu.subscriptions().find((s) => s.id === hook)?.status === 'enabled');
  assert.equal((await events(emu, hook, { message_type: 'revocation', count: 2 })).status, 400);
  assert.equal((await events(emu, hook, { message_type: 'revocation', status: 'enabled' })).status, 400);
  const revoked = await events(emu, hook, { message_type: 'revocation', status: 'user_removed' });
  assert.equal(revoked.status, 200, revoked.text);
  await eventually(() => receiver.received.length === 1);
  assert.equal(receiver.received[0]!.headers['twitch-eventsub-message-type'], 'revocation');
  assert.equal(bodyOf(receiver.received[0]!).subscription.status, 'user_removed');
  assert.equal(emu.subscriptions().find((s) => s.id === hook)?.status, 'user_removed');
});

test('events: 404 for an unknown subscription, 409 for a webhook without deliverTo, 400 for a bad body', async (t) => {
  const { emu, auth } = await started(t);
  assert.equal((await events(emu, 'nope')).status, 404);
  const hook = await subscribe(emu, auth, hookBody());
  const noWay = await events(emu, hook);
  assert.equal(noWay.status, 409);
  assert.match(noWay.json.message, /deliverTo/);
  for (const bad of [{ count: 0 }, { count: 100_001 }, { count: 1.5 }, { message_type: 'welcome' }, { event: 'x' }]) {
    const res = await events(emu, hook, bad);
    assert.equal(res.status, 400, JSON.stringify(bad));
    assert.equal(res.json.error, 'Bad Request');
  }
  assert.throws(() => emu.sendEvents(hook, { count: 0 }), RangeError);
});

test('conduit.shard.disabled goes to each matching subscription when a websocket shard is disabled, whatever its transport', async (t) => {
  const { emu, auth, client, receiver } = await withReceiver(t);
  const [a, b] = [await wsClient(t, emu), await wsClient(t, emu)];
  const watched = await conduitOn(emu, auth, [a.id, b.id]);
  const other = await conduitOn(emu, auth, [(await wsClient(t, emu)).id]);
  const forAll = await subscribe(emu, auth, hookBody({ type: 'conduit.shard.disabled', condition: { client_id: client.clientId } }));
  const forOther = await subscribe(emu, auth, hookBody({
    type: 'conduit.shard.disabled',
    condition: { client_id: client.clientId, conduit_id: other },
    transport: { method: 'webhook', callback: 'https://events.example.com/other', secret: SECRET },
  }));
  const onConduit = await subscribe(emu, auth, { type: 'conduit.shard.disabled', version: '1', condition: { client_id: client.clientId, conduit_id: watched }, transport: { method: 'conduit', conduit_id: watched } });
  await eventually(() => emu.subscriptions().every((s) => s.status === 'enabled'));
  assert.ok([forAll, forOther, onConduit].every(Boolean));

  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${a.id}/close`, { code: 4006 })).status, 204);
  await eventually(() => receiver.received.length === 1);
  const hooked = bodyOf(receiver.received[0]!);
  assert.equal(receiver.received[0]!.url, '/twitch/eventsub');
  assert.equal(hooked.subscription.type, 'conduit.shard.disabled');
  const { transport, ...rest } = hooked.event;
  assert.deepEqual(rest, { conduit_id: watched, shard_id: '0', status: 'websocket_network_error' });
  assert.deepEqual(Object.keys(transport).sort(), ['connected_at', 'disconnected_at', 'method', 'session_id']);
  assert.equal(transport.method, 'websocket');
  assert.equal(transport.session_id, a.id);
  assert.equal(transport.connected_at, a.frames[0].payload.session.connected_at);
  assert.match(transport.disconnected_at, /Z$/);
  // The conduit subscription gets it on the shard still enabled.
  await b.until((f) => f.length === 2, 'conduit.shard.disabled on shard 1');
  assert.equal(b.frames[1].metadata.subscription_type, 'conduit.shard.disabled');
  assert.deepEqual(b.frames[1].payload.event, hooked.event);
  // A shard already disabled is not announced again when its conduit's other shard goes.
  emu.terminateWs(b.id);
  await eventually(() => receiver.received.length === 2);
  assert.equal(bodyOf(receiver.received[1]!).event.shard_id, '1');
  assert.equal(bodyOf(receiver.received[1]!).event.status, 'websocket_disconnected');
  assert.equal(receiver.received.filter((r) => r.url === '/other').length, 0, 'the subscription for the other conduit hears nothing');
});

test('deleting a conduit marks its live subscriptions conduit_deleted (no message), frees their cost, and leaves revoked ones as they were', async (t) => {
  const { emu, auth } = await started(t);
  const c = await wsClient(t, emu);
  const conduitId = await conduitOn(emu, auth, [c.id]);
  const transport = { method: 'conduit', conduit_id: conduitId };
  const live = await subscribe(emu, auth, { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1' }, transport });
  const revoked = await subscribe(emu, auth, { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '2' }, transport });
  emu.setSubscriptionStatus(revoked, 'authorization_revoked');
  const before = await helix(emu, auth);
  assert.equal(before.json.total_cost, 1);
  const listedConduits = await control(emu, 'GET', '/_emulator/conduits');
  assert.deepEqual(listedConduits.json.data, [{ id: conduitId, shard_count: 1, client_id: auth.clientId, shards: [{ id: '0', status: 'enabled', transport: { method: 'websocket', session_id: c.id, connected_at: c.frames[0].payload.session.connected_at } }] }]);

  assert.equal((await helix(emu, { ...auth, method: 'DELETE', path: '/helix/eventsub/conduits', query: `id=${conduitId}` })).status, 204);
  const after = await helix(emu, { ...auth, query: 'status=conduit_deleted' });
  assert.deepEqual(after.json.data.map((s: { id: string }) => s.id), [live]);
  assert.equal(after.json.total_cost, 0);
  assert.equal(emu.subscriptions().find((s) => s.id === revoked)?.status, 'authorization_revoked');
  assert.equal((await events(emu, live)).status, 409);
  assert.equal(c.of('revocation').length, 0);
  assert.deepEqual((await control(emu, 'GET', '/_emulator/conduits')).json.data, []);
});

test('defaultEvent() fills the catalogue example with the subscription condition, everywhere its values appear', () => {
  const sub = (type: string, version: string, condition: Record<string, string>) => ({ wire: { type, version, condition } }) as unknown as StoredSubscription;
  const follow = defaultEvent(sub('channel.follow', '2', { broadcaster_user_id: '11', moderator_user_id: '22' })).event!;
  assert.equal(follow.broadcaster_user_id, '11');
  assert.equal(JSON.stringify(follow).includes(EXAMPLE_BROADCASTER_ID), false);
  const disabled = defaultEvent(sub('conduit.shard.disabled', '1', { client_id: 'me', conduit_id: 'c-1' })).event!;
  assert.equal(disabled.conduit_id, 'c-1');
  const drops = defaultEvent(sub('drop.entitlement.grant', '1', { organization_id: 'org-9', category_id: '', campaign_id: '' }));
  assert.equal(drops.event, undefined);
  assert.ok(drops.events!.length >= 1);
  assert.ok(JSON.stringify(drops.events).includes('org-9'));
  assert.deepEqual(defaultEvent(sub('no.such.type', '1', {})), { event: {} });
});

test('a burst of 10,000 events to a 4-shard conduit: every frame arrives once, as the answer lists them', async (t) => {
  const { emu, auth } = await started(t);
  const clients = await Promise.all([0, 1, 2, 3].map(() => wsClient(t, emu)));
  const conduitId = await conduitOn(emu, auth, clients.map((c) => c.id));
  const subs = await Promise.all(
    [0, 1, 2, 3, 4, 5, 6, 7].map((i) => subscribe(emu, auth, { type: 'stream.online', version: '1', condition: { broadcaster_user_id: String(9000 + i) }, transport: { method: 'conduit', conduit_id: conduitId } })),
  );
  const started_ = performance.now();
  const answers = await Promise.all(subs.map((id) => events(emu, id, { count: 1250 })));
  const ms = performance.now() - started_;
  const sent = answers.flatMap((a) => a.json.data as { message_id: string; shard?: string; dropped?: boolean }[]);
  assert.equal(sent.length, 10_000);
  assert.equal(sent.filter((s) => s.dropped).length, 0);
  const byShard = new Map<string, string[]>();
  for (const s of sent) byShard.set(s.shard!, [...(byShard.get(s.shard!) ?? []), s.message_id]);
  await Promise.all(clients.map((c, i) => c.until((f) => f.length - 1 >= (byShard.get(String(i))?.length ?? 0), `shard ${i}'s frames`)));
  for (const [i, c] of clients.entries()) {
    const got = c.of('notification').map((f) => f.metadata.message_id);
    assert.deepEqual(new Set(got), new Set(byShard.get(String(i)) ?? []));
    assert.equal(got.length, (byShard.get(String(i)) ?? []).length);
  }
  assert.equal(emu.stats.conduitSent, 10_000);
  t.diagnostic(`10,000 events queued in ${ms.toFixed(0)} ms (${Math.round(10_000 / (ms / 1000))}/s), shards used: ${byShard.size}`);
});
