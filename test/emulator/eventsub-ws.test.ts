import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';
import { EVENTSUB_CLOSE_REASONS, notificationEnvelope, type EventSubCloseCode } from '../../src/emulator/eventsub-frames.js';
import { untilEmitted, untilTurn } from '../helpers/wait.js';
import { startWsServer } from './ws-helpers.js';

const setup = startWsServer;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read the frames' JSON field by field
type Frame = any;

interface Client {
  ws: WebSocket;
  messages: Frame[];
  /** Resolves with the close code and reason once the socket is closed (fails after the guard time). */
  closed(): Promise<{ code: number; reason: string }>;
  /** Resolves once `n` messages have arrived. */
  received(n: number, what?: string): Promise<void>;
}

function open(url: string, options: ClientOptions = {}): Client {
  const ws = new WebSocket(url, options);
  const messages: Frame[] = [];
  ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8'))));
  ws.on('error', () => undefined);
  let closedWith: { code: number; reason: string } | undefined;
  ws.on('close', (code, reason) => (closedWith = { code, reason: reason.toString() }));
  const closed = async (): Promise<{ code: number; reason: string }> => {
    await untilEmitted(ws, 'close', () => closedWith !== undefined, 'the socket to close');
    return closedWith!;
  };
  const received = (n: number, what = `${n} messages`): Promise<void> => untilEmitted(ws, 'message', () => messages.length >= n, what);
  return { ws, messages, closed, received };
}

/** Connects and waits for the welcome; returns the client and its session id. */
async function welcomed(url: string, options: ClientOptions = {}): Promise<Client & { id: string }> {
  const c = open(url, options);
  await c.received(1, 'the welcome');
  return { ...c, id: c.messages[0].payload.session.id };
}

/** The HTTP status an upgrade request was refused with. */
function refusedStatus(url: string): Promise<number> {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined);
  return new Promise<number>((resolve) =>
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    }),
  );
}

const NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
const types = (c: Client): string[] => c.messages.map((m) => m.metadata?.message_type ?? m.marker);

test('eventsub-ws sends session_welcome at once, in the envelope of the contract, with reconnect_url null', async (t) => {
  const { url, server } = await setup(t);
  const c = await welcomed(url);
  const [welcome] = c.messages;
  assert.deepEqual(Object.keys(welcome.metadata).sort(), ['message_id', 'message_timestamp', 'message_type']);
  assert.equal(welcome.metadata.message_type, 'session_welcome');
  assert.match(welcome.metadata.message_id, /^[0-9a-f-]{36}$/);
  assert.match(welcome.metadata.message_timestamp, NANO);
  const session = welcome.payload.session;
  assert.deepEqual(Object.keys(session).sort(), ['connected_at', 'id', 'keepalive_timeout_seconds', 'reconnect_url', 'status']);
  assert.match(session.id, /^AQoQ[A-Za-z0-9_-]{24}$/);
  assert.equal(session.status, 'connected');
  assert.match(session.connected_at, NANO);
  assert.equal(session.keepalive_timeout_seconds, 10);
  assert.equal(session.reconnect_url, null);
  assert.deepEqual(server.sessions.get(session.id), { id: session.id, status: 'connected', connectedAt: session.connected_at, keepaliveSeconds: 10 });
});

test('eventsub-ws clamps keepalive_timeout_seconds to 10-600 and refuses one that is not an integer with 400', async (t) => {
  const { url } = await setup(t);
  for (const [asked, got] of [['5', 10], ['30', 30], ['600', 600], ['9000', 600], ['-3', 10]] as const) {
    const c = await welcomed(`${url}?keepalive_timeout_seconds=${asked}`);
    assert.equal(c.messages[0].payload.session.keepalive_timeout_seconds, got, `asked ${asked}`);
    c.ws.close();
  }
  assert.equal(await refusedStatus(`${url}?keepalive_timeout_seconds=ten`), 400);
  assert.equal(await refusedStatus(`${url}?keepalive_timeout_seconds=12.5`), 400);
});

test('eventsub-ws answers false to an upgrade on another path, so the http server can refuse it', async (t) => {
  const { port } = await setup(t);
  const c = open(`ws://127.0.0.1:${port}/events`);
  const { code } = await c.closed();
  assert.equal(code, 1006);
  assert.equal(c.messages.length, 0);
});

test('eventsub-ws sends session_keepalive only after keepalive_timeout_seconds without any other message', async (t) => {
  const { url, server, clock } = await setup(t);
  const c = await welcomed(url);
  server.sessions.assign(c.id);
  await clock.advance(9_999);
  // A message sent just before the keepalive is due both proves none came yet and restarts the wait.
  assert.equal(server.sessions.send(c.id, { marker: 'm1' }), true);
  await c.received(2);
  await clock.advance(9_999);
  assert.equal(server.sessions.send(c.id, { marker: 'm2' }), true);
  await c.received(3);
  assert.deepEqual(types(c), ['session_welcome', 'm1', 'm2']);
  await clock.advance(10_000);
  await c.received(4, 'a keepalive');
  assert.deepEqual(types(c), ['session_welcome', 'm1', 'm2', 'session_keepalive']);
  assert.deepEqual(c.messages[3].payload, {});
  assert.match(c.messages[3].metadata.message_timestamp, NANO);
});

test('eventsub-ws closes a session not assigned within unusedCloseMs with 4003 and tells onDisconnect', async (t) => {
  const { url, server, clock, disconnects } = await setup(t);
  const unused = await welcomed(url);
  const used = await welcomed(url);
  assert.equal(server.sessions.assign(used.id), true);
  await clock.advance(9_999);
  assert.equal(disconnects.length, 0);
  await clock.advance(1);
  assert.deepEqual(await unused.closed(), { code: 4003, reason: 'connection unused' });
  assert.equal(disconnects.length, 1);
  assert.equal(disconnects[0]!.id, unused.id);
  assert.equal(disconnects[0]!.closeCode, 4003);
  assert.equal(disconnects[0]!.status, 'disconnected');
  assert.match(disconnects[0]!.disconnectedAt ?? '', NANO);
  assert.equal(server.sessions.get(unused.id)?.status, 'disconnected');
  assert.equal(server.sessions.assign(unused.id), false);
  assert.equal(server.sessions.send(used.id, { marker: 'still open' }), true);
  await used.received(2);
});

test('eventsub-ws closes with 4001 on a client text frame and on a client ping', async (t) => {
  const { url, server, disconnects } = await setup(t);
  const text = await welcomed(url);
  text.ws.send('hello');
  assert.deepEqual(await text.closed(), { code: 4001, reason: 'sent inbound traffic' });
  const ping = await welcomed(url);
  ping.ws.ping();
  assert.equal((await ping.closed()).code, 4001);
  assert.deepEqual(disconnects.map((d) => [d.id, d.closeCode]), [[text.id, 4001], [ping.id, 4001]]);
  assert.equal(server.sessions.send(text.id, { marker: 'x' }), false);
});

test('eventsub-ws reconnect with reconnectNewSessionId false: the new connection is welcomed with the same session, messages move with it, none lost or doubled', async (t) => {
  const { url, server, clock, disconnects } = await setup(t, { reconnectNewSessionId: false });
  const old = await welcomed(`${url}?keepalive_timeout_seconds=20`);
  server.sessions.assign(old.id);
  const sent = server.reconnect(old.id);
  assert.deepEqual(sent.map((s) => s.sessionId), [old.id]);
  await old.received(2, 'session_reconnect');
  const reconnect = old.messages[1];
  assert.equal(reconnect.payload.session.reconnect_url, sent[0]!.reconnectUrl);
  assert.equal(reconnect.metadata.message_type, 'session_reconnect');
  assert.equal(reconnect.payload.session.id, old.id);
  assert.equal(reconnect.payload.session.status, 'reconnecting');
  assert.equal(reconnect.payload.session.keepalive_timeout_seconds, null);
  assert.equal(reconnect.payload.session.connected_at, old.messages[0].payload.session.connected_at);
  assert.equal(server.sessions.get(old.id)?.status, 'reconnecting');
  // Before the client moves, messages still go to the old socket.
  assert.equal(server.sessions.send(old.id, notificationEnvelope({ type: 'stream.online', version: '1' }, { n: 1 }, clock.now())), true);
  await old.received(3);
  const moved = await welcomed(reconnect.payload.session.reconnect_url);
  assert.equal(moved.id, old.id);
  assert.equal(moved.messages[0].payload.session.keepalive_timeout_seconds, 20);
  assert.equal(moved.messages[0].payload.session.reconnect_url, null);
  assert.equal(server.sessions.get(old.id)?.status, 'connected');
  assert.equal(server.sessions.send(old.id, { marker: 'after' }), true);
  await moved.received(2);
  old.ws.close(1000);
  assert.equal((await old.closed()).code, 1000);
  // Past the grace time: the new socket stays open, with the session's keepalive time (20 s).
  await clock.advance(30_000);
  assert.equal(server.sessions.send(old.id, { marker: 'still' }), true);
  await moved.received(4);
  assert.deepEqual(types(old), ['session_welcome', 'session_reconnect', 'notification']);
  assert.deepEqual(types(moved), ['session_welcome', 'after', 'session_keepalive', 'still']);
  assert.deepEqual(disconnects, []);
});

test('eventsub-ws reconnect: the old socket is closed with 4004 after the grace time when the client never moves', async (t) => {
  const { url, server, clock, disconnects } = await setup(t, { reconnectGraceMs: 5_000 });
  const c = await welcomed(url);
  server.sessions.assign(c.id);
  server.reconnect();
  await c.received(2);
  await clock.advance(4_999);
  assert.equal(disconnects.length, 0);
  await clock.advance(1);
  assert.deepEqual(await c.closed(), { code: 4004, reason: 'reconnect grace time expired' });
  assert.deepEqual(disconnects.map((d) => [d.id, d.closeCode]), [[c.id, 4004]]);
  // The reconnect URL is dead with its session: 4007.
  const late = open(c.messages[1].payload.session.reconnect_url);
  assert.deepEqual(await late.closed(), { code: 4007, reason: 'invalid reconnect' });
  assert.equal(late.messages.length, 0);
});

test('eventsub-ws reconnect: an old socket the client keeps open gets 4004, the session lives on', async (t) => {
  const { url, server, clock, disconnects } = await setup(t, { reconnectGraceMs: 5_000 });
  const old = await welcomed(url);
  server.sessions.assign(old.id);
  server.reconnect(old.id);
  await old.received(2);
  const moved = await welcomed(old.messages[1].payload.session.reconnect_url);
  // A second use of the same URL is an invalid reconnect.
  const twice = open(old.messages[1].payload.session.reconnect_url);
  assert.equal((await twice.closed()).code, 4007);
  await clock.advance(5_000);
  assert.equal((await old.closed()).code, 4004);
  assert.equal(server.sessions.send(moved.id, { marker: 'alive' }), true);
  await moved.received(2);
  assert.deepEqual(disconnects, []);
  assert.equal(server.sessions.get(moved.id)?.status, 'connected');
});

test('eventsub-ws reconnect (default, as twitch-cli): the new welcome carries a new session id; the old id still reaches the session but cannot be assigned', async (t) => {
  const { url, server, clock, disconnects } = await setup(t);
  const old = await welcomed(`${url}?keepalive_timeout_seconds=20`);
  server.sessions.assign(old.id);
  const [sent] = server.reconnect(old.id);
  assert.equal(sent?.sessionId, old.id);
  await old.received(2, 'session_reconnect');
  assert.equal(old.messages[1].payload.session.id, old.id);
  // Before the client moves, messages go to the old socket.
  assert.equal(server.sessions.send(old.id, { marker: 'before' }), true);
  await old.received(3);
  const moved = await welcomed(sent.reconnectUrl);
  assert.notEqual(moved.id, old.id);
  assert.match(moved.id, /^AQoQ[A-Za-z0-9_-]{24}$/);
  assert.equal(moved.messages[0].payload.session.keepalive_timeout_seconds, 20);
  const movedAt = moved.messages[0].payload.session.connected_at;
  assert.deepEqual(server.sessions.get(old.id), {
    id: old.id,
    status: 'reconnected',
    connectedAt: old.messages[0].payload.session.connected_at,
    disconnectedAt: movedAt,
    keepaliveSeconds: 20,
    movedTo: moved.id,
  });
  assert.deepEqual(server.sessions.get(moved.id), { id: moved.id, status: 'connected', connectedAt: movedAt, keepaliveSeconds: 20, formerIds: [old.id] });
  assert.deepEqual(server.list().map((s) => [s.id, s.status]), [[old.id, 'reconnected'], [moved.id, 'connected']]);
  // A shard still assigned to the old id keeps its events: they arrive on the new socket, once each.
  assert.equal(server.sessions.send(old.id, { marker: 'via old id' }), true);
  assert.equal(server.sessions.send(moved.id, { marker: 'via new id' }), true);
  await moved.received(3);
  assert.deepEqual(types(moved), ['session_welcome', 'via old id', 'via new id']);
  // The old id is no session of its own any more: it cannot be assigned, reconnected, closed or terminated.
  assert.equal(server.sessions.assign(old.id), false);
  assert.deepEqual(server.reconnect(old.id), []);
  assert.equal(server.closeSession(old.id, 4000), false);
  assert.equal(server.terminateSession(old.id), false);
  assert.equal(server.sessions.assign(moved.id), true);
  old.ws.close(1000);
  await old.closed();
  await clock.advance(30_000);
  assert.equal(disconnects.length, 0, 'leaving the old socket is no disconnect');
  assert.deepEqual(types(old), ['session_welcome', 'session_reconnect', 'before']);
  // When the moved session ends, its listeners learn both ids, so a shard on either is disabled.
  assert.equal(server.terminateSession(moved.id), true);
  assert.deepEqual(disconnects.map((d) => [d.id, d.closeCode, d.formerIds]), [[moved.id, 1006, [old.id]]]);
  assert.equal(server.sessions.get(old.id)?.status, 'reconnected');
  assert.equal(server.sessions.send(old.id, { marker: 'gone' }), false);
});

test('eventsub-ws reconnect() options override the server\'s: graceMs for the 4004, newSessionId for the id', async (t) => {
  const { url, server, clock, disconnects } = await setup(t);
  const stays = await welcomed(url);
  server.sessions.assign(stays.id);
  server.reconnect(stays.id, { newSessionId: false, graceMs: 60_000 });
  await stays.received(2);
  const moved = await welcomed(stays.messages[1].payload.session.reconnect_url);
  assert.equal(moved.id, stays.id);
  const lingers = await welcomed(url);
  server.sessions.assign(lingers.id);
  server.reconnect(lingers.id, { graceMs: 1_000 });
  await lingers.received(2);
  await clock.advance(999);
  assert.equal(disconnects.length, 0);
  await clock.advance(1);
  assert.equal((await lingers.closed()).code, 4004);
  assert.deepEqual(disconnects.map((d) => [d.id, d.closeCode]), [[lingers.id, 4004]]);
  // The first one's 60 s grace is not over: its old socket is still open.
  assert.equal(stays.ws.readyState, WebSocket.OPEN);
});

test('eventsub-ws closeSession() closes with each close code of the contract and its reason', async (t) => {
  const { url, server, disconnects } = await setup(t);
  for (const code of [4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007] as EventSubCloseCode[]) {
    const c = await welcomed(url);
    assert.equal(server.closeSession(c.id, code), true);
    assert.deepEqual(await c.closed(), { code, reason: EVENTSUB_CLOSE_REASONS[code] });
    assert.equal(server.sessions.get(c.id)?.closeCode, code);
    assert.equal(server.closeSession(c.id, code), false);
  }
  assert.deepEqual(disconnects.map((d) => d.closeCode), [4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007]);
});

test('eventsub-ws send() is false for a closed or unknown session; terminateSession() is a 1006 close', async (t) => {
  const { url, server, disconnects } = await setup(t);
  const c = await welcomed(url);
  assert.equal(server.sessions.send('nope', { marker: 'x' }), false);
  assert.equal(server.terminateSession(c.id), true);
  assert.equal((await c.closed()).code, 1006);
  assert.equal(server.sessions.send(c.id, { marker: 'x' }), false);
  assert.deepEqual(disconnects.map((d) => [d.id, d.closeCode]), [[c.id, 1006]]);
  const gone = await welcomed(url);
  gone.ws.close(1000);
  await gone.closed();
  await untilEmitted(gone.ws, 'close', () => server.sessions.get(gone.id)?.status === 'disconnected', 'the server to see the close');
  assert.equal(server.sessions.send(gone.id, { marker: 'x' }), false);
});

test('eventsub-ws with pingIntervalMs closes a client that does not answer pings with 4002', async (t) => {
  const { url, clock, server } = await setup(t, { pingIntervalMs: 5_000 });
  const c = await welcomed(url, { autoPong: false });
  server.sessions.assign(c.id);
  let pinged = false;
  c.ws.once('ping', () => (pinged = true));
  await clock.advance(5_000);
  await untilEmitted(c.ws, 'ping', () => pinged, 'a ping');
  await clock.advance(5_000);
  assert.deepEqual(await c.closed(), { code: 4002, reason: 'failed ping-pong' });
});

test('eventsub-ws survives garbage and oversized frames and keeps serving', async (t) => {
  const { url, port, server, disconnects } = await setup(t, { maxPayloadBytes: 1024 });
  const big = await welcomed(url);
  big.ws.send('x'.repeat(10_000));
  assert.equal((await big.closed()).code, 1009);
  const raw = tcpConnect(port, '127.0.0.1');
  raw.on('error', () => undefined);
  const answered = new Promise<string>((resolve) => raw.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  raw.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  assert.match(await answered, /^HTTP\/1\.1 101/);
  raw.write(Buffer.alloc(64, 0xff));
  await untilEmitted(raw, 'close', () => raw.closed, 'the server to close the garbage connection');
  await untilTurn(() => disconnects.length === 2, 'the server to drop the garbage connection');
  assert.ok(disconnects.every((d) => d.status === 'disconnected'));
  const next = await welcomed(url);
  assert.equal(server.sessions.get(next.id)?.status, 'connected');
});

test('eventsub-ws close() closes every socket with 1001 and refuses later upgrades with 503', async (t) => {
  const { url, server } = await setup(t);
  const c = await welcomed(url);
  await server.close();
  assert.equal((await c.closed()).code, 1001);
  assert.equal(await refusedStatus(url), 503);
});
