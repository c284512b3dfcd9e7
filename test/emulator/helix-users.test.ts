import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Emulator } from '../../src/emulator/index.js';
import { call, helix, mint, setup } from './helpers.js';

const users = (emu: Emulator, token: string, clientId: string, query: string, path = '/helix/users') => helix(emu, { token, clientId, path, query });

test('GET /helix/users finds registered users by login and id, with an app token; unknown ones are absent', async (t) => {
  const { emu, client } = await setup(t);
  emu.registerUser({ id: '12345', login: 'Demo_Streamer', display_name: 'Demo_Streamer' });
  emu.registerUser({ id: '777', login: 'second' });
  const token = await mint(emu, client);
  const res = await users(emu, token, client.clientId, 'login=demo_streamer&login=nobody_here&id=777&id=999');
  assert.equal(res.status, 200);
  type WireUser = Record<string, unknown> & { id: string; login: string; display_name: string };
  const byId: Record<string, WireUser> = Object.fromEntries((res.json.data as WireUser[]).map((u) => [u.id, u]));
  assert.deepEqual(Object.keys(byId).sort(), ['12345', '777']);
  assert.equal(byId['12345']?.login, 'demo_streamer', 'logins are lower case');
  assert.equal(byId['12345']?.display_name, 'Demo_Streamer');
  assert.equal(byId['777']?.display_name, 'second');
  for (const field of ['type', 'broadcaster_type', 'description', 'profile_image_url', 'offline_image_url', 'view_count', 'created_at']) {
    assert.ok(field in (byId['777'] ?? {}), `Get Users field ${field}`);
  }
  assert.ok(res.headers['ratelimit-remaining'], 'a Helix answer, rate-limit headers included');
});

test('GET /helix/users knows the users who consent, granted or hold a user token', async (t) => {
  const { emu, client } = await setup(t);
  emu.setConsent({ userId: '12345', login: 'demo_streamer' });
  emu.registerUserToken({ userId: '4242', login: 'bot_account', scopes: ['user:bot'] });
  const token = await mint(emu, client);
  const res = await users(emu, token, client.clientId, 'login=demo_streamer&login=bot_account');
  assert.deepEqual((res.json.data as Array<{ id: string }>).map((u) => u.id).sort(), ['12345', '4242']);
});

test('GET /helix/users: more than 100 ids and logins together is 400; none with an app token is 400', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const hundred = Array.from({ length: 50 }, (_, i) => `id=${i + 1}&login=u${i}`).join('&');
  assert.equal((await users(emu, token, client.clientId, hundred)).status, 200);
  const res = await users(emu, token, client.clientId, `${hundred}&id=999`);
  assert.equal(res.status, 400);
  assert.match(res.json.message, /100/);
  assert.equal((await users(emu, token, client.clientId, '')).status, 400);
});

test('GET /helix/users with a user token and no parameter is the token user; without a token 401', async (t) => {
  const { emu, client } = await setup(t);
  const userToken = emu.registerUserToken({ userId: '4242', login: 'bot_account' });
  const res = await users(emu, userToken, client.clientId, '');
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.data.map((u: { login: string }) => u.login), ['bot_account']);
  const anonymous = await call(`${emu.url}/helix/users?login=bot_account`);
  assert.equal(anonymous.status, 401);
});

test("GET /mock/users (twitch-cli's mock namespace) is Get Users", async (t) => {
  const { emu, client } = await setup(t);
  emu.registerUser({ id: '12345', login: 'demo_streamer' });
  const token = await mint(emu, client);
  const res = await users(emu, token, client.clientId, 'login=demo_streamer', '/mock/users');
  assert.equal(res.status, 200);
  assert.equal(res.json.data[0].id, '12345');
});

test('POST /_emulator/users registers a user; a bad body is 400; GET lists the directory', async (t) => {
  const { emu, client } = await setup(t);
  const post = (body: unknown) =>
    call(`${emu.url}/_emulator/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post({ id: '12345', login: 'demo_streamer', display_name: 'Demo Streamer' })).status, 204);
  assert.equal((await post({ id: 'abc', login: 'x' })).status, 400);
  assert.equal((await post({ id: '1', login: 'has space' })).status, 400);
  const list = await call(`${emu.url}/_emulator/users`);
  assert.deepEqual(list.json.data, [{ id: '12345', login: 'demo_streamer', display_name: 'Demo Streamer' }]);
  const token = await mint(emu, client);
  assert.equal((await users(emu, token, client.clientId, 'id=12345')).json.data[0].display_name, 'Demo Streamer');
});
