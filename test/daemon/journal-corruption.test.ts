/**
 * Issue #10.5, seen from the daemon: a corrupt record in the journal (one flipped byte) neither stops the
 * start nor the consumers. The forwarder and a stream client get every other record in order, new ones
 * follow, and /metrics counts the corrupt record.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { WebSocket } from 'ws';
import { Journal } from '../../src/journal/journal.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { entry } from '../journal/helpers.js';
import { notificationBody } from '../receiver/helpers.js';
import { ForwardSink, startInProcessDaemon } from './in-process.js';

test('daemon with a corrupt record in its journal starts, forwards and streams every other record in order, and counts it', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'eventsubd-corrupt-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const state = join(base, 'state');
  const seeded = await Journal.open({ dir: join(state, 'journal'), clock: new FakeClock() });
  for (let i = 1; i <= 5; i++) await seeded.append(entry(i));
  await seeded.close();
  const segment = join(state, 'journal', '00000000000000000001.jsonl');
  const bytes = readFileSync(segment);
  const third = bytes.indexOf(0x0a, bytes.indexOf(0x0a) + 1) + 20; // inside the record of seq 3
  bytes[third] = bytes[third]! ^ 0x01;
  writeFileSync(segment, bytes);

  const sink = new ForwardSink();
  t.after(() => new Promise<void>((resolve) => sink.server.close(() => resolve())));
  const d = await startInProcessDaemon(t, { EVENTSUBD_STATE_DIR: state, EVENTSUBD_FORWARD_URL: await sink.listen() });
  const streamed: number[] = [];
  const ws = new WebSocket(`${d.daemon.url.replace('http', 'ws')}/events?since=0`);
  t.after(() => ws.terminate());
  const sixth = new Promise<void>((resolve) =>
    ws.on('message', (data: Buffer) => {
      streamed.push((JSON.parse(data.toString('utf8')) as { seq: number }).seq);
      if (streamed.at(-1) === 6) resolve();
    }),
  );
  await sink.received(4);
  assert.deepEqual(sink.records().map((r) => r.seq), [1, 2, 4, 5]);
  assert.equal(await d.deliver(notificationBody()), 204);
  await sink.received(5);
  assert.deepEqual(sink.records().map((r) => r.seq), [1, 2, 4, 5, 6]);
  await sixth;
  assert.deepEqual(streamed, [1, 2, 4, 5, 6]);
  const metrics = await request(`${d.daemon.url}/metrics`, { dispatcher: d.agent });
  assert.match(await metrics.body.text(), /^eventsubd_journal_corrupt_records_total 1$/m);
});
