/** twitch-cli's mock paths, `first` on the subscription list, and the debug line of each request. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createJsonLogger } from '../../src/lib/logger.js';
import { call, form, helix, mint, setup, webhookBody } from './helpers.js';

test('/auth/revoke revokes like /oauth2/revoke; /auth/token and /auth/validate answer like /oauth2', async (t) => {
  const { emu, client } = await setup(t);
  const minted = await call(`${emu.url}/auth/token`, {
    method: 'POST',
    ...form({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' }),
  });
  assert.equal(minted.status, 200);
  const token = minted.json.access_token as string;
  assert.equal((await call(`${emu.url}/auth/validate`, { headers: { authorization: `OAuth ${token}` } })).status, 200);
  const revoked = await call(`${emu.url}/auth/revoke`, { method: 'POST', ...form({ client_id: client.clientId, token }) });
  assert.equal(revoked.status, 200);
  assert.equal(emu.stats.revocations, 1);
  assert.equal((await call(`${emu.url}/auth/validate`, { headers: { authorization: `OAuth ${token}` } })).status, 401);
  assert.equal((await call(`${emu.url}/auth/revoke`, { method: 'POST', ...form({ client_id: client.clientId, token }) })).status, 400, 'a revoked token is unknown');
  assert.equal((await call(`${emu.url}/auth/revoke`)).status, 405, 'GET is not allowed');
});

test("POST /auth/authorize is twitch-cli's user token: query parameters, the grant recorded", async (t) => {
  const { emu, client } = await setup(t);
  const q = new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'user_token', user_id: '4242', scope: 'user:read:chat user:bot' });
  const res = await call(`${emu.url}/auth/authorize?${q.toString()}`, { method: 'POST' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.scope, ['user:read:chat', 'user:bot']);
  assert.equal(res.json.token_type, 'bearer');
  const validated = await call(`${emu.url}/auth/validate`, { headers: { authorization: `Bearer ${res.json.access_token}` } });
  assert.equal(validated.json.user_id, '4242');
  assert.deepEqual(emu.grants()[0]?.scopes, ['user:bot', 'user:read:chat']);
  q.set('client_secret', 'wrong-secret-0123456789');
  const bad = await call(`${emu.url}/auth/authorize?${q.toString()}`, { method: 'POST' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.message, 'Client ID/Secret invalid');
});

test('/mock/eventsub/subscriptions is Helix (twitch-cli mock namespace)', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ condition: { broadcaster_user_id: '1' } }) });
  const res = await helix(emu, { token, clientId: client.clientId, path: '/mock/eventsub/subscriptions' });
  assert.equal(res.status, 200);
  assert.equal(res.json.data.length, 1);
});

test('list honours first (1 to 100): pages of that size; 0, 101 or not a number is 400', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  for (let i = 1; i <= 5; i++) {
    await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ condition: { broadcaster_user_id: String(i) } }) });
  }
  const first = await helix(emu, { token, clientId: client.clientId, query: 'first=2' });
  assert.equal(first.status, 200);
  assert.equal(first.json.data.length, 2);
  assert.ok(first.json.pagination.cursor);
  const second = await helix(emu, { token, clientId: client.clientId, query: `first=3&after=${encodeURIComponent(first.json.pagination.cursor)}` });
  assert.equal(second.json.data.length, 3);
  assert.deepEqual(second.json.pagination, {});
  assert.equal((await helix(emu, { token, clientId: client.clientId, query: 'first=100' })).json.data.length, 5);
  for (const bad of ['0', '101', 'ten', '-1', '2.5', '']) {
    const res = await helix(emu, { token, clientId: client.clientId, query: `first=${bad}` });
    assert.equal(res.status, 400, `first=${bad}`);
  }
});

test('each request is logged at debug level with method, path without query, status and ms; never the secret', async (t) => {
  const lines: string[] = [];
  const logger = createJsonLogger({ sink: { write: (l: string) => lines.push(l) }, level: 'debug', now: () => 0 });
  const { emu, client } = await setup(t, { logger });
  const q = new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' });
  const minted = await call(`${emu.url}/auth/token?${q.toString()}`, { method: 'POST' });
  await call(`${emu.url}/_emulator/stats`);
  const records = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const requests = records.filter((r) => r.msg === 'emulator request');
  assert.equal(requests.length, 2);
  assert.deepEqual(
    requests.map((r) => [r.level, r.method, r.path, r.status, typeof r.ms]),
    [
      ['debug', 'POST', '/auth/token', 200, 'number'],
      ['debug', 'GET', '/_emulator/stats', 200, 'number'],
    ],
  );
  const all = lines.join('');
  assert.ok(!all.includes(client.clientSecret), 'the client secret is not logged');
  assert.ok(!all.includes(minted.json.access_token as string), 'the token is not logged');
});
