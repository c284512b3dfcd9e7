import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call, helix, mint, setup, webhookBody } from './helpers.js';

const ERR = (message: string) => ({ error: 'Unauthorized', status: 401, message });

test('emulator Helix refuses a missing or OAuth-prefixed token with 401 "OAuth token is missing"', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const none = await call(`${emu.apiUrl}/eventsub/subscriptions`, { headers: { 'client-id': client.clientId } });
  assert.equal(none.status, 401);
  assert.deepEqual(none.json, ERR('OAuth token is missing'));
  const oauth = await call(`${emu.apiUrl}/eventsub/subscriptions`, { headers: { authorization: `OAuth ${token}`, 'client-id': client.clientId } });
  assert.equal(oauth.status, 401);
  assert.deepEqual(oauth.json, ERR('OAuth token is missing'));
  assert.equal(oauth.headers['ratelimit-limit'], '800');
});

test('emulator Helix refuses an invalid or expired token with 401 "Invalid OAuth token"', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  emu.expireToken(token);
  for (const value of [token, 'z'.repeat(30)]) {
    const res = await helix(emu, { token: value, clientId: client.clientId });
    assert.equal(res.status, 401);
    assert.deepEqual(res.json, ERR('Invalid OAuth token'));
  }
});

test('emulator Helix refuses a Client-Id that is not the token\'s', async (t) => {
  const { emu, client } = await setup(t);
  const other = emu.addClient();
  const token = await mint(emu, client);
  const res = await helix(emu, { token, clientId: other.clientId });
  assert.equal(res.status, 401);
  assert.deepEqual(res.json, ERR('Client ID and OAuth token do not match'));
  const missing = await call(`${emu.apiUrl}/eventsub/subscriptions`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(missing.status, 401);
  assert.deepEqual(missing.json, ERR('Client ID and OAuth token do not match'));
});

test('emulator Helix refuses a webhook create with a user token and shows a user token no subscriptions', async (t) => {
  const { emu, client } = await setup(t);
  const app = await mint(emu, client);
  const created = await helix(emu, { method: 'POST', token: app, clientId: client.clientId, body: webhookBody() });
  assert.equal(created.status, 202);
  const user = emu.registerUserToken({ userId: '1234', scopes: [] });
  const create = await helix(emu, { method: 'POST', token: user, clientId: client.clientId, body: webhookBody() });
  assert.equal(create.status, 401);
  assert.deepEqual(create.json, ERR('auth must use app access token to create webhook subscription'));
  const list = await helix(emu, { token: user, clientId: client.clientId });
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.data, []);
  assert.equal(list.json.total, 0);
  const del = await helix(emu, { method: 'DELETE', token: user, clientId: client.clientId, query: `id=${created.json.data[0].id}` });
  assert.equal(del.status, 404);
  assert.equal(emu.subscriptions().length, 1);
});

test('emulator Helix answers a websocket create with 400 (not emulated) and a conduit create with 400 conduit not found', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const ws = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ transport: { method: 'websocket', session_id: 'abc' } }) });
  assert.equal(ws.status, 400);
  assert.equal(ws.json.message, 'websocket transport is not emulated');
  const conduit = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ transport: { method: 'conduit', conduit_id: 'c1' } }) });
  assert.equal(conduit.status, 400);
  assert.deepEqual(conduit.json, { error: 'Bad Request', status: 400, message: 'conduit not found' });
});

test('emulator serves Helix subscriptions at /eventsub/subscriptions too (twurple mock mode)', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const res = await helix(emu, { token, clientId: client.clientId, path: '/eventsub/subscriptions' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.pagination, {});
});

test('emulator bucket: the 6th request of a 5-point bucket gets 429 with Remaining 0, and it refills on the clock', async (t) => {
  const { emu, client, clock } = await setup(t, { bucket: { limit: 5, windowMs: 60_000 } });
  const token = await mint(emu, client);
  const nowS = clock.now() / 1000;
  const remaining: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await helix(emu, { token, clientId: client.clientId });
    assert.equal(res.status, 200);
    assert.equal(res.headers['ratelimit-limit'], '5');
    remaining.push(String(res.headers['ratelimit-remaining']));
  }
  assert.deepEqual(remaining, ['4', '3', '2', '1', '0']);
  const limited = await helix(emu, { token, clientId: client.clientId });
  assert.equal(limited.status, 429);
  assert.deepEqual(limited.json, { error: 'Too Many Requests', status: 429, message: 'Too Many Requests' });
  assert.equal(limited.headers['ratelimit-remaining'], '0');
  assert.equal(limited.headers['ratelimit-reset'], String(nowS + 60));
  assert.equal(emu.stats.helix.rateLimited, 1);
  assert.deepEqual(emu.stats.helix.byStatus, { '200': 5, '429': 1 });

  await clock.advance(12_000); // one point per 12 s
  const refilled = await helix(emu, { token, clientId: client.clientId });
  assert.equal(refilled.status, 200);
  assert.equal(refilled.headers['ratelimit-remaining'], '0');
  const again = await helix(emu, { token, clientId: client.clientId });
  assert.equal(again.status, 429);
});

test('emulator bucket: each client has its own bucket, and errors carry the headers', async (t) => {
  const { emu, client } = await setup(t, { bucket: { limit: 2, windowMs: 60_000 } });
  const other = emu.addClient();
  const a = await mint(emu, client);
  const b = await mint(emu, other);
  await helix(emu, { token: a, clientId: client.clientId });
  const bad = await helix(emu, { method: 'DELETE', token: a, clientId: client.clientId });
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['ratelimit-remaining'], '0');
  assert.ok(bad.headers['ratelimit-reset']);
  assert.equal((await helix(emu, { token: a, clientId: client.clientId })).status, 429);
  const fresh = await helix(emu, { token: b, clientId: other.clientId });
  assert.equal(fresh.status, 200);
  assert.equal(fresh.headers['ratelimit-remaining'], '1');
});

test('emulator Helix answers 405 for other methods and 404 for other Helix paths', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const put = await helix(emu, { method: 'PUT', token, clientId: client.clientId });
  assert.equal(put.status, 405);
  assert.ok(put.headers['ratelimit-limit']);
  const other = await helix(emu, { token, clientId: client.clientId, path: '/helix/streams' });
  assert.equal(other.status, 404);
});
