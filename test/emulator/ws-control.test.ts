/**
 * The control routes over the emulator's EventSub WebSocket sessions (`/_emulator/ws/...`), driven with real `ws`
 * clients on loopback: listing with the assigned shard, session_reconnect (new id by default, the old id still
 * delivering until the shard is re-assigned; or the same id), close codes, and a TCP drop.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { untilTurn } from '../helpers/wait.js';
import { helix, mint, setup } from './helpers.js';
import { conduitOn, control, shardStatus, subscribe, wsClient } from './ws-helpers.js';

const NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

async function started(t: Parameters<typeof setup>[0], options: Parameters<typeof setup>[1] = {}) {
  const s = await setup(t, options);
  const auth = { token: await mint(s.emu, s.client), clientId: s.client.clientId };
  return { ...s, auth };
}

test('GET /_emulator/ws/sessions lists every session with its keepalive and the shard it is assigned to', async (t) => {
  const { emu, auth } = await started(t);
  const a = await wsClient(t, emu, `${emu.url.replace(/^http/, 'ws')}/ws?keepalive_timeout_seconds=30`);
  const b = await wsClient(t, emu);
  const conduitId = await conduitOn(emu, auth, [a.id]);
  const res = await control(emu, 'GET', '/_emulator/ws/sessions');
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.data, [
    {
      id: a.id, status: 'connected', connected_at: a.frames[0].payload.session.connected_at, keepalive_timeout_seconds: 30,
      disconnected_at: null, close_code: null, moved_to: null, conduit_id: conduitId, shard_id: '0', shard_status: 'enabled',
    },
    {
      id: b.id, status: 'connected', connected_at: b.frames[0].payload.session.connected_at, keepalive_timeout_seconds: 10,
      disconnected_at: null, close_code: null, moved_to: null, conduit_id: null, shard_id: null, shard_status: null,
    },
  ]);
  assert.deepEqual(emu.wsSessions(), res.json.data);
});

test('POST /_emulator/ws/sessions/ID/terminate drops the connection without a close frame; the shard is disabled and the session listed closed', async (t) => {
  const { emu, auth } = await started(t);
  const c = await wsClient(t, emu);
  const conduitId = await conduitOn(emu, auth, [c.id]);
  const res = await control(emu, 'POST', `/_emulator/ws/sessions/${c.id}/terminate`);
  assert.equal(res.status, 204, res.text);
  assert.equal(await c.closed(), 1006);
  const [listed] = (await control(emu, 'GET', '/_emulator/ws/sessions')).json.data;
  assert.equal(listed.status, 'disconnected');
  assert.equal(listed.close_code, 1006);
  assert.match(listed.disconnected_at, NANO);
  assert.equal(listed.shard_id, '0');
  assert.equal(listed.shard_status, 'websocket_disconnected');
  assert.equal(await shardStatus(emu, auth, conduitId, '0'), 'websocket_disconnected');
  const again = await control(emu, 'POST', `/_emulator/ws/sessions/${c.id}/terminate`);
  assert.equal(again.status, 409);
  assert.match(again.json.message, /not connected/);
  assert.equal((await control(emu, 'POST', '/_emulator/ws/sessions/nope/terminate')).status, 404);
});

test('POST /_emulator/ws/sessions/ID/close closes with the code given and its reason; the shard status follows the code', async (t) => {
  const { emu, auth } = await started(t);
  const c = await wsClient(t, emu);
  const conduitId = await conduitOn(emu, auth, [c.id]);
  const reason = new Promise<string>((resolve) => c.ws.once('close', (_code, r: Buffer) => resolve(r.toString())));
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${c.id}/close`, { code: 3999 })).status, 400);
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${c.id}/close`, {})).status, 400);
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${c.id}/close`, { code: 4005 })).status, 204);
  assert.equal(await c.closed(), 4005);
  assert.equal(await reason, 'network timeout');
  assert.equal(await shardStatus(emu, auth, conduitId, '0'), 'websocket_network_timeout');
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${c.id}/close`, { code: 4000 })).status, 409);
  assert.equal((await control(emu, 'POST', '/_emulator/ws/sessions/nope/close', { code: 4000 })).status, 404);
});

test('POST /_emulator/ws/reconnect (new id, the default): events sent during the move arrive once; the old id delivers until the shard is re-assigned to the new one', async (t) => {
  const { emu, auth, clock } = await started(t);
  const old = await wsClient(t, emu);
  const conduitId = await conduitOn(emu, auth, [old.id]);
  const sub = await subscribe(emu, auth, { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '4242' }, transport: { method: 'conduit', conduit_id: conduitId } });

  const res = await control(emu, 'POST', '/_emulator/ws/reconnect', { grace_ms: 5_000 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.data.length, 1);
  assert.equal(res.json.data[0].session_id, old.id);
  await old.until((f) => f.length === 2, 'session_reconnect');
  assert.equal(old.frames[1].payload.session.reconnect_url, res.json.data[0].reconnect_url);
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${old.id}/reconnect`)).status, 409, 'a session already reconnecting');

  const before = (await control(emu, 'POST', `/_emulator/subscriptions/${sub}/events`, { count: 3 })).json.data;
  const moved = await wsClient(t, emu, res.json.data[0].reconnect_url);
  assert.notEqual(moved.id, old.id);
  const after = (await control(emu, 'POST', `/_emulator/subscriptions/${sub}/events`, { count: 3 })).json.data;
  old.ws.close(1000);
  await old.closed();
  await moved.until((f) => f.length === 4, 'the events sent after the move');
  const ids = (frames: { metadata: { message_type: string; message_id: string } }[]) =>
    frames.filter((f) => f.metadata.message_type === 'notification').map((f) => f.metadata.message_id);
  assert.deepEqual(ids(old.frames), before.map((s: { message_id: string }) => s.message_id));
  assert.deepEqual(ids(moved.frames), after.map((s: { message_id: string }) => s.message_id));
  assert.ok([...before, ...after].every((s: { shard?: string; dropped?: boolean }) => s.shard === '0' && s.dropped === undefined));

  // Past the grace time nothing is closed (the client left in time) and the shard is still enabled, on the old id.
  await clock.advance(5_000);
  let listed = (await control(emu, 'GET', '/_emulator/ws/sessions')).json.data;
  assert.deepEqual(listed.map((s: { id: string; status: string; moved_to: string | null; shard_id: string | null }) => [s.id, s.status, s.moved_to, s.shard_id]), [
    [old.id, 'reconnected', moved.id, '0'],
    [moved.id, 'connected', null, null],
  ]);
  assert.equal(await shardStatus(emu, auth, conduitId, '0'), 'enabled');
  // The old id cannot be assigned again; the new one can, as a daemon does on a welcome with another id.
  const stale = await helix(emu, { ...auth, method: 'PATCH', path: '/helix/eventsub/conduits/shards', body: { conduit_id: conduitId, shards: [{ id: '0', transport: { method: 'websocket', session_id: old.id } }] } });
  assert.equal(stale.json.errors[0]?.message, 'The websocket session is not connected');
  const reassigned = await helix(emu, { ...auth, method: 'PATCH', path: '/helix/eventsub/conduits/shards', body: { conduit_id: conduitId, shards: [{ id: '0', transport: { method: 'websocket', session_id: moved.id } }] } });
  assert.deepEqual(reassigned.json.errors, []);
  listed = (await control(emu, 'GET', '/_emulator/ws/sessions')).json.data;
  assert.deepEqual(listed.map((s: { shard_id: string | null }) => s.shard_id), [null, '0']);
});

test('POST /_emulator/ws/sessions/ID/reconnect with new_session_id false keeps the id; a client that never moves gets 4004 after grace_ms', async (t) => {
  const { emu, auth, clock } = await started(t);
  const same = await wsClient(t, emu);
  const stuck = await wsClient(t, emu);
  const conduitId = await conduitOn(emu, auth, [same.id, stuck.id]);
  const res = await control(emu, 'POST', `/_emulator/ws/sessions/${same.id}/reconnect`, { new_session_id: false });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.data.map((s: { session_id: string }) => s.session_id), [same.id]);
  const moved = await wsClient(t, emu, res.json.data[0].reconnect_url);
  assert.equal(moved.id, same.id);

  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${stuck.id}/reconnect`, { grace_ms: 2_000 })).status, 200);
  await stuck.until((f) => f.length === 2, 'session_reconnect');
  await clock.advance(1_999);
  assert.equal(stuck.ws.readyState, stuck.ws.OPEN);
  await clock.advance(1);
  assert.equal(await stuck.closed(), 4004);
  await untilTurn(() => emu.wsSessions().find((s) => s.id === stuck.id)?.status === 'disconnected', 'the session to be closed');
  assert.equal(await shardStatus(emu, auth, conduitId, '1'), 'websocket_failed_to_reconnect');

  assert.equal((await control(emu, 'POST', '/_emulator/ws/sessions/nope/reconnect')).status, 404);
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${stuck.id}/reconnect`)).status, 409);
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${same.id}/reconnect`, { grace_ms: -1 })).status, 400);
  assert.equal((await control(emu, 'POST', `/_emulator/ws/sessions/${same.id}/reconnect`, { new_session_id: 'yes' })).status, 400);
});

test('the reconnectNewSessionId option false makes every reconnect keep the id; POST /_emulator/ws/reconnect with none connected sends nothing', async (t) => {
  const { emu } = await started(t, { reconnectNewSessionId: false });
  assert.deepEqual((await control(emu, 'POST', '/_emulator/ws/reconnect')).json, { data: [] });
  const c = await wsClient(t, emu);
  const [sent] = emu.reconnectWs();
  const moved = await wsClient(t, emu, sent!.reconnect_url);
  assert.equal(moved.id, c.id);
  assert.throws(() => emu.reconnectWs('nope'), (err: Error & { status?: number }) => err.status === 404);
});
