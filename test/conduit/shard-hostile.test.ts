/**
 * The shard against hand-written servers on loopback that misbehave on purpose: a welcome that never comes,
 * keepalives that stop (pings going on), every close code, reconnect URLs that refuse or never welcome, frames
 * that are malformed, binary, oversized or of an unknown type, an assignment Twitch refuses, and a server that
 * never answers a close frame. Each server records what the client sent: it must be nothing but pongs and closes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { AppError } from '../../src/lib/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { WebSocket } from 'ws';
import { deferred, untilEmitted, untilSleeping, untilTurn } from '../helpers/wait.js';
import {
  hostileServer,
  keepaliveFrame,
  makeShard,
  notificationFrame,
  reconnectFrame,
  send,
  welcomeFrame,
  type ServerConn,
  type ShardRig,
} from './helpers.js';

const assignedTo = (rig: ShardRig, sessionId: string): Promise<void> =>
  rig.until((v) => v.state === 'assigned' && v.sessionId === sessionId, `the shard to be assigned to ${sessionId}`);

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Pings once and waits for the pong. */
async function pongFrom(conn: ServerConn): Promise<void> {
  let ponged = false;
  conn.ws.once('pong', () => (ponged = true));
  conn.ws.ping();
  await untilEmitted(conn.ws, 'pong', () => ponged, 'a pong', 3_000);
}

/** Sends a ping every `ms` until the socket closes; counts the pongs. */
function pingEvery(conn: ServerConn, ms: number): { pongs: () => number } {
  let pongs = 0;
  conn.ws.on('pong', () => pongs++);
  const timer = setInterval(() => conn.ws.ping(), ms);
  conn.ws.once('close', () => clearInterval(timer));
  return { pongs: () => pongs };
}

test('shard drops a connection whose welcome never comes within welcomeTimeoutMs, and reconnects', async (t) => {
  const server = await hostileServer(t);
  const rig = makeShard(t, { url: server.url, welcomeTimeoutMs: 300 });
  rig.shard.start();
  const silent = await server.conn(0);
  const next = await server.conn(1);
  assert.equal(await silent.closed, 1006, 'terminated, no close handshake');
  assert.match(rig.shard.view().lastError ?? '', /No session_welcome within 300 ms/);
  send(next, welcomeFrame('s1'));
  await assignedTo(rig, 's1');
  assert.deepEqual(rig.assigned, ['s1']);
  assert.equal(rig.shard.view().reconnects, 1);
  assert.deepEqual(server.inbound(), []);
});

test('shard stays on a connection while keepalives arrive, and declares it dead once they stop, pings notwithstanding', async (t) => {
  const server = await hostileServer(t, (c) => send(c, welcomeFrame(`s${server.conns.length - 1}`, 1)));
  const rig = makeShard(t, { url: server.url, keepaliveMarginMs: 200 });
  rig.shard.start();
  const first = await server.conn(0);
  await assignedTo(rig, 's0');
  // 1.2 s of keepalives every 300 ms: longer than keepalive + margin, yet the connection is kept.
  let sent = 0;
  let lastSentAt = 0;
  const keepalives = setInterval(() => {
    if (sent++ >= 4) return;
    send(first, keepaliveFrame());
    lastSentAt = performance.now();
  }, 300);
  t.after(() => clearInterval(keepalives));
  await untilTurn(() => sent >= 5, 'four keepalives and one more period');
  assert.equal(server.conns.length, 1, 'still the first connection');
  assert.equal(rig.shard.view().state, 'assigned');
  // Then only pings: answered, but they do not count as messages.
  const pings = pingEvery(first, 100);
  const second = await server.conn(1);
  const silentFor = performance.now() - lastSentAt;
  assert.equal(await first.closed, 1006, 'terminated');
  assert.ok(pings.pongs() >= 3, `pings were answered (${pings.pongs()} pongs)`);
  assert.ok(silentFor >= 1_150, `declared dead ${Math.round(silentFor)} ms after the last keepalive, not before keepalive + margin`);
  assert.match(rig.shard.view().lastError ?? '', /No message for 1200 ms/);
  await assignedTo(rig, 's1');
  assert.equal(second.url, '/ws');
  assert.deepEqual(server.inbound(), []);
});

test('shard reconnects to the configured URL after each close code 4000-4007 and a plain drop; 4001/4002 logged at error', async (t) => {
  const server = await hostileServer(t, (c) => send(c, welcomeFrame(`s${server.conns.length - 1}`)));
  const rig = makeShard(t, { url: server.url });
  rig.shard.start();
  const codes = [4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007];
  for (const [n, code] of codes.entries()) {
    const conn = await server.conn(n);
    await assignedTo(rig, `s${n}`);
    conn.ws.close(code);
    await server.conn(n + 1);
    assert.equal(rig.shard.view().lastCloseCode, code);
  }
  const last = await server.conn(codes.length);
  await assignedTo(rig, `s${codes.length}`);
  last.ws.terminate();
  await server.conn(codes.length + 1);
  await assignedTo(rig, `s${codes.length + 1}`);
  assert.equal(rig.shard.view().lastCloseCode, 1006);
  assert.equal(rig.shard.view().reconnects, codes.length + 1);
  assert.ok(server.conns.every((c) => c.url === '/ws'), 'every connection to the configured URL');
  const closes = rig.logs.filter((l) => l.msg === 'EventSub WebSocket closed: reconnecting');
  assert.deepEqual(
    closes.map((l) => [l.code, l.level]),
    [...codes.map((c) => [c, c === 4001 || c === 4002 ? 'error' : 'warn']), [1006, 'warn']],
  );
  assert.deepEqual(server.inbound(), []);
});

test('shard follows session_reconnect with a new session id: reads the old socket until the new welcome, assigns, then closes the old with 1000', async (t) => {
  const server = await hostileServer(t);
  const gate = deferred();
  const rig = makeShard(t, { url: server.url, assign: (id) => (id === 's1' ? gate.promise : Promise.resolve()) });
  rig.shard.start();
  const old = await server.conn(0);
  send(old, welcomeFrame('s0'));
  await assignedTo(rig, 's0');
  send(old, notificationFrame('n1'));
  // A URL with an encoded character and parameters of its own: used exactly as given.
  const odd = '/ws?reconnect=a%2Fb%3D&x=1&keepalive_timeout_seconds=5';
  send(old, reconnectFrame('s0', `ws://127.0.0.1:${server.port}${odd}`));
  send(old, notificationFrame('n2'));
  const moved = await server.conn(1);
  assert.equal(moved.url, odd);
  send(old, notificationFrame('n3'));
  send(moved, welcomeFrame('s1'));
  await untilTurn(() => rig.assigned.length === 2, 'the new session to be assigned');
  // Not assigned yet: the old socket is still open and read. A pong comes back only from a socket the client has
  // not started to close (a close frame would have come first, TCP keeps the order, and ws answers no ping after it).
  await pongFrom(old);
  assert.equal(old.ws.readyState, WebSocket.OPEN, 'no close frame from the client yet');
  send(old, notificationFrame('n4'));
  await untilTurn(() => rig.messages.length === 4, 'four messages');
  gate.resolve();
  assert.equal(await old.closed, 1000);
  await assignedTo(rig, 's1');
  send(moved, notificationFrame('n5'));
  await untilTurn(() => rig.messages.length === 5, 'five messages');
  assert.deepEqual(rig.messages.map((m) => m.messageId), ['n1', 'n2', 'n3', 'n4', 'n5']);
  assert.deepEqual(rig.assigned, ['s0', 's1']);
  assert.equal(rig.shard.view().reconnects, 1);
  assert.equal(server.conns.length, 2);
  assert.deepEqual(server.inbound(), []);
});

test('shard moving to the same session before its first assignment completed assigns that session again from the new socket', async (t) => {
  const server = await hostileServer(t);
  const first = deferred();
  let calls = 0;
  const rig = makeShard(t, { url: server.url, assign: () => (++calls === 1 ? first.promise : Promise.resolve()) });
  rig.shard.start();
  const old = await server.conn(0);
  send(old, welcomeFrame('s0'));
  await rig.until((v) => v.state === 'assigning', 'the first assignment in flight');
  send(old, reconnectFrame('s0', `${server.url}?reconnect=early`));
  const moved = await server.conn(1);
  send(moved, welcomeFrame('s0'));
  assert.equal(await old.closed, 1000);
  await assignedTo(rig, 's0');
  assert.deepEqual(rig.assigned, ['s0', 's0']);
  first.resolve();
  send(moved, notificationFrame('n1'));
  await untilTurn(() => rig.messages.length === 1, 'a message on the new socket');
  assert.equal(rig.shard.view().state, 'assigned');
  assert.deepEqual(server.inbound(), []);
});

test('shard: a reconnect URL that refuses connections is replaced by a fresh session beside the old one, which is read until the new one is assigned', async (t) => {
  const server = await hostileServer(t);
  const rig = makeShard(t, { url: server.url });
  rig.shard.start();
  const old = await server.conn(0);
  send(old, welcomeFrame('s0'));
  await assignedTo(rig, 's0');
  send(old, reconnectFrame('s0', `ws://127.0.0.1:${await closedPort()}/ws?reconnect=gone`));
  const fresh = await server.conn(1);
  assert.equal(fresh.url, '/ws', 'the configured URL, not the reconnect URL');
  assert.ok(rig.logs.some((l) => l.msg.startsWith('The reconnect URL failed: opening a fresh connection')));
  send(old, notificationFrame('still-read'));
  await untilTurn(() => rig.messages.length === 1, 'a message on the old socket while the fresh one is not yet welcomed');
  assert.equal(rig.shard.view().sessionId, 's0');
  send(fresh, welcomeFrame('s1'));
  await assignedTo(rig, 's1');
  assert.equal(await old.closed, 1000, 'the old socket closed by the client once the new session is assigned');
  assert.deepEqual(rig.assigned, ['s0', 's1']);
  assert.deepEqual(server.inbound(), []);
});

test('shard: when the reconnect URL never welcomes and the fresh session fails too (4007), the old socket is kept until it closes (4004), then a fresh connection', async (t) => {
  const server = await hostileServer(t);
  const rig = makeShard(t, { url: server.url, welcomeTimeoutMs: 300 });
  rig.shard.start();
  const old = await server.conn(0);
  send(old, welcomeFrame('s0'));
  await assignedTo(rig, 's0');
  send(old, reconnectFrame('s0', `${server.url}?reconnect=mute`));
  const mute = await server.conn(1);
  assert.equal(mute.url, '/ws?reconnect=mute', 'the reconnect URL exactly as given');
  assert.equal(await mute.closed, 1006, 'dropped after the welcome timeout');
  const fallback = await server.conn(2);
  assert.equal(fallback.url, '/ws');
  fallback.ws.close(4007);
  await untilTurn(() => rig.logs.some((l) => l.msg.startsWith('The reconnect URL failed: keeping the old connection')), 'no second fallback');
  send(old, notificationFrame('still-read'));
  await untilTurn(() => rig.messages.length === 1, 'a message on the old socket');
  assert.equal(rig.shard.view().sessionId, 's0');
  old.ws.close(4004);
  const fresh = await server.conn(3);
  assert.equal(fresh.url, '/ws', 'the configured URL, not a reconnect URL');
  send(fresh, welcomeFrame('s3'));
  await assignedTo(rig, 's3');
  assert.equal(rig.shard.view().lastCloseCode, 4004);
  assert.deepEqual(server.inbound(), []);
});

test('shard: a flood of malformed frames is counted, but the log thins out (the first 10, then one in 1000)', async (t) => {
  const server = await hostileServer(t);
  const rig = makeShard(t, { url: server.url });
  rig.shard.start();
  const conn = await server.conn(0);
  send(conn, welcomeFrame('s0'));
  await assignedTo(rig, 's0');
  for (let i = 0; i < 2_050; i++) conn.ws.send(i % 2 === 0 ? '{"not json' : Buffer.from([1, 2, 3]));
  send(conn, notificationFrame('after-the-flood'));
  await untilTurn(() => rig.messages.length === 1, 'the good message after the flood');
  assert.equal(rig.shard.view().malformedFrames, 2_050);
  const warnings = rig.logs.filter((l) => l.msg === 'Ignored a malformed frame' || l.msg.startsWith('Ignored a binary frame'));
  assert.deepEqual(warnings.map((l) => l.malformedFrames), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1000, 2000]);
  assert.equal(rig.shard.view().state, 'assigned', 'the connection is kept');
});

test('shard counts and warns about malformed frames without logging their content, and keeps the connection', async (t) => {
  const server = await hostileServer(t);
  const rig = makeShard(t, { url: server.url });
  rig.shard.start();
  const conn = await server.conn(0);
  send(conn, welcomeFrame('s0'));
  await assignedTo(rig, 's0');
  const stamp = '2026-12-05T10:00:00.123456789Z';
  const { subscription } = (notificationFrame('x') as { payload: { subscription: object } }).payload;
  const bad = [
    '{"metadata": {"message_id": "SECRET-IN-BAD-JSON"',
    '["SECRET-IN-ARRAY"]',
    JSON.stringify({ metadata: { message_type: 'notification' }, payload: { event: 'SECRET-NO-ID' } }),
    JSON.stringify({ metadata: { message_id: 'm-badsub', message_type: 'notification', message_timestamp: stamp }, payload: { subscription: { id: 'x' }, event: { v: 'SECRET-BAD-SUB' } } }),
    JSON.stringify({ metadata: { message_id: 'm-nostamp', message_type: 'notification' }, payload: (notificationFrame('x') as { payload: object }).payload }),
    JSON.stringify({ metadata: { message_id: 'm-noevent', message_type: 'notification', message_timestamp: stamp }, payload: { subscription } }),
  ];
  for (const text of bad) conn.ws.send(text);
  send(conn, notificationFrame('good', { v: 'EVENT-CONTENT' }));
  await untilTurn(() => rig.messages.length === 1, 'the good message');
  assert.equal(rig.messages[0]!.messageId, 'good');
  assert.equal(rig.shard.view().malformedFrames, bad.length);
  const warnings = rig.logs.filter((l) => l.msg === 'Ignored a malformed frame');
  assert.equal(warnings.length, bad.length);
  assert.ok(warnings.every((l) => l.level === 'warn' && typeof l.bytes === 'number'));
  assert.deepEqual(warnings.map((l) => l.messageId).filter(Boolean), ['m-badsub', 'm-nostamp', 'm-noevent']);
  assert.doesNotMatch(rig.logText(), /SECRET|EVENT-CONTENT/);
  assert.equal(server.conns.length, 1);
  assert.equal(rig.shard.view().state, 'assigned');
  assert.deepEqual(server.inbound(), []);
});

test('shard warns once per unknown message_type and about binary frames, ignores them, and keeps the connection', async (t) => {
  const server = await hostileServer(t);
  const rig = makeShard(t, { url: server.url });
  rig.shard.start();
  const conn = await server.conn(0);
  send(conn, welcomeFrame('s0'));
  await assignedTo(rig, 's0');
  const frame = (type: string, id: string): object => ({ metadata: { message_id: id, message_type: type, message_timestamp: 'x' }, payload: {} });
  send(conn, frame('session_future', 'u1'));
  send(conn, frame('session_future', 'u2'));
  send(conn, frame('other_thing', 'u3'));
  conn.ws.send(Buffer.from(JSON.stringify(notificationFrame('binary'))), { binary: true });
  send(conn, notificationFrame('after'));
  await untilTurn(() => rig.messages.length === 1, 'the text notification');
  assert.deepEqual(rig.messages.map((m) => m.messageId), ['after']);
  const unknown = rig.logs.filter((l) => l.msg === 'Ignoring frames of an unknown message_type');
  assert.deepEqual(unknown.map((l) => [l.level, l.messageType]), [['warn', 'session_future'], ['warn', 'other_thing']]);
  assert.equal(rig.logs.filter((l) => l.level === 'warn' && /binary/.test(l.msg)).length, 1);
  assert.equal(rig.shard.view().malformedFrames, 1, 'the binary frame');
  assert.equal(server.conns.length, 1);
  assert.deepEqual(server.inbound(), []);
});

test('shard closes with 1009 on a frame over maxFrameBytes and reconnects', async (t) => {
  const server = await hostileServer(t, (c) => send(c, welcomeFrame(`s${server.conns.length - 1}`)));
  const rig = makeShard(t, { url: server.url, maxFrameBytes: 1024 });
  rig.shard.start();
  const conn = await server.conn(0);
  await assignedTo(rig, 's0');
  send(conn, notificationFrame('fits', { pad: 'x'.repeat(500) }));
  await untilTurn(() => rig.messages.length === 1, 'a frame under the limit');
  send(conn, notificationFrame('too-big', { pad: 'x'.repeat(2000) }));
  assert.equal(await conn.closed, 1009);
  await server.conn(1);
  await assignedTo(rig, 's1');
  assert.deepEqual(rig.messages.map((m) => m.messageId), ['fits']);
  assert.deepEqual(server.inbound(), []);
});

test('shard closes the socket (1000) when assign() rejects, and after a backoff connects and assigns again', async (t) => {
  const server = await hostileServer(t, (c) => send(c, welcomeFrame(`s${server.conns.length - 1}`)));
  let calls = 0;
  const rig = makeShard(t, {
    url: server.url,
    assign: async () => {
      if (++calls === 1) throw new AppError('TWITCH_BAD_RESPONSE', 'Shard 0 was refused: The websocket session is not connected');
    },
  });
  rig.shard.start();
  const first = await server.conn(0);
  assert.equal(await first.closed, 1000);
  await server.conn(1);
  await assignedTo(rig, 's1');
  assert.deepEqual(rig.assigned, ['s0', 's1']);
  assert.match(rig.shard.view().lastError ?? '', /websocket session is not connected/);
  assert.ok(rig.logs.some((l) => l.level === 'warn' && l.msg.startsWith('The shard could not be assigned') && (l.err as { code?: string }).code === 'TWITCH_BAD_RESPONSE'));
  const states = rig.views.map((v) => v.state).filter((s, i, all) => s !== all[i - 1]);
  assert.deepEqual(states, ['connecting', 'assigning', 'backoff', 'connecting', 'assigning', 'assigned']);
  assert.deepEqual(server.inbound(), []);
});

test('shard backoff doubles up to its cap, and starts over after a connection assigned and healthy for a keepalive period', async (t) => {
  let healthy: ServerConn | undefined;
  const server = await hostileServer(t, (c) => {
    if (server.conns.length <= 5) c.ws.terminate();
    else if (server.conns.length === 6) {
      healthy = c;
      send(c, welcomeFrame('healthy', 1));
    } else send(c, welcomeFrame('after'));
  });
  const rig = makeShard(t, { url: server.url, backoff: { baseMs: 10, maxMs: 50 }, random: () => 1 });
  rig.shard.start();
  await assignedTo(rig, 'healthy');
  const delays = (): unknown[] => rig.logs.filter((l) => l.msg === 'Reconnecting after a backoff').map((l) => l.delayMs);
  assert.deepEqual(delays(), [10, 20, 40, 50, 50]);
  // Healthy for a keepalive period (1 s): keepalives every 300 ms, then a server error.
  let sent = 0;
  const keepalives = setInterval(() => {
    if (sent++ < 4) send(healthy!, keepaliveFrame());
  }, 300);
  t.after(() => clearInterval(keepalives));
  await untilTurn(() => sent >= 4, 'four keepalives');
  healthy!.ws.close(4000);
  await assignedTo(rig, 'after');
  assert.deepEqual(delays(), [10, 20, 40, 50, 50, 10]);
  assert.deepEqual(server.inbound(), []);
});

test('shard sends no data frame and no ping during a whole scenario; close() sends 1000 on every open socket, mid-reconnect too', async (t) => {
  const server = await hostileServer(t);
  const rig = makeShard(t, { url: server.url });
  rig.shard.start();
  const old = await server.conn(0);
  const pings = pingEvery(old, 50);
  send(old, welcomeFrame('s0'));
  await assignedTo(rig, 's0');
  for (let i = 0; i < 20; i++) send(old, i % 2 ? keepaliveFrame() : notificationFrame(`n${i}`));
  await untilTurn(() => rig.messages.length === 10 && pings.pongs() >= 2, 'messages and pongs');
  send(old, reconnectFrame('s0', `${server.url}?reconnect=1`));
  const moving = await server.conn(1);
  await untilTurn(() => rig.logs.some((l) => l.msg.startsWith('EventSub WebSocket open') && l.role === 'successor'), 'the new socket open');
  await Promise.all([rig.shard.close(), rig.shard.close()]);
  assert.deepEqual(await Promise.all([old.closed, moving.closed]), [1000, 1000]);
  assert.equal(rig.shard.view().state, 'closed');
  await rig.shard.close();
  rig.shard.start();
  assert.equal(server.conns.length, 2, 'no connection after close()');
  assert.deepEqual(server.inbound(), []);
  assert.deepEqual(rig.messages.map((m) => m.messageId), ['n0', 'n2', 'n4', 'n6', 'n8', 'n10', 'n12', 'n14', 'n16', 'n18']);
});

/**
 * A raw TCP server that completes the WebSocket handshake, sends a welcome, and then reads without ever answering
 * (not even a close frame): what a hung peer looks like.
 */
async function deafServer(t: TestContext): Promise<{ url: string; received: () => Buffer; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const chunks: Buffer[] = [];
  const server = createTcpServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    let upgraded = false;
    socket.on('data', (data: Buffer) => {
      if (upgraded) return void chunks.push(data);
      const key = /sec-websocket-key: *(\S+)/i.exec(data.toString('latin1'))?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      upgraded = true;
      const body = Buffer.from(JSON.stringify(welcomeFrame('deaf')));
      const header = Buffer.from([0x81, 126, body.length >> 8, body.length & 0xff]);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(Buffer.concat([header, body]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}/ws`, received: () => Buffer.concat(chunks), sockets };
}

/** The code of the first (masked, client-to-server) frame in `bytes` when it is a close frame. */
function closeCodeOf(bytes: Buffer): number | undefined {
  if (bytes.length < 8 || (bytes[0]! & 0x0f) !== 0x8) return undefined;
  const mask = bytes.subarray(2, 6);
  return (((bytes[6]! ^ mask[0]!) << 8) | (bytes[7]! ^ mask[1]!)) >>> 0;
}

test('shard close() drops a socket whose server never answers the close frame after ~1 s, and leaves no timer behind', async (t) => {
  const deaf = await deafServer(t);
  const clock = new FakeClock();
  const rig = makeShard(t, { url: deaf.url, clock });
  rig.shard.start();
  await assignedTo(rig, 'deaf');
  assert.ok(clock.pending > 0, 'the keepalive watch is armed');
  let done = false;
  const closing = rig.shard.close().then(() => (done = true));
  await untilTurn(() => closeCodeOf(deaf.received()) !== undefined, 'the close frame at the server');
  assert.equal(closeCodeOf(deaf.received()), 1000);
  await untilSleeping(clock, () => clock.nextWake() === clock.now() + 1_000, 'the close grace');
  assert.equal(done, false, 'still waiting for the answer');
  await clock.advance(1_000);
  await closing;
  assert.equal(clock.pending, 0, 'every timer cancelled');
  assert.equal(rig.shard.view().state, 'closed');
  assert.equal(deaf.sockets.length, 1);
});
