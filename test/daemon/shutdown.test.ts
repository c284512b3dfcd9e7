/**
 * Stopping the daemon (SPEC.md "Processes and signals"): SIGTERM in the middle of a stream of deliveries
 * loses nothing that was acknowledged, a request in flight holds the stop, and a second signal exits at once.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { readJournal, status, useFixture, waitFor } from './harness.js';
import { notificationBody, send, signedHeaders } from './messages.js';

/** A signed notification's head and the first bytes of its body, then nothing: a body still arriving. */
function slowUpload(port: number): Socket {
  const body = notificationBody();
  const head =
    'POST /twitch/eventsub HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    Object.entries(signedHeaders(body))
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `Content-Length: ${body.length}\r\n\r\n`;
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(head + body.slice(0, 10));
  return socket;
}

test('daemon SIGTERM during a stream of notifications: exit 0, every acknowledged message is journaled, the rest refused', async (t) => {
  const { f, start } = await useFixture(t, { subscriptions: [] });
  const d = await start();
  const total = 200;
  const signalAfter = 20;
  const acked: string[] = [];
  const sentIds = new Set<string>();
  const refused: Record<string, number> = {};
  const sendOne = async (): Promise<void> => {
    try {
      const res = await send(f);
      sentIds.add(res.messageId);
      if (res.status === 204) {
        acked.push(res.messageId);
        if (acked.length === signalAfter) d.child.kill('SIGTERM'); // mid-stream, whatever the machine's load
      } else refused[res.status] = (refused[res.status] ?? 0) + 1;
    } catch (err) {
      const code = String((err as { cause?: { code?: string } }).cause?.code ?? 'error');
      refused[code] = (refused[code] ?? 0) + 1;
    }
  };
  // A steady stream: each of `lanes` senders sends its next notification as soon as its last one is answered.
  const lanes = 8;
  let started = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (started < total) {
        started += 1;
        await sendOne();
      }
    }),
  );
  assert.equal((await d.exited).code, 0);
  t.diagnostic(`acknowledged ${acked.length}, refused ${JSON.stringify(refused)}`);
  assert.ok(acked.length >= signalAfter && acked.length < total, `acknowledged ${acked.length} of ${total}`);
  // Refused means 503 (while closing) or no connection (closed, or an idle keep-alive connection closed
  // under a new request): never another status.
  assert.deepEqual(Object.keys(refused).filter((k) => !['503', 'ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET'].includes(k)), []);
  const journaled = readJournal(f.stateDir).map((r) => r.message_id);
  assert.deepEqual(new Set(journaled), new Set(acked), 'journaled = acknowledged');
  assert.equal(journaled.length, acked.length);
  assert.ok(journaled.every((id) => sentIds.has(id)));
});

test('daemon SIGTERM cuts a body still arriving, waits for a stream client to answer its close frame; a second SIGTERM exits at once', async (t) => {
  const { f, start } = await useFixture(t, { subscriptions: [] });
  const d = await start();
  // A delivery whose body is still arriving when the signal comes: nothing of it was acknowledged.
  const upload = slowUpload(f.port);
  t.after(() => upload.destroy());
  const uploadClosed = new Promise((r) => upload.once('close', r));
  // A stream client that never reads again after its handshake, so never answers the close frame.
  const stuck = connect(f.port, '127.0.0.1');
  stuck.on('error', () => {});
  t.after(() => stuck.destroy());
  stuck.write(
    'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await new Promise((r) => stuck.once('data', r));
  stuck.pause();
  await waitFor('the upload and the stream client', async () => {
    const s = await status(f);
    return s.receiver?.reading === 1 && (s.delivery as { stream?: { clients: number } }).stream?.clients === 1;
  });

  d.child.kill('SIGTERM');
  await uploadClosed; // cut at once: it was not acknowledged and nothing of it is journaled
  await waitFor('the stop to begin', () => d.logs().some((l) => l.msg === 'Stopping: finishing in-flight requests and flushing the journal'));
  assert.ok(d.running, 'still waiting for the stream client to answer its close frame');
  const second = Date.now();
  d.child.kill('SIGTERM');
  const { code } = await d.exited;
  assert.equal(code, 143);
  assert.ok(Date.now() - second < 1_000, `exited ${Date.now() - second} ms after the second signal`);
  assert.deepEqual(readJournal(f.stateDir), []);
});

test('daemon SIGTERM with 1,000 slow uploads and 100 stuck stream clients exits 0 within the 10 s the README promises', async (t) => {
  const { f, start } = await useFixture(t, { subscriptions: [] });
  const d = await start();
  const sockets: Socket[] = [];
  for (let i = 0; i < 1_000; i++) sockets.push(slowUpload(f.port));
  for (let i = 0; i < 100; i++) {
    const s = connect(f.port, '127.0.0.1');
    s.on('error', () => {});
    s.write(
      'GET /events?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    s.once('data', () => s.pause());
    sockets.push(s);
  }
  t.after(() => sockets.forEach((s) => s.destroy()));
  await waitFor('1,000 uploads and 100 stream clients', async () => {
    const s = await status(f);
    return s.receiver?.reading === 1_000 && (s.delivery as { stream?: { clients: number } }).stream?.clients === 100;
  }, { timeoutMs: 20_000 });
  const signalled = Date.now();
  d.child.kill('SIGTERM');
  const { code } = await d.exited;
  const took = Date.now() - signalled;
  t.diagnostic(`exit ${code} ${took} ms after SIGTERM`);
  assert.equal(code, 0);
  assert.ok(took < 10_000, `stopped in ${took} ms`);
});
