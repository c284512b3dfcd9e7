import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call, form, mint, setup } from './helpers.js';

test('emulator /oauth2/token mints a 30-character bearer token from a form body with a charset', async (t) => {
  const { emu, client } = await setup(t, { tokenTtlSeconds: 1000 });
  const res = await call(`${emu.authUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
    body: new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' }).toString(),
  });
  assert.equal(res.status, 200);
  assert.match(res.json.access_token, /^[a-z0-9]{30}$/);
  assert.equal(res.json.expires_in, 1000);
  assert.equal(res.json.token_type, 'bearer');
  assert.equal(emu.stats.mints, 1);
});

test('emulator /oauth2/token reads the query string of a bodyless POST', async (t) => {
  const { emu, client } = await setup(t);
  const q = new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' });
  const res = await call(`${emu.authUrl}/token?${q.toString()}`, { method: 'POST' });
  assert.equal(res.status, 200);
  assert.match(res.json.access_token, /^[a-z0-9]{30}$/);
});

test('emulator /oauth2/token answers every documented error row', async (t) => {
  const { emu, client } = await setup(t);
  const rows: Array<[Record<string, string>, number, string]> = [
    [{ client_id: 'nope', client_secret: client.clientSecret, grant_type: 'client_credentials' }, 400, 'invalid client'],
    [{ client_id: client.clientId, client_secret: 'wrong-secret', grant_type: 'client_credentials' }, 403, 'invalid client secret'],
    [{ client_id: client.clientId, grant_type: 'client_credentials' }, 400, 'missing client secret'],
    [{ client_secret: client.clientSecret, grant_type: 'client_credentials' }, 400, 'missing client id'],
    [{ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'password' }, 400, 'invalid grant type'],
    [{ client_id: client.clientId, client_secret: client.clientSecret }, 400, 'invalid grant type'],
  ];
  for (const [params, status, message] of rows) {
    const res = await call(`${emu.authUrl}/token`, { method: 'POST', ...form(params) });
    assert.equal(res.status, status, message);
    assert.deepEqual(res.json, { status, message });
  }
  assert.equal(emu.stats.mints, 0);
});

test('emulator /oauth2/token ignores HTTP Basic credentials', async (t) => {
  const { emu, client } = await setup(t);
  const basic = Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64');
  const res = await call(`${emu.authUrl}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  assert.equal(res.status, 400);
  assert.equal(res.json.message, 'missing client id');
});

test('emulator /oauth2/token answers GET with 404', async (t) => {
  const { emu } = await setup(t);
  const res = await call(`${emu.authUrl}/token`);
  assert.equal(res.status, 404);
});

test('emulator /oauth2/validate describes an app token with scopes null and counts down on the clock', async (t) => {
  const { emu, client, clock } = await setup(t, { tokenTtlSeconds: 100 });
  const token = await mint(emu, client);
  for (const prefix of ['OAuth', 'Bearer', 'oauth', 'BEARER']) {
    const res = await call(`${emu.authUrl}/validate`, { headers: { authorization: `${prefix} ${token}` } });
    assert.equal(res.status, 200, prefix);
    assert.deepEqual(res.json, { client_id: client.clientId, scopes: null, expires_in: 100 });
  }
  await clock.advance(40_500);
  const later = await call(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${token}` } });
  assert.equal(later.json.expires_in, 59);
  assert.equal(emu.stats.validations, 5);
});

test('emulator /oauth2/validate describes a user token with login, scopes and user_id', async (t) => {
  const { emu, client } = await setup(t);
  const token = emu.registerUserToken({ userId: '1337', login: 'cool_user', scopes: ['moderator:read:followers'] });
  const res = await call(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${token}` } });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, {
    client_id: client.clientId,
    login: 'cool_user',
    scopes: ['moderator:read:followers'],
    user_id: '1337',
    expires_in: 5_011_271,
  });
});

test('emulator /oauth2/validate answers 401 for missing, unknown, expired and clock-expired tokens', async (t) => {
  const { emu, client, clock } = await setup(t, { tokenTtlSeconds: 10 });
  const expired = await mint(emu, client);
  emu.expireToken(expired);
  const aged = await mint(emu, client);
  await clock.advance(10_000);
  const cases: Array<Record<string, string>> = [
    {},
    { authorization: 'OAuth abcdefghijabcdefghijabcdefghij' },
    { authorization: `OAuth ${expired}` },
    { authorization: `OAuth ${aged}` },
    { authorization: `Basic ${aged}` },
  ];
  for (const headers of cases) {
    const res = await call(`${emu.authUrl}/validate`, { headers });
    assert.equal(res.status, 401);
    assert.deepEqual(res.json, { status: 401, message: 'invalid access token' });
  }
});

test('emulator expireAllTokens() invalidates every token', async (t) => {
  const { emu, client } = await setup(t);
  const app = await mint(emu, client);
  const user = emu.registerUserToken({ userId: '1' });
  emu.expireAllTokens();
  for (const token of [app, user]) {
    const res = await call(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${token}` } });
    assert.equal(res.status, 401);
  }
});

test('emulator /oauth2/revoke revokes a token, which is invalid afterwards', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const res = await call(`${emu.authUrl}/revoke`, { method: 'POST', ...form({ client_id: client.clientId, token }) });
  assert.equal(res.status, 200);
  assert.equal(res.text, '');
  assert.equal(emu.stats.revocations, 1);
  const validate = await call(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${token}` } });
  assert.equal(validate.status, 401);
  const again = await call(`${emu.authUrl}/revoke?${new URLSearchParams({ client_id: client.clientId, token }).toString()}`, { method: 'POST' });
  assert.equal(again.status, 400);
  assert.deepEqual(again.json, { status: 400, message: 'Invalid token' });
});

test('emulator /oauth2/revoke answers 404 for an unknown client and 400 for an unknown token', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const unknownClient = await call(`${emu.authUrl}/revoke`, { method: 'POST', ...form({ client_id: 'nope', token }) });
  assert.equal(unknownClient.status, 404);
  assert.deepEqual(unknownClient.json, { status: 404, message: 'client does not exist' });
  const unknownToken = await call(`${emu.authUrl}/revoke`, { method: 'POST', ...form({ client_id: client.clientId, token: 'x'.repeat(30) }) });
  assert.equal(unknownToken.status, 400);
  assert.deepEqual(unknownToken.json, { status: 400, message: 'Invalid token' });
  assert.equal(emu.stats.revocations, 0);
});

test("emulator serves twitch-cli's /auth/token and /auth/validate aliases", async (t) => {
  const { emu, client } = await setup(t);
  const q = new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' });
  const minted = await call(`${emu.url}/auth/token?${q.toString()}`, { method: 'POST' });
  assert.equal(minted.status, 200);
  const validate = await call(`${emu.url}/auth/validate`, { headers: { authorization: `Bearer ${minted.json.access_token}` } });
  assert.equal(validate.status, 200);
  assert.equal(validate.json.client_id, client.clientId);
  assert.deepEqual(
    emu.stats.requests.map((r) => [r.method, r.path, r.status, r.auth]),
    [
      ['POST', '/auth/token', 200, 'none'],
      ['GET', '/auth/validate', 200, 'app'],
    ],
  );
});

test('emulator accepts configured clients and addClient() registers more', async (t) => {
  const { emu } = await setup(t, { clients: [{ clientId: 'a'.repeat(30), clientSecret: 'b'.repeat(30) }] });
  assert.deepEqual(emu.clients, [{ clientId: 'a'.repeat(30), clientSecret: 'b'.repeat(30), redirectUris: ['http://localhost:3000'] }]);
  const added = emu.addClient();
  assert.match(added.clientId, /^[a-z0-9]{30}$/);
  assert.equal(added.clientSecret.length, 30);
  assert.equal(emu.clients.length, 2);
  assert.throws(() => emu.addClient({ clientId: 'a'.repeat(30) }), /already registered/);
  for (let port = 3001; port <= 3009; port++) emu.addRedirectUri(`http://localhost:${port}`, added.clientId);
  assert.throws(() => emu.addRedirectUri('http://localhost:3010', added.clientId), /At most 10/);
  const token = await mint(emu, added);
  assert.match(token, /^[a-z0-9]{30}$/);
});

test('emulator answers unknown paths 404 and wrong methods 405 with JSON', async (t) => {
  const { emu } = await setup(t);
  const unknown = await call(`${emu.url}/nope`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.status, 404);
  const wrong = await call(`${emu.authUrl}/validate`, { method: 'DELETE' });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.json.status, 405);
});
