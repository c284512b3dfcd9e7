import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEmulator } from '../../src/emulator/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { untilSleeping } from '../helpers/wait.js';
import { call, helix, mint, setup, webhookBody } from './helpers.js';

const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('emulator POST /_emulator/user-tokens registers a user token that validates', async (t) => {
  const { emu, client } = await setup(t);
  const res = await call(`${emu.url}/_emulator/user-tokens`, { method: 'POST', ...json({ user_id: '42', login: 'answer', scopes: ['user:read:chat'] }) });
  assert.equal(res.status, 200);
  assert.match(res.json.access_token, /^[a-z0-9]{30}$/);
  const validate = await call(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${res.json.access_token}` } });
  assert.deepEqual(validate.json, { client_id: client.clientId, login: 'answer', scopes: ['user:read:chat'], user_id: '42', expires_in: 5_011_271 });
  const unknown = await call(`${emu.url}/_emulator/user-tokens`, { method: 'POST', ...json({ client_id: 'nope', user_id: '1' }) });
  assert.equal(unknown.status, 400);
  const invalid = await call(`${emu.url}/_emulator/user-tokens`, { method: 'POST', ...json({ login: 'no-user-id' }) });
  assert.equal(invalid.status, 400);
  const badJson = await call(`${emu.url}/_emulator/user-tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
  assert.equal(badJson.status, 400);
  assert.equal(badJson.json.message, 'The request body is not valid JSON');
});

test('emulator POST/DELETE /_emulator/faults queue and clear faults', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const added = await call(`${emu.url}/_emulator/faults`, { method: 'POST', ...json({ kind: 'status', status: 502, times: 3 }) });
  assert.equal(added.status, 204);
  assert.equal((await helix(emu, { token, clientId: client.clientId })).status, 502);
  assert.equal((await call(`${emu.url}/_emulator/faults`, { method: 'DELETE' })).status, 204);
  assert.equal((await helix(emu, { token, clientId: client.clientId })).status, 200);
  const bad = await call(`${emu.url}/_emulator/faults`, { method: 'POST', ...json({ kind: 'meteor' }) });
  assert.equal(bad.status, 400);
});

test('emulator GET /_emulator/stats returns the counters, without counting control requests', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  await helix(emu, { token, clientId: client.clientId });
  const res = await call(`${emu.url}/_emulator/stats`);
  assert.equal(res.status, 200);
  assert.equal(res.json.mints, 1);
  assert.equal(res.json.helix.total, 1);
  assert.deepEqual(res.json.helix.byStatus, { '200': 1 });
  assert.equal(res.json.requests.length, 2);
  assert.equal((await call(`${emu.url}/_emulator/stats`, { method: 'DELETE' })).status, 204);
  assert.equal(emu.stats.mints, 0);
});

test('emulator POST /_emulator/expire-tokens expires every token, or the one named', async (t) => {
  const { emu, client } = await setup(t);
  const a = await mint(emu, client);
  const b = await mint(emu, client);
  const valid = async (token: string) => (await call(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${token}` } })).status;
  assert.equal((await call(`${emu.url}/_emulator/expire-tokens`, { method: 'POST', ...json({ access_token: a }) })).status, 204);
  assert.deepEqual([await valid(a), await valid(b)], [401, 200]);
  assert.equal((await call(`${emu.url}/_emulator/expire-tokens`, { method: 'POST' })).status, 204);
  assert.equal(await valid(b), 401);
});

test('emulator /_emulator/subscriptions lists subscriptions and sets a status', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const created = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody() });
  const id = created.json.data[0].id as string;
  const list = await call(`${emu.url}/_emulator/subscriptions`);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.data.map((s: { id: string }) => s.id), [id]);
  const set = await call(`${emu.url}/_emulator/subscriptions/${id}/status`, { method: 'POST', ...json({ status: 'notification_failures_exceeded' }) });
  assert.equal(set.status, 204);
  assert.equal(emu.subscriptions()[0]?.status, 'notification_failures_exceeded');
  const filtered = await helix(emu, { token, clientId: client.clientId, query: 'status=notification_failures_exceeded' });
  assert.equal(filtered.json.data.length, 1);
  const unknown = await call(`${emu.url}/_emulator/subscriptions/nope/status`, { method: 'POST', ...json({ status: 'enabled' }) });
  assert.equal(unknown.status, 404);
  assert.throws(() => emu.setSubscriptionStatus('nope', 'enabled'), /Unknown subscription/);
});

test('emulator POST /_emulator/clients registers a client usable for minting', async (t) => {
  const { emu } = await setup(t);
  const res = await call(`${emu.url}/_emulator/clients`, { method: 'POST', ...json({ client_id: 'c'.repeat(30) }) });
  assert.equal(res.status, 200);
  assert.equal(res.json.client_id, 'c'.repeat(30));
  const token = await mint(emu, { clientId: res.json.client_id, clientSecret: res.json.client_secret });
  assert.match(token, /^[a-z0-9]{30}$/);
  const taken = await call(`${emu.url}/_emulator/clients`, { method: 'POST', ...json({ client_id: 'c'.repeat(30) }) });
  assert.equal(taken.status, 409);
});

test('emulator control answers 404 for unknown and 405 for wrong methods', async (t) => {
  const { emu } = await setup(t);
  assert.equal((await call(`${emu.url}/_emulator/nope`)).status, 404);
  assert.equal((await call(`${emu.url}/_emulator/stats`, { method: 'PUT' })).status, 405);
});

test('emulator close() is idempotent and ends a request stuck in a latency fault', async () => {
  const clock = new FakeClock();
  const emu = await startEmulator({ clock });
  const client = emu.clients[0]!;
  const token = await mint(emu, client);
  emu.injectFault({ kind: 'latency', ms: 60_000 });
  const stuck = helix(emu, { token, clientId: client.clientId });
  await untilSleeping(clock, () => clock.pending === 1, 'the request to wait out its latency');
  await Promise.all([emu.close(), emu.close()]);
  await emu.close();
  await assert.rejects(stuck);
  await assert.rejects(call(`${emu.url}/_emulator/stats`));
});
