import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WebSocket } from 'ws';
import { FakeClock } from '../helpers/fake-clock.js';
import { untilEmitted } from '../helpers/wait.js';
import { appendRange, openJournal, tempStateDir } from './helpers.js';
import { connect, range, seqs, startStream, type TestClient } from './stream-helpers.js';

const TOKEN = 'stream-token-for-tests';
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

/** Resolves once `client` holds at least `n` records (checked on each message it gets). */
function received(client: TestClient, n: number): Promise<void> {
  return untilEmitted(client.ws, 'message', () => client.records.length >= n, `${n} records`);
}

/** Resolves once the client's ping is answered: every frame the server sent before reading it has arrived. */
function roundTrip(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    ws.once('pong', () => resolve());
    ws.ping();
  });
}

test('EventStream replays from ?since=N then continues live with no gap and no duplicate while appends run concurrently', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 300);
  const { base, stream } = await startStream(t, { journal, clock, token: TOKEN });
  const client = connect(t, `${base}/events?since=100`, auth);
  const appending = appendRange(journal, 301, 1000, { batch: 7 });
  assert.equal(await client.outcome, 'open');
  await appending;
  await received(client, 900);
  await roundTrip(client.ws);
  assert.equal(stream.stats().sent, 900, 'nothing more was sent');
  assert.deepEqual(seqs(client.records), range(101, 1000));
  assert.equal(client.records[0]?.message_id, 'msg-101');
});

test('EventStream without ?since starts live at the head', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 10);
  const { base, stream } = await startStream(t, { journal, clock, token: TOKEN });
  const client = connect(t, `${base}/events`, auth);
  assert.equal(await client.outcome, 'open');
  await appendRange(journal, 11, 15);
  await received(client, 5);
  assert.deepEqual(seqs(client.records), range(11, 15));
  assert.equal(stream.stats().sent, 5);
});

test('EventStream refuses a missing or wrong token with 401 and no connection; accepts the header and ?access_token=', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  const { base, stream } = await startStream(t, { journal, clock, token: TOKEN });
  assert.equal(await connect(t, `${base}/events`).outcome, 401);
  assert.equal(await connect(t, `${base}/events`, { headers: { authorization: 'Bearer wrong-token-of-same-len' } }).outcome, 401);
  assert.equal(await connect(t, `${base}/events`, { headers: { authorization: `Basic ${TOKEN}` } }).outcome, 401);
  assert.equal(await connect(t, `${base}/events?access_token=nope`).outcome, 401);
  assert.equal(stream.stats().clients, 0);
  assert.equal(stream.stats().refused, 4);
  assert.equal(await connect(t, `${base}/events`, auth).outcome, 'open');
  assert.equal(await connect(t, `${base}/events?access_token=${TOKEN}`).outcome, 'open');
  assert.equal(stream.stats().clients, 2);
});

test('EventStream without a token refuses browser (Origin) connections with 403 and accepts others', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  const { base } = await startStream(t, { journal, clock });
  assert.equal(await connect(t, `${base}/events`, { origin: 'https://evil.example' }).outcome, 403);
  assert.equal(await connect(t, `${base}/events`).outcome, 'open');
});

test('EventStream answers 400 to a malformed ?since or one beyond the head, and leaves other paths to the caller (404)', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, 3);
  const { base } = await startStream(t, { journal, clock, token: TOKEN });
  assert.equal(await connect(t, `${base}/events?since=abc`, auth).outcome, 400);
  assert.equal(await connect(t, `${base}/events?since=-1`, auth).outcome, 400);
  assert.equal(await connect(t, `${base}/events?since=4`, auth).outcome, 400);
  assert.equal(await connect(t, `${base}/other`, auth).outcome, 404);
  const ok = connect(t, `${base}/events?since=3`, auth);
  assert.equal(await ok.outcome, 'open');
});

test('EventStream answers 503 beyond maxClients and after close(); close() sends 1001 to connected clients', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  const { base, stream } = await startStream(t, { journal, clock, token: TOKEN, maxClients: 1 });
  const first = connect(t, `${base}/events`, auth);
  assert.equal(await first.outcome, 'open');
  assert.equal(await connect(t, `${base}/events`, auth).outcome, 503);
  await stream.close();
  assert.equal((await first.closed).code, 1001);
  assert.equal(await connect(t, `${base}/events`, auth).outcome, 503);
});

test('EventStream ignores frames sent by a client and keeps streaming to it', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  const { base } = await startStream(t, { journal, clock, token: TOKEN });
  const client = connect(t, `${base}/events`, auth);
  assert.equal(await client.outcome, 'open');
  client.ws.send('{"subscribe":"everything"}');
  client.ws.send(Buffer.from([1, 2, 3]));
  await appendRange(journal, 1, 2);
  await received(client, 2);
  assert.deepEqual(seqs(client.records), [1, 2]);
});

test('EventStream pings every interval and terminates a client that missed a pong, keeping one that answers', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  const { base, stream } = await startStream(t, { journal, clock, token: TOKEN, pingIntervalMs: 1000 });
  const healthy = connect(t, `${base}/events`, auth);
  const silent = connect(t, `${base}/events`, { ...auth, autoPong: false });
  assert.equal(await healthy.outcome, 'open');
  assert.equal(await silent.outcome, 'open');
  // ws registers a client on the server before it writes the 101 answer: both are counted once both opened.
  assert.equal(stream.stats().clients, 2, 'both clients registered');

  for (let round = 1; round <= 3; round++) {
    const pinged = Promise.all([new Promise((r) => healthy.ws.once('ping', r)), round === 1 ? new Promise((r) => silent.ws.once('ping', r)) : null]);
    await clock.advance(1000);
    await pinged;
    // The healthy client's own ping is answered after the server has read its pong (frames are in order).
    await roundTrip(healthy.ws);
    if (round === 2) assert.equal((await silent.closed).code, 1006, 'terminated without a close frame');
  }
  assert.equal(stream.stats().unresponsive, 1);
  assert.equal(healthy.ws.readyState, healthy.ws.OPEN);
  assert.equal(stream.stats().clients, 1);
});
