import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Emulator, EmulatorClient } from '../../src/emulator/index.js';
import { helix, mint, setup, webhookBody } from './helpers.js';

/** Creates stream.online for broadcasters 1..n, then a channel.update for broadcaster 1. Returns ids in order. */
async function seed(emu: Emulator, client: EmulatorClient, token: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= n; i++) {
    const res = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ condition: { broadcaster_user_id: String(i) } }) });
    ids.push(res.json.data[0].id);
  }
  const update = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ type: 'channel.update', version: '2', condition: { broadcaster_user_id: '1' } }) });
  ids.push(update.json.data[0].id);
  return ids;
}

test('emulator list pages oldest first with pageSize 2 and an opaque cursor, {} on the last page', async (t) => {
  const { emu, client } = await setup(t, { pageSize: 2 });
  const token = await mint(emu, client);
  const ids = await seed(emu, client, token, 4);
  const seen: string[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const res = await helix(emu, { token, clientId: client.clientId, ...(after ? { query: `after=${encodeURIComponent(after)}` } : {}) });
    assert.equal(res.status, 200);
    pages += 1;
    assert.equal(res.json.total, 5);
    assert.equal(res.json.total_cost, 5);
    assert.equal(res.json.max_total_cost, 10_000);
    seen.push(...res.json.data.map((s: { id: string }) => s.id));
    after = res.json.pagination.cursor;
    if (!after) {
      assert.deepEqual(res.json.pagination, {});
      break;
    }
  }
  assert.equal(pages, 3);
  assert.deepEqual(seen, ids);
});

test('emulator list filters by status, type, user_id and subscription_id', async (t) => {
  const { emu, client } = await setup(t, { pageSize: 2 });
  const token = await mint(emu, client);
  const ids = await seed(emu, client, token, 3);
  emu.setSubscriptionStatus(ids[1]!, 'authorization_revoked');
  const list = async (query: string) => (await helix(emu, { token, clientId: client.clientId, query })).json;

  const revoked = await list('status=authorization_revoked');
  assert.deepEqual(revoked.data.map((s: { id: string }) => s.id), [ids[1]]);
  const byType = await list('type=channel.update');
  assert.deepEqual(byType.data.map((s: { id: string }) => s.id), [ids[3]]);
  const byUser = await list('user_id=1');
  assert.deepEqual(byUser.data.map((s: { id: string }) => s.id), [ids[0], ids[3]]);
  assert.deepEqual(byUser.pagination, {});
  const byId = await list(`subscription_id=${ids[2]}`);
  assert.deepEqual(byId.data.map((s: { id: string }) => s.id), [ids[2]]);
  const missing = await list('subscription_id=nope');
  assert.deepEqual(missing.data, []);
  // the revoked one no longer counts toward total_cost, but still toward total
  assert.equal(byId.total, 4);
  assert.equal(byId.total_cost, 3);
});

test('emulator list refuses more than one filter, an invalid status or type, and an invalid cursor', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const cases: Array<[string, string]> = [
    ['status=enabled&type=stream.online', 'only one of status, type, user_id, subscription_id may be given'],
    ['user_id=1&subscription_id=x', 'only one of status, type, user_id, subscription_id may be given'],
    ['status=bogus', 'invalid status'],
    ['type=stream.nope', 'invalid type'],
    ['after=garbage', 'invalid cursor'],
  ];
  for (const [query, message] of cases) {
    const res = await helix(emu, { token, clientId: client.clientId, query });
    assert.equal(res.status, 400, query);
    assert.deepEqual(res.json, { error: 'Bad Request', status: 400, message });
  }
});

test("emulator list shows only the token's client's subscriptions", async (t) => {
  const { emu, client } = await setup(t);
  const other = emu.addClient();
  const mine = await mint(emu, client);
  const theirs = await mint(emu, other);
  await seed(emu, client, mine, 2);
  const res = await helix(emu, { token: theirs, clientId: other.clientId });
  assert.deepEqual(res.json.data, []);
  assert.equal(res.json.total, 0);
  assert.equal(emu.subscriptions(client.clientId).length, 3);
  assert.equal(emu.subscriptions(other.clientId).length, 0);
});

test('emulator delete answers 204, 400 without id and 404 for unknown or foreign ids', async (t) => {
  const { emu, client } = await setup(t);
  const other = emu.addClient();
  const token = await mint(emu, client);
  const otherToken = await mint(emu, other);
  const [id] = await seed(emu, client, token, 1);

  const noId = await helix(emu, { method: 'DELETE', token, clientId: client.clientId });
  assert.equal(noId.status, 400);
  assert.equal(noId.json.status, 400);
  const foreign = await helix(emu, { method: 'DELETE', token: otherToken, clientId: other.clientId, query: `id=${id}` });
  assert.equal(foreign.status, 404);
  assert.deepEqual(foreign.json, { error: 'Not Found', status: 404, message: 'subscription not found' });
  const ok = await helix(emu, { method: 'DELETE', token, clientId: client.clientId, query: `id=${id}` });
  assert.equal(ok.status, 204);
  assert.equal(ok.text, '');
  assert.ok(ok.headers['ratelimit-remaining']);
  assert.deepEqual(emu.subscriptions().map((s) => s.type), ['channel.update']);
  const gone = await helix(emu, { method: 'DELETE', token, clientId: client.clientId, query: `id=${id}` });
  assert.equal(gone.status, 404);
});
