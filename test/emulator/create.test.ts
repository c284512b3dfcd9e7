import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catalogueEntries, lookupType } from '../../src/emulator/index.js';
import { helix, mint, SECRET, setup, webhookBody } from './helpers.js';

test('emulator create answers 202 with the documented shape and never echoes the secret', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const res = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() });
  assert.equal(res.status, 202);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.ok(res.headers['ratelimit-remaining']);
  assert.equal(res.text.includes(SECRET), false);
  const [sub] = res.json.data;
  assert.equal(res.json.data.length, 1);
  assert.match(sub.id, /^[0-9a-f-]{36}$/);
  assert.match(sub.created_at, /^2026-11-24T10:00:00\.000\d{6}Z$/);
  assert.deepEqual(
    { ...sub, id: undefined, created_at: undefined },
    {
      id: undefined,
      created_at: undefined,
      status: 'webhook_callback_verification_pending',
      type: 'stream.online',
      version: '1',
      condition: { broadcaster_user_id: '1234' },
      transport: { method: 'webhook', callback: 'https://events.example.com/twitch/eventsub' },
      cost: 1,
    },
  );
  assert.equal(res.json.total, 1);
  assert.equal(res.json.total_cost, 1);
  assert.equal(res.json.max_total_cost, 10_000);
  // verification 'accept' (no deliverTo): enabled once the 202 is out
  assert.equal(emu.subscriptions()[0]?.status, 'enabled');
});

test('emulator create rejects invalid bodies with 400', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const hook = (callback: string, secret = SECRET) => ({ method: 'webhook', callback, secret });
  const cases: Array<[unknown, string]> = [
    ['{not json', 'The request body must be a JSON object'],
    [webhookBody({ type: 'stream.nope' }), 'invalid type and version combination'],
    [webhookBody({ version: '2' }), 'invalid type and version combination'],
    [webhookBody({ type: 'channel.follow', version: '1' }), 'invalid type and version combination'],
    [webhookBody({ condition: {} }), 'missing required condition field "broadcaster_user_id"'],
    [webhookBody({ condition: { broadcaster_user_id: '' } }), 'missing required condition field "broadcaster_user_id"'],
    [webhookBody({ condition: { broadcaster_user_id: 1234 } }), 'condition field "broadcaster_user_id" must be a string'],
    [webhookBody({ condition: { broadcaster_user_id: '1', colour: 'red' } }), 'unknown condition field "colour" for stream.online version 1'],
    [webhookBody({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1' } }), 'missing required condition field "moderator_user_id"'],
    [
      webhookBody({ type: 'channel.raid', condition: { from_broadcaster_user_id: '1', to_broadcaster_user_id: '2' } }),
      'exactly one of from_broadcaster_user_id, to_broadcaster_user_id is required',
    ],
    [webhookBody({ transport: hook('http://events.example.com/cb') }), 'invalid transport callback: must be https on port 443'],
    [webhookBody({ transport: hook('https://events.example.com:8443/cb') }), 'invalid transport callback: must be https on port 443'],
    [webhookBody({ transport: hook('not a url') }), 'invalid transport callback'],
    [webhookBody({ transport: hook('https://events.example.com/cb', 'short') }), 'invalid transport secret: must be 10 to 100 ASCII characters'],
    [webhookBody({ transport: hook('https://events.example.com/cb', 'x'.repeat(101)) }), 'invalid transport secret: must be 10 to 100 ASCII characters'],
    [webhookBody({ transport: hook('https://events.example.com/cb', 'ünïcödé-secret') }), 'invalid transport secret: must be 10 to 100 ASCII characters'],
    [webhookBody({ transport: { method: 'carrier-pigeon' } }), 'invalid transport method'],
    [webhookBody({ transport: { method: 'webhook', secret: SECRET } }), 'Missing required parameter "transport.callback"'],
  ];
  for (const [body, message] of cases) {
    const res = await helix(emu, { method: 'POST', token, clientId: client.clientId, body });
    assert.equal(res.status, 400, message);
    assert.deepEqual(res.json, { error: 'Bad Request', status: 400, message });
  }
  assert.equal(emu.subscriptions().length, 0);
});

test('emulator create accepts an explicit :443 and echoes unset optional condition fields as ""', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const raid = await helix(emu, {
    method: 'POST',
    token,
    clientId: client.clientId,
    body: webhookBody({
      type: 'channel.raid',
      condition: { to_broadcaster_user_id: '42' },
      transport: { method: 'webhook', callback: 'https://events.example.com:443/cb', secret: SECRET },
    }),
  });
  assert.equal(raid.status, 202);
  assert.deepEqual(raid.json.data[0].condition, { from_broadcaster_user_id: '', to_broadcaster_user_id: '42' });
});

test('emulator create checks that a client_id condition names the token\'s client', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const other = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ type: 'user.authorization.revoke', condition: { client_id: 'someone-else' } }) });
  assert.equal(other.status, 403);
  assert.equal(other.json.message, 'subscription missing proper authorization');
  const mine = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ type: 'user.authorization.revoke', condition: { client_id: client.clientId } }) });
  assert.equal(mine.status, 202);
  assert.equal(mine.json.data[0].cost, 1);
});

test('emulator create: 403 without the grant a type needs; cost 0 for it once granted, and for users who authorized the client', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const followBody = webhookBody({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1', moderator_user_id: '1' } });
  const refused = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: followBody });
  assert.equal(refused.status, 403);
  assert.equal(refused.json.message, 'subscription missing proper authorization');
  emu.registerUserToken({ userId: '1', scopes: ['user:read:email'] });
  assert.equal((await helix(emu, { method: 'POST', token, clientId: client.clientId, body: followBody })).status, 403, 'a grant without the scope');
  emu.registerUserToken({ userId: '1', scopes: ['moderator:read:followers'] });
  const follow = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: followBody });
  assert.equal(follow.status, 202);
  assert.equal(follow.json.data[0].cost, 0);
  emu.registerUserToken({ userId: '777' });
  const authorized = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ condition: { broadcaster_user_id: '777' } }) });
  assert.equal(authorized.json.data[0].cost, 0);
  const plain = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ condition: { broadcaster_user_id: '888' } }) });
  assert.equal(plain.json.data[0].cost, 1);
  assert.equal(plain.json.total, 3);
  assert.equal(plain.json.total_cost, 1);
});

test('emulator create answers 409 for an exact live duplicate but not once the twin has failed', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const first = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() });
  assert.equal(first.status, 202);
  const dup = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() });
  assert.equal(dup.status, 409);
  assert.deepEqual(dup.json, { error: 'Conflict', status: 409, message: 'subscription already exists' });
  emu.setSubscriptionStatus(first.json.data[0].id, 'webhook_callback_verification_failed');
  const again = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() });
  assert.equal(again.status, 202);
});

test('emulator create answers 429 with points left once 3 subscriptions share type, version and condition', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const at = (n: number) => webhookBody({ transport: { method: 'webhook', callback: `https://events.example.com/cb${n}`, secret: SECRET } });
  for (let n = 1; n <= 3; n++) {
    assert.equal((await helix(emu, { method: 'POST', token, clientId: client.clientId, body: at(n) })).status, 202);
  }
  const fourth = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: at(4) });
  assert.equal(fourth.status, 429);
  assert.deepEqual(fourth.json, { error: 'Too Many Requests', status: 429, message: 'maximum subscriptions with type and condition exceeded' });
  assert.ok(Number(fourth.headers['ratelimit-remaining']) > 0);
  assert.equal(emu.stats.helix.rateLimited, 0);
  const otherCondition = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ condition: { broadcaster_user_id: '9' } }) });
  assert.equal(otherCondition.status, 202);
});

test('emulator create answers 403 when the total cost would pass max_total_cost', async (t) => {
  const { emu, client } = await setup(t, { maxTotalCost: 1 });
  const token = await mint(emu, client);
  assert.equal((await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() })).status, 202);
  const over = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ condition: { broadcaster_user_id: '2' } }) });
  assert.equal(over.status, 403);
  assert.equal(over.json.message, 'subscription cost exceeds max total cost');
});

test('emulator catalogue knows every type of contract section 9 with its versions', () => {
  const expected: Array<[string, string]> = [
    ['stream.online', '1'],
    ['channel.update', '2'],
    ['channel.follow', '2'],
    ['channel.chat.message', '1'],
    ['channel.channel_points_automatic_reward_redemption.add', '2'],
    ['channel.hype_train.end', '2'],
    ['channel.moderate', '2'],
    ['automod.message.hold', '2'],
    ['conduit.shard.disabled', '1'],
    ['drop.entitlement.grant', '1'],
    ['extension.bits_transaction.create', '1'],
    ['channel.guest_star_session.begin', 'beta'],
  ];
  for (const [type, version] of expected) assert.ok(lookupType(type, version), `${type} v${version}`);
  assert.equal(lookupType('channel.follow', '1'), undefined);
  assert.equal(lookupType('channel.update', '1'), undefined);
  assert.deepEqual(lookupType('channel.chat.message', '1')?.required, ['broadcaster_user_id', 'user_id']);
  assert.ok(catalogueEntries().length > 70);
});
