import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { EmulatorOptions } from '../../src/emulator/index.js';
import type { WsSessions, WsSessionView } from '../../src/emulator/ws-sessions.js';
import { eventually, helix, mint, SECRET, setup, startReceiver, webhookBody } from './helpers.js';

/** A stand-in for the EventSub WebSocket server: sessions by id, frames sent recorded. */
class FakeSessions implements WsSessions {
  readonly sessions = new Map<string, WsSessionView>();
  readonly assigned = new Set<string>();
  readonly sent: { id: string; frame: object }[] = [];
  readonly #listeners = new Set<(s: WsSessionView) => void>();

  connect(id: string): void {
    this.sessions.set(id, { id, status: 'connected', connectedAt: '2026-01-01T00:00:00Z' });
  }

  close(id: string, code: number): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.status = 'disconnected';
    s.closeCode = code;
    s.disconnectedAt = '2026-01-01T00:01:00Z';
    for (const l of this.#listeners) l(s);
  }

  get(id: string): WsSessionView | undefined {
    return this.sessions.get(id);
  }

  assign(id: string): boolean {
    if (this.sessions.get(id)?.status !== 'connected') return false;
    this.assigned.add(id);
    return true;
  }

  send(id: string, frame: object): boolean {
    if (this.sessions.get(id)?.status !== 'connected') return false;
    this.sent.push({ id, frame });
    return true;
  }

  onDisconnect(listener: (s: WsSessionView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

async function start(t: TestContext, options: EmulatorOptions = {}) {
  const started = await setup(t, options);
  const token = await mint(started.emu, started.client);
  const call = (method: string, path: string, init: { body?: unknown; query?: string } = {}) =>
    helix(started.emu, { method, token, clientId: started.client.clientId, path: `/helix/eventsub/conduits${path}`, ...init });
  return { ...started, token, call };
}

test('conduits: create, list, update shard_count, delete; app token only', async (t) => {
  const { emu, client, call } = await start(t);
  const created = await call('POST', '', { body: { shard_count: 3 } });
  assert.equal(created.status, 200);
  const id = created.json.data[0].id as string;
  assert.equal(created.json.data[0].shard_count, 3);
  assert.deepEqual((await call('GET', '')).json.data, [{ id, shard_count: 3 }]);
  const updated = await call('PATCH', '', { body: { id, shard_count: 1 } });
  assert.deepEqual(updated.json.data, [{ id, shard_count: 1 }]);
  assert.equal((await call('PATCH', '', { body: { id: 'nope', shard_count: 1 } })).status, 404);
  assert.equal((await call('PATCH', '', { body: { id, shard_count: 0 } })).status, 400);
  assert.equal((await call('POST', '', { body: { shard_count: 20_001 } })).status, 400);
  assert.equal((await call('DELETE', '', { query: 'id=nope' })).status, 404);
  assert.equal((await call('DELETE', '', { query: `id=${id}` })).status, 204);
  assert.deepEqual((await call('GET', '')).json.data, []);

  const user = emu.registerUserToken({ userId: '1234' });
  const refused = await helix(emu, { method: 'GET', token: user, clientId: client.clientId, path: '/helix/eventsub/conduits' });
  assert.equal(refused.status, 401);
});

test('conduits: the sixth conduit of a client is 429', async (t) => {
  const { call } = await start(t);
  for (let i = 0; i < 5; i += 1) assert.equal((await call('POST', '', { body: { shard_count: 1 } })).status, 200);
  const sixth = await call('POST', '', { body: { shard_count: 1 } });
  assert.equal(sixth.status, 429);
});

test('shards: update answers per-shard errors; get paginates and filters by status', async (t) => {
  const ws = new FakeSessions();
  ws.connect('S1');
  const { call } = await start(t, { wsSessions: ws });
  const id = (await call('POST', '', { body: { shard_count: 150 } })).json.data[0].id as string;
  const res = await call('PATCH', '/shards', {
    body: {
      conduit_id: id,
      shards: [
        { id: '0', transport: { method: 'websocket', session_id: 'S1' } },
        { id: '1', transport: { method: 'websocket', session_id: 'unknown' } },
        { id: '150', transport: { method: 'websocket', session_id: 'S1' } },
        { id: '2', transport: { method: 'webhook', callback: 'http://x.example/cb', secret: SECRET } },
      ],
    },
  });
  assert.equal(res.status, 202);
  assert.deepEqual(res.json.data, [{ id: '0', status: 'enabled', transport: { method: 'websocket', session_id: 'S1', connected_at: '2026-01-01T00:00:00Z' } }]);
  assert.deepEqual(
    res.json.errors.map((e: { id: string; message: string }) => [e.id, e.message]),
    [
      ['1', 'The websocket session is not connected'],
      ['150', "The shard id is outside the conduit's range"],
      ['2', 'invalid transport callback: must be https on port 443'],
    ],
  );
  assert.ok(ws.assigned.has('S1'));
  assert.equal((await call('PATCH', '/shards', { body: { conduit_id: 'nope', shards: [{ id: '0' }] } })).status, 404);

  const first = await call('GET', '/shards', { query: `conduit_id=${id}` });
  assert.equal(first.json.data.length, 100);
  const second = await call('GET', '/shards', { query: `conduit_id=${id}&after=${first.json.pagination.cursor as string}` });
  assert.equal(second.json.data.length, 50);
  assert.deepEqual(second.json.pagination, {});
  const enabled = await call('GET', '/shards', { query: `conduit_id=${id}&status=enabled` });
  assert.deepEqual(enabled.json.data.map((s: { id: string }) => s.id), ['0']);
  assert.equal((await call('GET', '/shards', { query: 'conduit_id=nope' })).status, 404);

  ws.close('S1', 4001);
  const after = await call('GET', '/shards', { query: `conduit_id=${id}&status=websocket_received_inbound_traffic` });
  assert.deepEqual(after.json.data.map((s: { id: string }) => s.id), ['0']);
});

test('shards: without wsSessions every session is unknown', async (t) => {
  const { call } = await start(t);
  const id = (await call('POST', '', { body: { shard_count: 1 } })).json.data[0].id as string;
  const res = await call('PATCH', '/shards', { body: { conduit_id: id, shards: [{ id: '0', transport: { method: 'websocket', session_id: 'S1' } }] } });
  assert.equal(res.json.errors[0].message, 'The websocket session is not connected');
});

test('shards: a webhook shard is verified with a conduit_shard challenge', async (t) => {
  const receiver = await startReceiver(t, (r) => {
    const body = JSON.parse(r.body.toString()) as { challenge: string; conduit_shard?: unknown };
    return { status: body.conduit_shard ? 200 : 400, body: body.challenge };
  });
  const { call } = await start(t, { deliverTo: receiver.origin });
  const id = (await call('POST', '', { body: { shard_count: 1 } })).json.data[0].id as string;
  const res = await call('PATCH', '/shards', {
    body: { conduit_id: id, shards: [{ id: '0', transport: { method: 'webhook', callback: 'https://events.example.com/conduit', secret: SECRET } }] },
  });
  assert.equal(res.json.data[0].status, 'webhook_callback_verification_pending');
  assert.equal(res.json.data[0].transport.secret, undefined);
  await eventually(() => receiver.received.length === 1);
  // The outcome is set once the answer is read: ask until it shows (each ask is a full round trip, no sleep).
  let status = '';
  for (let i = 0; i < 200 && status !== 'enabled'; i += 1) status = (await call('GET', '/shards', { query: `conduit_id=${id}` })).json.data[0].status as string;
  assert.equal(status, 'enabled');
  assert.equal(receiver.received[0]!.url, '/conduit');
});

test('conduit subscriptions: created enabled with the app token, listed, revoked with their conduit', async (t) => {
  const { emu, client, token, call } = await start(t);
  const id = (await call('POST', '', { body: { shard_count: 1 } })).json.data[0].id as string;
  const body = webhookBody({ transport: { method: 'conduit', conduit_id: id } });
  const created = await helix(emu, { method: 'POST', token, clientId: client.clientId, body });
  assert.equal(created.status, 202);
  assert.equal(created.json.data[0].status, 'enabled');
  assert.deepEqual(created.json.data[0].transport, { method: 'conduit', conduit_id: id });
  const listed = await helix(emu, { token, clientId: client.clientId });
  assert.deepEqual(listed.json.data[0].transport, { method: 'conduit', conduit_id: id });

  const unknown = await helix(emu, { method: 'POST', token, clientId: client.clientId, body: webhookBody({ transport: { method: 'conduit', conduit_id: 'nope' } }) });
  assert.equal(unknown.status, 400);
  const user = emu.registerUserToken({ userId: '1234' });
  assert.equal((await helix(emu, { method: 'POST', token: user, clientId: client.clientId, body })).status, 401);

  assert.equal((await call('DELETE', '', { query: `id=${id}` })).status, 204);
  assert.equal(emu.subscriptions()[0]!.status, 'conduit_deleted');
});

test('routing: stable by broadcaster, one retry on another shard, then dropped and counted', async (t) => {
  const ws = new FakeSessions();
  for (const s of ['A', 'B', 'C']) ws.connect(s);
  const { emu, client, token, call } = await start(t, { wsSessions: ws });
  const id = (await call('POST', '', { body: { shard_count: 3 } })).json.data[0].id as string;
  const shards = ['A', 'B', 'C'].map((s, i) => ({ id: String(i), transport: { method: 'websocket', session_id: s } }));
  assert.equal((await call('PATCH', '/shards', { body: { conduit_id: id, shards } })).json.errors.length, 0);
  const body = webhookBody({ transport: { method: 'conduit', conduit_id: id } });
  const sub = (await helix(emu, { method: 'POST', token, clientId: client.clientId, body })).json.data[0].id as string;

  const first = emu.deliverToConduit(sub, { broadcaster_user_id: '1234' });
  assert.ok(first !== undefined);
  assert.equal(emu.deliverToConduit(sub, { broadcaster_user_id: '1234' }), first);
  const frame = ws.sent[0]!.frame as { metadata: { message_type: string }; payload: { subscription: { transport: unknown } } };
  assert.equal(frame.metadata.message_type, 'notification');
  assert.deepEqual(frame.payload.subscription.transport, { method: 'conduit', conduit_id: id });

  const sessionOf = (shard: string): string => ['A', 'B', 'C'][Number(shard)]!;
  ws.close(sessionOf(first), 1006);
  const retried = emu.deliverToConduit(sub, { broadcaster_user_id: '1234' });
  assert.ok(retried !== undefined && retried !== first);
  ws.close(sessionOf(retried), 1006);
  assert.equal(emu.stats.conduitDropped, 0);
  assert.equal(emu.deliverToConduit(sub, { broadcaster_user_id: '1234' }), undefined);
  assert.equal(emu.stats.conduitDropped, 1);
});

test('conduits are kept in the --state file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'conduits-'));
  const stateFile = join(dir, 'state.json');
  const first = await start(t, { stateFile });
  const id = (await first.call('POST', '', { body: { shard_count: 2 } })).json.data[0].id as string;
  await first.emu.close();
  const second = await start(t, { stateFile });
  // After the emulators' own close hooks, which write the file last.
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.deepEqual((await second.call('GET', '')).json.data, [{ id, shard_count: 2 }]);
});
