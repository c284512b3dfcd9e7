import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deliverWebhook, startEmulator } from '../../src/emulator/index.js';
import { verifySignature } from '../../src/twitch/signature.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { eventually, helix, mint, SECRET, setup, startReceiver, webhookBody } from './helpers.js';

const CALLBACK = 'https://events.example.com/twitch/eventsub?tenant=7';

async function createWith(t: import('node:test').TestContext, respond: Parameters<typeof startReceiver>[1]) {
  const receiver = await startReceiver(t, respond);
  const started = await setup(t, { deliverTo: receiver.origin });
  const token = await mint(started.emu, started.client);
  const res = await helix(started.emu, {
    method: 'POST',
    token,
    clientId: started.client.clientId,
    body: webhookBody({ transport: { method: 'webhook', callback: CALLBACK, secret: SECRET } }),
  });
  assert.equal(res.status, 202);
  assert.equal(res.json.data[0].status, 'webhook_callback_verification_pending');
  return { ...started, receiver, id: res.json.data[0].id as string };
}

const challengeOf = (body: Buffer): string => JSON.parse(body.toString('utf8')).challenge;

test('emulator verification: a signed challenge answered 200 with the raw challenge enables the subscription', async (t) => {
  const { emu, receiver, id } = await createWith(t, (r) => ({ status: 200, body: challengeOf(r.body) }));
  await eventually(() => emu.subscriptions()[0]?.status === 'enabled');
  assert.equal(emu.stats.verificationsSent, 1);
  const [req] = receiver.received;
  assert.ok(req);
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/twitch/eventsub?tenant=7');
  const h = req.headers;
  assert.equal(h['content-type'], 'application/json');
  assert.equal(h['twitch-eventsub-message-type'], 'webhook_callback_verification');
  assert.equal(h['twitch-eventsub-message-retry'], '0');
  assert.equal(h['twitch-eventsub-subscription-type'], 'stream.online');
  assert.equal(h['twitch-eventsub-subscription-version'], '1');
  assert.match(String(h['twitch-eventsub-message-id']), /^[0-9a-f-]{36}$/);
  assert.match(String(h['twitch-eventsub-message-timestamp']), /^2026-11-24T10:00:00\.\d{9}Z$/);
  assert.equal(
    verifySignature([SECRET], String(h['twitch-eventsub-message-id']), String(h['twitch-eventsub-message-timestamp']), req.body, String(h['twitch-eventsub-message-signature'])),
    true,
  );
  assert.equal(verifySignature(['another-secret-value'], String(h['twitch-eventsub-message-id']), String(h['twitch-eventsub-message-timestamp']), req.body, String(h['twitch-eventsub-message-signature'])), false);
  const body = JSON.parse(req.body.toString('utf8'));
  assert.match(body.challenge, /^[a-z0-9]{32}$/);
  assert.equal(body.subscription.id, id);
  assert.equal(body.subscription.status, 'webhook_callback_verification_pending');
  assert.deepEqual(body.subscription.transport, { method: 'webhook', callback: CALLBACK });
  assert.equal(body.subscription.cost, 1);
  assert.equal('secret' in body.subscription.transport, false);
});

test('emulator verification: a wrong body fails the subscription', async (t) => {
  const { emu } = await createWith(t, (r) => ({ status: 200, body: JSON.stringify(challengeOf(r.body)) }));
  await eventually(() => emu.subscriptions()[0]?.status === 'webhook_callback_verification_failed');
  assert.equal(emu.stats.verificationsSent, 1);
});

test('emulator verification: a 2xx other than 200 fails the subscription', async (t) => {
  const { emu } = await createWith(t, (r) => ({ status: 202, body: challengeOf(r.body) }));
  await eventually(() => emu.subscriptions()[0]?.status === 'webhook_callback_verification_failed');
});

test('emulator verification: no answer within 10 s on the clock fails the subscription', async (t) => {
  const { emu, clock, receiver } = await createWith(t, () => new Promise(() => undefined));
  await eventually(() => receiver.received.length === 1 && clock.pending === 1);
  await clock.advance(9_999);
  assert.equal(emu.subscriptions()[0]?.status, 'webhook_callback_verification_pending');
  await clock.advance(1);
  await eventually(() => emu.subscriptions()[0]?.status === 'webhook_callback_verification_failed');
});

test("emulator verification 'reject' fails every webhook create without sending", async (t) => {
  const { emu, client } = await setup(t, { verification: 'reject' });
  const token = await mint(emu, client);
  await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() });
  assert.equal(emu.subscriptions()[0]?.status, 'webhook_callback_verification_failed');
  assert.equal(emu.stats.verificationsSent, 0);
});

test('emulator refuses a non-loopback deliverTo and deliver without deliverTo', async () => {
  await assert.rejects(startEmulator({ deliverTo: 'https://example.com' }), { code: 'CONFIG_INVALID' });
  await assert.rejects(startEmulator({ deliverTo: 'http://10.0.0.1:8080' }), { code: 'CONFIG_INVALID' });
  await assert.rejects(startEmulator({ verification: 'deliver' }), { code: 'CONFIG_INVALID' });
  await assert.rejects(startEmulator({ bucket: { limit: 0, windowMs: 1000 } }), { code: 'CONFIG_INVALID' });
});

test("deliverWebhook() reproduces the contract's signature test vector for a notification", async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 204, body: '' }));
  const subscription = {
    id: 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4',
    status: 'enabled',
    type: 'stream.online',
    version: '1',
    cost: 0,
    condition: { broadcaster_user_id: '1337' },
    transport: { method: 'webhook', callback: 'https://example.com/webhooks/callback' },
    created_at: '2019-11-16T10:11:12.634234626Z',
  };
  const event = { id: '9001', broadcaster_user_id: '1337', broadcaster_user_login: 'cool_user', broadcaster_user_name: 'Cool_User', type: 'live', started_at: '2020-10-11T10:11:12.123Z' };
  const res = await deliverWebhook({
    url: `${receiver.origin}/webhooks/callback`,
    secret: 's3cRe7-this-is-a-test-secret',
    messageType: 'notification',
    subscription,
    event,
    messageId: 'e76c6bd4-55c9-4987-8304-da1588d8988b',
    timestamp: '2019-11-16T10:11:12.634234626Z',
    clock: new FakeClock(),
  });
  assert.equal(res.status, 204);
  const [req] = receiver.received;
  assert.equal(req?.headers['twitch-eventsub-message-signature'], 'sha256=4e618e47054a7cb256305b3a08888e545c130b2db43ee8447b636f3cb5861b17');
  assert.equal(req?.headers['twitch-eventsub-message-type'], 'notification');
  assert.equal(req?.headers['twitch-eventsub-message-timestamp'], '2019-11-16T10:11:12.634234626Z');
  assert.deepEqual(JSON.parse(req?.body.toString('utf8') ?? 'null'), { subscription, event });
});

test('deliverWebhook() sends a revocation without an event and returns the answer', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, body: 'ok' }));
  const res = await deliverWebhook({
    url: `${receiver.origin}/cb`,
    secret: SECRET,
    messageType: 'revocation',
    subscription: { id: 'x', type: 'channel.follow', version: '2', status: 'authorization_revoked' },
    event: { ignored: true },
    clock: new FakeClock(),
  });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'ok');
  assert.equal(res.challenge, undefined);
  const body = JSON.parse(receiver.received[0]!.body.toString('utf8'));
  assert.deepEqual(Object.keys(body), ['subscription']);
  assert.equal(receiver.received[0]!.headers['twitch-eventsub-subscription-version'], '2');
});

test('deliverWebhook() throws WEBHOOK_DELIVERY_FAILED when nobody listens', async () => {
  const emu = await startEmulator({ clock: new FakeClock() });
  const url = `${emu.url}/cb`;
  await emu.close();
  await assert.rejects(
    deliverWebhook({ url, secret: SECRET, messageType: 'notification', subscription: { type: 'stream.online', version: '1' }, clock: new FakeClock() }),
    { code: 'WEBHOOK_DELIVERY_FAILED' },
  );
});
