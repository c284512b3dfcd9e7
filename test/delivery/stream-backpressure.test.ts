// In its own file so that node:test runs it in its own process: the RSS it measures is this test's alone.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { CLOSE_TOO_SLOW } from '../../src/delivery/stream.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { gc } from '../helpers/gc.js';
import { untilEmitted, untilSleeping } from '../helpers/wait.js';
import { appendRange, openJournal, tempStateDir } from './helpers.js';
import { connect, range, seqs, startStream } from './stream-helpers.js';

const TOKEN = 'stream-token-for-tests';
const MAX_BUFFERED = 1024 * 1024;
const RECORDS = 20_000;
/**
 * The stated bound on RSS growth while a consumer is stuck and RECORDS records of ~1.1 KB (~21 MiB) arrive.
 * Measured here: ~4 MiB; with the limit lifted (maxBufferedBytes 1e12) the same run grows by 25-40 MiB.
 */
const RSS_BOUND = 16 * 1024 * 1024;

function rssAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}

test('EventStream pauses for a consumer that stopped reading: its buffer stays under the limit, RSS stays bounded, then it gets 4008 and resumes from ?since=', async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  const { base, stream } = await startStream(t, { journal, clock, token: TOKEN, maxBufferedBytes: MAX_BUFFERED, drainTimeoutMs: 5000, pingIntervalMs: 3_600_000 });
  const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
  // Warm-up: appending alone raises RSS by ~35 MiB that the allocator keeps afterwards; measure past that.
  await appendRange(journal, 1, RECORDS, { pad: 800, batch: 500 });
  const stuck = connect(t, `${base}/events`, auth);
  assert.equal(await stuck.outcome, 'open');
  (stuck.ws as unknown as { _socket: Socket })._socket.pause();

  const before = rssAfterGc();
  await appendRange(journal, RECORDS + 1, 2 * RECORDS, { pad: 800, batch: 500 });
  // Pausing a client arms its drain timeout on the clock: the stream stops sending to it from then on.
  await untilSleeping(clock, () => stream.stats().paused === 1, 'the stream to pause the client');
  const grown = rssAfterGc() - before;
  const recordBytes = Buffer.byteLength(JSON.stringify((await journal.read(0, 1))[0]));
  const { sent, peakBufferedBytes } = stream.stats();
  t.diagnostic(`RSS growth ${(grown / 1048576).toFixed(1)} MiB; peak buffered ${peakBufferedBytes} B; sent ${sent} of ${RECORDS} records of ${recordBytes} B`);
  assert.ok(recordBytes > 1000 && recordBytes < 1200, `record size ${recordBytes}`);
  assert.ok(peakBufferedBytes > MAX_BUFFERED, `paused at the limit: peak buffered ${peakBufferedBytes}`);
  assert.ok(peakBufferedBytes <= MAX_BUFFERED + recordBytes, `peak buffered ${peakBufferedBytes}`);
  assert.ok(sent < RECORDS / 2, `journal reading paused for the client: sent ${sent}`);
  assert.ok(grown < RSS_BOUND, `RSS grew by ${grown} bytes`);

  await clock.advance(5000);
  assert.equal(stream.stats().tooSlow, 1);
  (stuck.ws as unknown as { _socket: Socket })._socket.resume();
  const closed = await stuck.closed;
  const last = stuck.records.at(-1)?.seq ?? 0;
  assert.equal(closed.code, CLOSE_TOO_SLOW);
  assert.equal(closed.reason, `consumer too slow; reconnect with ?since=${last}`);
  assert.equal(last, RECORDS + stream.stats().sent);
  assert.deepEqual(seqs(stuck.records), range(RECORDS + 1, last), 'live from the head at connection time');

  const again = connect(t, `${base}/events?since=${last}`, auth);
  assert.equal(await again.outcome, 'open');
  await untilEmitted(again.ws, 'message', () => again.records.length >= 2 * RECORDS - last, 'the rest after reconnecting', 15_000);
  assert.deepEqual(seqs(again.records), range(last + 1, 2 * RECORDS));
});
