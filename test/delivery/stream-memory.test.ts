// In its own file so that node:test runs it in its own process: the memory it measures is this test's alone.
/**
 * Issue #10.6: memory that a client controls is bounded in bytes. Twenty stream clients that stop reading
 * while a journal of 100 KB records is replayed to them each cost about their send buffer
 * (`maxBufferedBytes`) plus one journal read batch (bounded in bytes, not records), not 256 records each.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { FakeClock } from '../helpers/fake-clock.js';
import { liveBytesAfterGc } from '../helpers/gc.js';
import { appendRange, openJournal, tempStateDir, until } from './helpers.js';
import { connect, startStream } from './stream-helpers.js';

const CLIENTS = 20;
const RECORDS = 300;
const PAD = 100 * 1024;
const MAX_BUFFERED = 1024 * 1024;
/** Per stuck client: its send buffer, one read batch (256 KiB) and one record in flight, with room to spare. */
const PER_CLIENT_BOUND = 4 * 1024 * 1024;

test(`EventStream: ${CLIENTS} clients that stop reading during the replay of ${RECORDS} records of 100 KB each hold under 4 MiB`, async (t) => {
  const stateDir = tempStateDir(t);
  const clock = new FakeClock();
  const journal = await openJournal(t, stateDir, clock);
  await appendRange(journal, 1, RECORDS, { pad: PAD, batch: 20 });
  const { base, stream } = await startStream(t, { journal, clock, maxBufferedBytes: MAX_BUFFERED, drainTimeoutMs: 3_600_000, pingIntervalMs: 3_600_000 });
  const before = liveBytesAfterGc();
  const clients = Array.from({ length: CLIENTS }, () => connect(t, `${base}/events?since=0`));
  for (const c of clients) {
    assert.equal(await c.outcome, 'open');
    (c.ws as unknown as { _socket: Socket })._socket.pause();
  }
  // Each client's journal reading pauses once its buffer passes the limit.
  await until(() => stream.stats().paused === CLIENTS, 'every client to be paused', 30_000);
  const perClient = (liveBytesAfterGc() - before) / CLIENTS;
  const { sent, peakBufferedBytes } = stream.stats();
  t.diagnostic(`per stuck client: ${(perClient / 1048576).toFixed(2)} MiB (heap + external after GC); sent ${sent} records in all; peak buffered ${peakBufferedBytes} B`);
  assert.ok(sent < (CLIENTS * RECORDS) / 2, `reading paused for each client: sent ${sent}`);
  assert.ok(perClient < PER_CLIENT_BOUND, `each stuck client holds ${perClient} bytes`);
});
