import assert from 'node:assert/strict';
import { test } from 'node:test';
import { untilSleeping } from '../helpers/wait.js';
import { call, form, helix, mint, setup, webhookBody } from './helpers.js';

test("emulator 'status' fault answers instead, `times` times, with Helix body and rate headers", async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'status', status: 503, times: 2 });
  for (let i = 0; i < 2; i++) {
    const res = await helix(emu, { token, clientId: client.clientId });
    assert.equal(res.status, 503);
    assert.deepEqual(res.json, { error: 'Service Unavailable', status: 503, message: 'injected fault' });
    assert.equal(res.headers['ratelimit-remaining'], '800');
  }
  assert.equal((await helix(emu, { token, clientId: client.clientId })).status, 200);
  assert.deepEqual(emu.stats.helix.byStatus, { '503': 2, '200': 1 });
});

test("emulator 'status' fault can target the token endpoint (alias included) with a given body", async (t) => {
  const { emu, client } = await setup(t);
  emu.injectFault({ kind: 'status', status: 500, body: { status: 500, message: 'boom' }, match: { pathPrefix: '/oauth2/token', method: 'post' } });
  const q = new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' });
  const res = await call(`${emu.url}/auth/token?${q.toString()}`, { method: 'POST' });
  assert.equal(res.status, 500);
  assert.deepEqual(res.json, { status: 500, message: 'boom' });
  assert.equal(emu.stats.mints, 0);
  assert.equal((await call(`${emu.url}/auth/token?${q.toString()}`, { method: 'POST' })).status, 200);
});

test("emulator 'status' 429 fault reads as the bucket's 429 (Remaining 0)", async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'status', status: 429 });
  const res = await helix(emu, { token, clientId: client.clientId });
  assert.equal(res.status, 429);
  assert.equal(res.headers['ratelimit-remaining'], '0');
  assert.equal(res.json.message, 'injected fault');
});

test('emulator faults without pathPrefix only hit Helix, and a method match is honoured', async (t) => {
  const { emu, client } = await setup(t);
  emu.injectFault({ kind: 'status', status: 500, match: { method: 'POST' } });
  const token = await mint(emu, client); // not faulted: not Helix
  assert.equal((await helix(emu, { token, clientId: client.clientId })).status, 200); // GET: not faulted
  assert.equal((await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() })).status, 500);
  assert.equal(emu.subscriptions().length, 0);
});

test("emulator 'latency' fault delays on the emulator's clock, then handles normally", async (t) => {
  const { emu, client, clock } = await setup(t);
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'latency', ms: 5_000 });
  let settled = false;
  const pending = helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() }).finally(() => (settled = true));
  await untilSleeping(clock, () => clock.pending === 1, 'the request to wait out its latency');
  assert.equal(clock.nextWake(), clock.now() + 5_000);
  await clock.advance(4_999);
  assert.equal(settled, false);
  assert.equal(emu.subscriptions().length, 0);
  await clock.advance(1);
  const res = await pending;
  assert.equal(res.status, 202);
});

test("emulator 'reset' fault destroys the socket and nothing happens", async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'reset', match: { pathPrefix: '/helix/eventsub/subscriptions' } });
  await assert.rejects(helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody(), path: '/eventsub/subscriptions' }));
  assert.equal(emu.subscriptions().length, 0);
  assert.deepEqual(emu.stats.requests.at(-1), { method: 'POST', path: '/eventsub/subscriptions', status: 0, auth: 'app' });
  assert.equal((await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() })).status, 202);
});

test("emulator 'drop-response' fault performs the create, then hangs up without answering", async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'drop-response', match: { method: 'POST' } });
  await assert.rejects(helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() }));
  assert.equal(emu.subscriptions().length, 1);
  assert.equal(emu.subscriptions()[0]?.status, 'enabled');
  const retry = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() });
  assert.equal(retry.status, 409);
});

test("emulator 'expire-token' fault expires the presented token just before handling", async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'expire-token' });
  const res = await helix(emu, { token, clientId: client.clientId });
  assert.equal(res.status, 401);
  assert.equal(res.json.message, 'Invalid OAuth token');
  assert.equal(emu.stats.requests.at(-1)?.auth, 'invalid');
  const validate = await call(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${token}` } });
  assert.equal(validate.status, 401);
  const fresh = await mint(emu, client);
  assert.equal((await helix(emu, { token: fresh, clientId: client.clientId })).status, 200);
});

test('emulator clearFaults() empties the queue and invalid faults are refused', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'status', status: 500, times: 5 });
  emu.clearFaults();
  assert.equal((await helix(emu, { token, clientId: client.clientId })).status, 200);
  assert.throws(() => emu.injectFault({ kind: 'status', status: 99 }), /Invalid fault/);
  assert.throws(() => emu.injectFault({ kind: 'latency', ms: 1, times: 0 }), /Invalid fault/);
});

test('emulator records every request in order with its auth kind', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const user = emu.registerUserToken({ userId: '5' });
  await helix(emu, { token: user, clientId: client.clientId });
  await helix(emu, { token: 'q'.repeat(30), clientId: client.clientId });
  await call(`${emu.authUrl}/revoke`, { method: 'POST', ...form({ client_id: client.clientId, token }) });
  await helix(emu, { token, clientId: client.clientId });
  assert.deepEqual(
    emu.stats.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.auth}`),
    [
      'POST /oauth2/token 200 none',
      'GET /helix/eventsub/subscriptions 200 user',
      'GET /helix/eventsub/subscriptions 401 invalid',
      'POST /oauth2/revoke 200 none',
      'GET /helix/eventsub/subscriptions 401 invalid',
    ],
  );
  assert.deepEqual(emu.stats.helix.byMethod, { GET: 3 });
  emu.resetStats();
  assert.equal(emu.stats.requests.length, 0);
  assert.equal(emu.stats.helix.total, 0);
});
