// In its own file so that node:test runs it in its own process: the memory it measures is this test's alone.
/**
 * Issue #10.6: rebuilding the dedup window at start reads the journal in batches bounded in bytes, not only
 * in records: 400 recent records of 100 KB never sit in memory together.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { liveBytesAfterGc } from '../helpers/gc.js';
import { entry, tempJournalDir } from './helpers.js';

const RECORDS = 400;
const PAD = 'x'.repeat(100 * 1024);
/** What the reader may hold at once: one 4 MiB batch, parsed, plus its read buffer, with room to spare. */
const LIVE_BOUND = 24 * 1024 * 1024;

test(`Journal.recent() over ${RECORDS} records of 100 KB holds under 24 MiB at any time`, async (t) => {
  const dir = tempJournalDir(t);
  const clock = new FakeClock();
  const receivedAt = new Date(clock.now()).toISOString();
  const writer = await Journal.open({ dir, clock });
  for (let start = 1; start <= RECORDS; start += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => writer.append({ ...entry(start + i, receivedAt), event: { pad: PAD } })));
  }
  await writer.close();

  const journal = await Journal.open({ dir, clock });
  t.after(() => journal.close());
  const before = liveBytesAfterGc();
  let seen = 0;
  let peak = 0;
  for await (const record of journal.recent(clock.now() - 60_000)) {
    seen += 1;
    assert.equal(record.seq, seen);
    if (seen % 10 === 0) peak = Math.max(peak, liveBytesAfterGc() - before);
  }
  t.diagnostic(`${seen} records; the most held at once: ${(peak / 1048576).toFixed(1)} MiB`);
  assert.equal(seen, RECORDS);
  assert.ok(peak < LIVE_BOUND, `held ${peak} bytes at once`);
});
