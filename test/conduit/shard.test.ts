/**
 * The shard against the emulator's real EventSub WebSocket server (src/emulator/eventsub-ws.ts): welcome and
 * assignment within the unused rule, notifications in order, session_reconnect make-before-break with nothing
 * lost or doubled, the server's close codes and dropped connections, and close(). The emulator runs on a
 * FakeClock (its 4003 and 4004 timers move only when a test says so); the shard runs on real time.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { notificationEnvelope, type EventSubCloseCode } from '../../src/emulator/eventsub-frames.js';
import type { ShardOptions } from '../../src/conduit/shard.js';
import { closeMeaning, parseShardFrame } from '../../src/conduit/shard-frames.js';
import { untilTurn } from '../helpers/wait.js';
import { startWsServer, type WsServerRig } from '../emulator/ws-helpers.js';
import { makeShard, type ShardRig } from './helpers.js';

type Emulator = WsServerRig;
const emulator = startWsServer;

/** A shard whose assign() marks the session used in the emulator, as the conduit endpoint does. */
function shardOn(t: TestContext, emu: Emulator, options: Partial<ShardOptions> = {}): ShardRig {
  return makeShard(t, {
    url: emu.url,
    assign: async (id) => {
      if (!emu.server.sessions.assign(id)) throw new Error(`Session ${id} is not connected`);
    },
    ...options,
  });
}

function notify(emu: Emulator, sessionId: string, n: number): string {
  const frame = notificationEnvelope(
    { id: 'sub-1', status: 'enabled', type: 'stream.online', version: '1', condition: { broadcaster_user_id: '42' }, cost: 0 },
    { n },
    emu.clock.now(),
  );
  assert.equal(emu.server.sessions.send(sessionId, frame), true, `notification ${n} sent`);
  return frame.metadata.message_id;
}

const assignedSession = (rig: ShardRig): string | null => (rig.shard.view().state === 'assigned' ? rig.shard.view().sessionId : null);

test('shard connects, assigns the welcomed session at once (no 4003), and hands over notifications in order', async (t) => {
  const emu = await emulator(t, { unusedCloseMs: 10_000 });
  const rig = shardOn(t, emu);
  rig.shard.start();
  await rig.until((v) => v.state === 'assigned', 'the shard to be assigned');
  const id = rig.shard.view().sessionId!;
  assert.deepEqual(rig.assigned, [id]);
  // The unused rule's 10 s pass on the emulator's clock: an assigned session stays open.
  await emu.clock.advance(10_000);
  assert.equal(emu.server.sessions.get(id)?.status, 'connected');

  const ids = [1, 2, 3, 4, 5].map((n) => notify(emu, id, n));
  await untilTurn(() => rig.messages.length === 5, '5 messages');
  assert.deepEqual(rig.messages.map((m) => m.messageId), ids);
  const [first] = rig.messages;
  assert.equal(first!.shardId, '0');
  assert.equal(first!.messageType, 'notification');
  assert.deepEqual(first!.subscription, { id: 'sub-1', status: 'enabled', type: 'stream.online', version: '1', condition: { broadcaster_user_id: '42' } });
  assert.deepEqual(first!.event, { n: 1 });
  const view = rig.shard.view();
  assert.equal(view.messages, 5);
  assert.equal(view.reconnects, 0);
  assert.ok(view.lastMessageAt !== null && view.sessionStartedAt !== null);
  assert.deepEqual(rig.views.map((v) => v.state), ['connecting', 'assigning', 'assigned']);
});

test('shard whose assignment never completes is closed by the emulator with 4003, warns, and reconnects', async (t) => {
  const emu = await emulator(t, { unusedCloseMs: 10_000 });
  let calls = 0;
  const rig = shardOn(t, emu, {
    assign: async (id, signal) => {
      if (++calls === 1) {
        // Too slow: still pending when the emulator gives up; the shard aborts it when the socket closes.
        await new Promise<void>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
      }
      emu.server.sessions.assign(id);
    },
  });
  rig.shard.start();
  await rig.until((v) => v.state === 'assigning', 'the first assignment to start');
  const first = rig.shard.view().sessionId!;
  await emu.clock.advance(10_000);
  await rig.until((v) => v.state === 'assigned', 'the second session to be assigned');
  assert.notEqual(rig.shard.view().sessionId, first);
  assert.equal(rig.shard.view().lastCloseCode, 4003);
  assert.equal(rig.shard.view().reconnects, 1);
  assert.equal(emu.server.sessions.get(first)?.closeCode, 4003);
  assert.ok(rig.logs.some((l) => l.level === 'warn' && l.code === 4003), 'a warning names 4003');
});

for (const newSessionId of [false, true]) {
  const which = newSessionId ? 'a new session id: the new id assigned' : 'the same session id: no second assignment';
  test(`shard follows session_reconnect during a burst with ${which}; nothing lost or doubled`, async (t) => {
    const emu = await emulator(t);
    const rig = shardOn(t, emu);
    rig.shard.start();
    await rig.until((v) => v.state === 'assigned', 'the shard to be assigned');
    const id = rig.shard.view().sessionId!;
    const sent: string[] = [];
    for (let n = 0; n < 200; n++) sent.push(notify(emu, id, n));
    assert.deepEqual(emu.server.reconnect(id, { newSessionId }).map((r) => r.sessionId), [id]);
    // Until the new socket's welcome, the emulator still sends on the old one.
    for (let n = 200; n < 300; n++) sent.push(notify(emu, id, n));
    await untilTurn(() => rig.logs.some((l) => l.msg === 'Shard moved to its reconnect URL'), 'the move');
    // Frames for the old id now go to the new socket.
    for (let n = 300; n < 500; n++) sent.push(notify(emu, id, n));
    await untilTurn(() => rig.messages.length >= 500, '500 messages');
    assert.deepEqual(rig.messages.map((m) => m.messageId), sent);
    const view = rig.shard.view();
    assert.equal(view.state, 'assigned');
    assert.equal(view.reconnects, 1);
    if (newSessionId) {
      assert.notEqual(view.sessionId, id);
      assert.deepEqual(rig.assigned, [id, view.sessionId]);
    } else {
      assert.equal(view.sessionId, id);
      assert.deepEqual(rig.assigned, [id]);
    }
    // The old socket was closed by the client, so the 4004 grace expiry finds nothing to close.
    await emu.clock.advance(30_000);
    assert.equal(emu.server.sessions.get(view.sessionId!)?.status, 'connected');
    assert.deepEqual(emu.disconnects, []);
    sent.push(notify(emu, view.sessionId!, 500));
    await untilTurn(() => rig.messages.length === 501, 'a message after the grace time');
  });
}

test('shard reconnects with a new session and assigns it after each close code of the emulator and a dropped connection', async (t) => {
  const emu = await emulator(t);
  const rig = shardOn(t, emu);
  rig.shard.start();
  const codes: (EventSubCloseCode | 'drop')[] = [4000, 4005, 4006, 4007, 'drop'];
  const sessions: string[] = [];
  for (const code of codes) {
    await untilTurn(() => assignedSession(rig) !== null && !sessions.includes(assignedSession(rig)!), `a new assigned session before ${code}`);
    const id = assignedSession(rig)!;
    sessions.push(id);
    if (code === 'drop') assert.equal(emu.server.terminateSession(id), true);
    else assert.equal(emu.server.closeSession(id, code), true);
    await rig.until((v) => v.sessionId !== id, `the shard to leave session after ${code}`);
    assert.equal(rig.shard.view().lastCloseCode, code === 'drop' ? 1006 : code);
  }
  await untilTurn(() => assignedSession(rig) !== null && !sessions.includes(assignedSession(rig)!), 'the last session');
  const last = assignedSession(rig)!;
  assert.equal(rig.shard.view().reconnects, codes.length);
  assert.deepEqual(rig.assigned, [...sessions, last]);
  notify(emu, last, 1);
  await untilTurn(() => rig.messages.length === 1, 'a message on the last session');
  // Nothing the shard sent was inbound traffic (4001) or a missed pong (4002).
  assert.ok(emu.disconnects.every((d) => d.closeCode !== 4001 && d.closeCode !== 4002));
});

test('shard close() sends a close frame (1000) to the emulator, stops reconnecting and is idempotent', async (t) => {
  const emu = await emulator(t);
  const rig = shardOn(t, emu);
  rig.shard.start();
  await rig.until((v) => v.state === 'assigned', 'the shard to be assigned');
  const id = rig.shard.view().sessionId!;
  await Promise.all([rig.shard.close(), rig.shard.close()]);
  await rig.shard.close();
  await untilTurn(() => emu.disconnects.length === 1, 'the emulator to see the close');
  assert.equal(emu.server.sessions.get(id)?.closeCode, 1000);
  assert.equal(rig.shard.view().state, 'closed');
  rig.shard.start();
  assert.equal(emu.server.list().filter((s) => s.status !== 'disconnected').length, 0, 'no connection after close');
  assert.equal(rig.shard.view().reconnects, 0);
});

test('parseShardFrame() reads the frames of the contract and drops unknown keys', () => {
  const welcome = parseShardFrame(
    JSON.stringify({
      metadata: { message_id: 'w1', message_type: 'session_welcome', message_timestamp: '2023-07-19T14:56:51.634234626Z' },
      payload: { session: { id: 'AQoQ', status: 'connected', connected_at: 'x', keepalive_timeout_seconds: 10, reconnect_url: null, recovery_url: null } },
    }),
  );
  assert.deepEqual(welcome, { kind: 'session_welcome', messageId: 'w1', sessionId: 'AQoQ', keepaliveSeconds: 10 });
  const reconnect = parseShardFrame(
    JSON.stringify({
      metadata: { message_id: 'r1', message_type: 'session_reconnect', message_timestamp: 'x' },
      payload: { session: { id: 'AQoQ', reconnect_url: 'wss://eventsub.wss.twitch.tv?a=%2F&b=1', keepalive_timeout_seconds: null } },
    }),
  );
  assert.deepEqual(reconnect, { kind: 'session_reconnect', messageId: 'r1', sessionId: 'AQoQ', reconnectUrl: 'wss://eventsub.wss.twitch.tv?a=%2F&b=1' });
  const revocation = parseShardFrame(
    JSON.stringify({
      metadata: { message_id: 'v1', message_type: 'revocation', message_timestamp: 't', subscription_type: 'channel.follow' },
      payload: { subscription: { id: 's', status: 'authorization_revoked', type: 'channel.follow', version: '2', condition: { a: '1' }, cost: 0, transport: {} } },
    }),
  );
  assert.deepEqual(revocation, {
    kind: 'revocation',
    messageId: 'v1',
    timestamp: 't',
    subscription: { id: 's', status: 'authorization_revoked', type: 'channel.follow', version: '2', condition: { a: '1' } },
  });
  const batch = parseShardFrame(
    JSON.stringify({
      metadata: { message_id: 'b1', message_type: 'notification', message_timestamp: 't' },
      payload: { subscription: { id: 's', type: 'drop.entitlement.grant', version: '1', condition: {} }, events: [{ id: 1 }, { id: 2 }] },
    }),
  );
  assert.equal(batch.kind, 'notification');
  assert.deepEqual(batch.kind === 'notification' && batch.events, [{ id: 1 }, { id: 2 }]);
  assert.deepEqual(parseShardFrame(JSON.stringify({ metadata: { message_id: 'k', message_type: 'session_keepalive' }, payload: {} })), {
    kind: 'session_keepalive',
    messageId: 'k',
  });
});

test('parseShardFrame() calls malformed what breaks the contract, keeping only a sane message id and type', () => {
  const frame = (type: string, payload: unknown, extra: object = {}): string =>
    JSON.stringify({ metadata: { message_id: 'm', message_type: type, message_timestamp: 't', ...extra }, payload });
  const cases: [string, string | undefined][] = [
    ['', undefined],
    ['null', undefined],
    [JSON.stringify({ metadata: { message_id: 'x'.repeat(300), message_type: 'notification' }, payload: {} }), undefined],
    [frame('session_welcome', { session: { id: 'a', keepalive_timeout_seconds: 'ten' } }), 'm'],
    [frame('session_welcome', { session: { id: 'a', keepalive_timeout_seconds: 0 } }), 'm'],
    [frame('session_reconnect', { session: { id: 'a', reconnect_url: 'https://example.com/ws' } }), 'm'],
    [frame('session_reconnect', { session: { id: 'a', reconnect_url: 'not a url' } }), 'm'],
    [frame('notification', { subscription: { id: 's', type: 't', version: '1', condition: {} }, event: [1] }), 'm'],
    [frame('notification', { subscription: { id: 's', type: 't', version: '1', condition: 'c' }, event: {} }), 'm'],
    [frame('revocation', { subscription: { id: '', type: 't', version: '1', condition: {} } }), 'm'],
    [JSON.stringify({ metadata: { message_id: 'm', message_type: 'notification' }, payload: [] }), 'm'],
  ];
  for (const [text, messageId] of cases) {
    const parsed = parseShardFrame(text);
    assert.equal(parsed.kind, 'malformed', text.slice(0, 80));
    assert.equal(parsed.kind === 'malformed' ? parsed.messageId : 'not malformed', messageId, text.slice(0, 80));
  }
  assert.deepEqual(parseShardFrame(frame('channel.future', {})), { kind: 'unknown', messageId: 'm', messageType: 'channel.future' });
});

test('closeMeaning() logs 4001 and 4002 at error (the shard broke the protocol) and every other code at warn', () => {
  for (let code = 4000; code <= 4007; code++) assert.equal(closeMeaning(code).level, code === 4001 || code === 4002 ? 'error' : 'warn', String(code));
  assert.equal(closeMeaning(1006).level, 'warn');
  assert.match(closeMeaning(4003).meaning, /not assigned in time/);
});
