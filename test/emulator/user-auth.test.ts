/**
 * The emulator's user authorization, faithful to Twitch's flows: the authorize page (consent set through the
 * control API), the single-use code exchange, the device code flow, /validate of user tokens, Get User
 * Authorization, the 403 of a create without the grant, and what a user disconnecting the app sets off.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { eventually, form, helix, mint, setup, startReceiver, webhookBody, type Received } from './helpers.js';

const REDIRECT = 'http://localhost:3000/callback';

async function authorize(url: string, params: Record<string, string>): Promise<{ status: number; location: string | undefined; text: string }> {
  const res = await request(`${url}/oauth2/authorize?${new URLSearchParams(params).toString()}`);
  const text = await res.body.text();
  return { status: res.statusCode, location: res.headers.location as string | undefined, text };
}

async function post(url: string, params: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(url, { method: 'POST', ...form(params) });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

test('emulator authorize: redirects with code, granted scope and state for the consenting user; a denial with access_denied', async (t) => {
  const { emu, client } = await setup(t);
  const base = { response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'moderator:read:followers bits:read', state: 's-1' };
  // Not registered yet: Twitch sends the mismatch to the app's first registered URL.
  emu.setConsent({ userId: '42' });
  const mismatch = new URL((await authorize(emu.url, base)).location!);
  assert.equal(mismatch.origin + mismatch.pathname, 'http://localhost:3000/');
  assert.deepEqual([mismatch.searchParams.get('error'), mismatch.searchParams.get('code')], ['redirect_mismatch', null]);
  emu.setConsent(undefined);
  emu.addRedirectUri(REDIRECT);
  assert.equal(new URL((await authorize(emu.url, { ...base, redirect_uri: `${REDIRECT}/` })).location!).searchParams.get('error'), 'redirect_mismatch', 'a trailing slash is another URL');
  const none = await authorize(emu.url, base);
  assert.equal(none.status, 200);
  assert.match(none.text, /POST \/_emulator\/consent/);
  emu.setConsent({ userId: '42', login: 'mod_marigold', scopes: ['moderator:read:followers'] });
  const ok = await authorize(emu.url, base);
  assert.equal(ok.status, 302);
  const back = new URL(ok.location!);
  assert.equal(back.origin + back.pathname, REDIRECT);
  assert.equal(back.searchParams.get('state'), 's-1');
  assert.equal(back.searchParams.get('scope'), 'moderator:read:followers', 'the user granted fewer scopes than asked');
  assert.match(back.searchParams.get('code')!, /^[a-z0-9]{30}$/);
  emu.setConsent({ decision: 'deny' });
  const denied = new URL((await authorize(emu.url, { ...base, state: 's-2' })).location!);
  assert.deepEqual(
    [denied.searchParams.get('error'), denied.searchParams.get('state'), denied.searchParams.get('code')],
    ['access_denied', 's-2', null],
  );
  assert.equal((await authorize(emu.url, { ...base, client_id: 'nope' })).status, 400);
  assert.equal((await authorize(emu.url, { ...base, response_type: 'token' })).status, 400);
});

test('emulator code exchange: once, with the client secret and the same redirect_uri; the user token validates with user, login, scopes', async (t) => {
  const { emu, client } = await setup(t);
  const other = emu.addClient({ redirectUris: [REDIRECT] });
  emu.addRedirectUri(REDIRECT);
  emu.setConsent({ userId: '42', login: 'mod_marigold' });
  const code = () =>
    authorize(emu.url, { response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'moderator:read:followers', state: 'x' }).then(
      (r) => new URL(r.location!).searchParams.get('code')!,
    );
  const exchange = (c: string, overrides: Record<string, string> = {}) =>
    post(`${emu.authUrl}/token`, { client_id: client.clientId, client_secret: client.clientSecret, code: c, grant_type: 'authorization_code', redirect_uri: REDIRECT, ...overrides });
  const first = await code();
  assert.deepEqual((await exchange(first, { redirect_uri: 'http://localhost:3000' })).json, {
    status: 400,
    message: 'Parameter redirect_uri does not match registeredURI',
  });
  const second = await code();
  assert.deepEqual((await exchange(second, { client_secret: 'wrong' })).json, { status: 403, message: 'invalid client secret' });
  const forOther = await post(`${emu.authUrl}/token`, { client_id: other.clientId, client_secret: other.clientSecret, code: second, grant_type: 'authorization_code', redirect_uri: REDIRECT });
  assert.deepEqual(forOther.json, { status: 400, message: 'Invalid authorization code' }, 'a code of another client');
  const third = await code();
  const ok = await exchange(third);
  assert.equal(ok.status, 200);
  assert.deepEqual(Object.keys(ok.json).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
  assert.deepEqual(ok.json.scope, ['moderator:read:followers']);
  assert.deepEqual((await exchange(third)).json, { status: 400, message: 'Invalid authorization code' }, 'a code works once');
  const validated = await request(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${String(ok.json.access_token)}` } });
  const v = (await validated.body.json()) as Record<string, unknown>;
  assert.deepEqual([v.client_id, v.user_id, v.login, v.scopes], [client.clientId, '42', 'mod_marigold', ['moderator:read:followers']]);
  // Revoking the user token leaves the grant: Get User Authorization still lists it.
  const revoked = await request(`${emu.authUrl}/revoke`, { method: 'POST', ...form({ client_id: client.clientId, token: String(ok.json.access_token) }) });
  await revoked.body.dump();
  assert.equal(revoked.statusCode, 200);
  const app = await mint(emu, client);
  const users = await helix(emu, { method: 'GET', token: app, clientId: client.clientId, path: '/helix/authorization/users', query: 'user_id=42&user_id=43' });
  assert.equal(users.status, 200);
  assert.deepEqual(users.json.data, [{ user_id: '42', user_name: 'mod_marigold', user_login: 'mod_marigold', scopes: ['moderator:read:followers'] }]);
  const userToken = emu.registerUserToken({ userId: '7' });
  assert.equal((await helix(emu, { method: 'GET', token: userToken, clientId: client.clientId, path: '/helix/authorization/users', query: 'user_id=42' })).status, 401);
  assert.equal((await helix(emu, { method: 'GET', token: app, clientId: client.clientId, path: '/helix/authorization/users' })).status, 400);
});

test('emulator device flow: pending until the user answers, a token once approved, then the code is spent; a denial and an unknown code', async (t) => {
  const { emu, client } = await setup(t);
  const started = await post(`${emu.authUrl}/device`, { client_id: client.clientId, scopes: 'bits:read channel:read:subscriptions' });
  assert.equal(started.status, 200);
  assert.deepEqual([started.json.expires_in, started.json.interval], [1800, 5]);
  const userCode = String(started.json.user_code);
  assert.equal(started.json.verification_uri, `${emu.url}/activate?device-code=${userCode}`);
  const poll = () => post(`${emu.authUrl}/token`, { client_id: client.clientId, device_code: String(started.json.device_code), grant_type: 'urn:ietf:params:oauth:grant-type:device_code' });
  assert.deepEqual((await poll()).json, { status: 400, message: 'authorization_pending' });
  emu.approveDevice(userCode, { userId: '99', login: 'cool_broadcaster' });
  const done = await poll();
  assert.equal(done.status, 200);
  assert.deepEqual(done.json.scope, ['bits:read', 'channel:read:subscriptions']);
  assert.deepEqual((await poll()).json, { status: 400, message: 'invalid device code' });
  assert.deepEqual(emu.grants(), [{ user_id: '99', login: 'cool_broadcaster', scopes: ['bits:read', 'channel:read:subscriptions'] }]);

  const again = await post(`${emu.authUrl}/device`, { client_id: client.clientId, scopes: 'bits:read' });
  const activate = await request(`${emu.url}/activate?device-code=${String(again.json.user_code)}&emulator_decision=deny`);
  assert.equal(activate.statusCode, 200);
  await activate.body.dump();
  const refused = await post(`${emu.authUrl}/token`, { client_id: client.clientId, device_code: String(again.json.device_code), grant_type: 'urn:ietf:params:oauth:grant-type:device_code' });
  assert.deepEqual(refused.json, { status: 400, message: 'access_denied' });
  const missing = await post(`${emu.authUrl}/token`, { client_id: client.clientId, grant_type: 'urn:ietf:params:oauth:grant-type:device_code' });
  assert.deepEqual(missing.json, { status: 400, message: 'missing device_code' });
});

test('emulator: a user who disconnects the app loses the grant, their subscriptions are revoked (authorization_revoked, revocation sent), user.authorization.revoke goes out; a new grant sends user.authorization.grant', async (t) => {
  const messages: Received[] = [];
  const receiver = await startReceiver(t, (r) => {
    messages.push(r);
    const body = JSON.parse(r.body.toString('utf8')) as { challenge?: string };
    return { status: body.challenge ? 200 : 204, body: body.challenge ?? '' };
  });
  const { emu, client } = await setup(t, { deliverTo: receiver.origin });
  emu.addRedirectUri(REDIRECT);
  const app = await mint(emu, client);
  emu.registerUserToken({ userId: '42', login: 'mod_marigold', scopes: ['moderator:read:followers'] });
  const create = async (body: unknown) => {
    const res = await helix(emu, { method: 'POST', token: app, clientId: client.clientId, body });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    return String(res.json.data[0].id);
  };
  const follow = await create(webhookBody({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '42', moderator_user_id: '42' } }));
  const online = await create(webhookBody({ type: 'stream.online', condition: { broadcaster_user_id: '42' } }));
  const revokeSub = await create(webhookBody({ type: 'user.authorization.revoke', condition: { client_id: client.clientId } }));
  const grantSub = await create(webhookBody({ type: 'user.authorization.grant', condition: { client_id: client.clientId } }));
  await eventually(() => emu.subscriptions().every((s) => s.status === 'enabled'));

  assert.deepEqual(emu.disconnectUser('42'), [follow]);
  await eventually(() => messages.filter((m) => m.headers['twitch-eventsub-message-type'] !== 'webhook_callback_verification').length === 2);
  const byType = (type: string) => messages.filter((m) => m.headers['twitch-eventsub-message-type'] === type).map((m) => JSON.parse(m.body.toString('utf8')) as { subscription: { id: string; status: string }; event: { user_id: string; client_id: string; user_login: string | null } });
  assert.deepEqual(byType('revocation').map((b) => [b.subscription.id, b.subscription.status]), [[follow, 'authorization_revoked']]);
  assert.deepEqual(byType('notification').map((b) => [b.subscription.id, b.event.user_id, b.event.client_id]), [[revokeSub, '42', client.clientId]]);
  assert.equal(emu.subscriptions().find((s) => s.id === online)?.status, 'enabled', 'a type that needs no grant stays');
  assert.deepEqual(emu.grants(), []);
  const refused = await helix(emu, { method: 'POST', token: app, clientId: client.clientId, body: webhookBody({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '42', moderator_user_id: '42' } }) });
  assert.equal(refused.status, 403, 'no grant, no follow subscription');

  emu.setConsent({ userId: '42', login: 'mod_marigold' });
  const loc = (await authorize(emu.url, { response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'moderator:read:followers', state: 'g' })).location!;
  const exchanged = await post(`${emu.authUrl}/token`, {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    code: new URL(loc).searchParams.get('code')!,
    grant_type: 'authorization_code',
    redirect_uri: REDIRECT,
  });
  assert.equal(exchanged.status, 200);
  await eventually(() => byType('notification').length === 2);
  assert.deepEqual(byType('notification').map((b) => [b.subscription.id, b.event.user_id, b.event.user_login]).at(-1), [grantSub, '42', 'mod_marigold']);
});
