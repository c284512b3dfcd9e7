/**
 * The emulator's conduits and its EventSub WebSocket server wired together: a session opened on the emulator's own
 * `/ws` is assigned to a shard, a conduit subscription's event arrives on it, and a closed session disables the shard.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { deferred } from '../helpers/wait.js';
import { helix, mint, setup } from './helpers.js';

interface Frame {
  metadata: { message_type: string; subscription_type?: string };
  payload: { session?: { id: string }; event?: Record<string, unknown> };
}

test('a shard on the emulator\'s own /ws session gets the events of a conduit subscription; closing it disables the shard', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const frames: Frame[] = [];
  const welcome = deferred<string>();
  const notified = deferred<Frame>();
  const closed = deferred<number>();
  const ws = new WebSocket(`${emu.url.replace('http:', 'ws:')}/ws?keepalive_timeout_seconds=30`);
  t.after(() => ws.terminate());
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as Frame;
    frames.push(frame);
    if (frame.metadata.message_type === 'session_welcome') welcome.resolve(frame.payload.session!.id);
    if (frame.metadata.message_type === 'notification') notified.resolve(frame);
  });
  ws.on('close', (code) => closed.resolve(code));
  const sessionId = await welcome.promise;

  const conduit = await helix(emu, { method: 'POST', token, clientId: client.clientId, path: '/helix/eventsub/conduits', body: { shard_count: 1 } });
  assert.equal(conduit.status, 200, JSON.stringify(conduit.json));
  const conduitId = conduit.json.data[0].id as string;
  const shards = await helix(emu, {
    method: 'PATCH', token, clientId: client.clientId, path: '/helix/eventsub/conduits/shards',
    body: { conduit_id: conduitId, shards: [{ id: '0', transport: { method: 'websocket', session_id: sessionId } }] },
  });
  assert.equal(shards.status, 202, JSON.stringify(shards.json));
  assert.deepEqual(shards.json.errors, []);
  const sub = await helix(emu, {
    method: 'POST', token, clientId: client.clientId,
    body: { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '12345' }, transport: { method: 'conduit', conduit_id: conduitId } },
  });
  assert.equal(sub.status, 202, JSON.stringify(sub.json));

  const shard = emu.deliverToConduit(sub.json.data[0].id as string, { broadcaster_user_id: '12345', type: 'live' });
  assert.equal(shard, '0');
  const frame = await notified.promise;
  assert.equal(frame.metadata.subscription_type, 'stream.online');
  assert.equal(frame.payload.event?.broadcaster_user_id, '12345');

  ws.close(1000);
  await closed.promise;
  // The shard leaves `enabled` once the emulator has seen the close.
  for (;;) {
    const listed = await helix(emu, { token, clientId: client.clientId, path: '/helix/eventsub/conduits/shards', query: `conduit_id=${conduitId}` });
    const status = listed.json.data[0].status as string;
    if (status !== 'enabled') {
      assert.match(status, /^websocket_/);
      break;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
});
