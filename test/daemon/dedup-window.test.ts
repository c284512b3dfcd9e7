/**
 * The dedup window across restarts of the daemon in-process (src/daemon/dedup-window.ts): a graceful stop saves
 * it, the next start restores it and reads only the journal records after it; a broken or foreign snapshot is
 * reported and the window is rebuilt from the journal, so a redelivery is never journaled twice either way.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import { notificationBody } from '../receiver/helpers.js';
import { readJournal } from './harness.js';
import { startInProcessDaemon, type InProcessDaemon } from './in-process.js';

const SNAPSHOT = 'dedup.snapshot';

function stateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-dedup-window-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What the daemon logged when its dedup window was ready. */
function windowReady(d: InProcessDaemon): Record<string, unknown> {
  const r = d.logs.records().find((l) => l.msg === 'Dedup window ready');
  assert.ok(r, 'the daemon says how its dedup window was filled');
  return r;
}

/** Starts a daemon on `dir`, delivers `ids` (each must be new: 204 and journaled), and stops it gracefully. */
async function runAndStop(t: TestContext, dir: string, ids: string[]): Promise<void> {
  const d = await startInProcessDaemon(t, {}, { stateDir: dir });
  for (const id of ids) assert.equal(await d.deliver(notificationBody(id), { messageId: id }), 204);
  await d.daemon.close();
}

/** Redelivers `ids` to a new daemon on `dir`: each is acknowledged and none is journaled again. */
async function redeliver(t: TestContext, dir: string, ids: string[]): Promise<InProcessDaemon> {
  const before = readJournal(dir).length;
  const d = await startInProcessDaemon(t, {}, { stateDir: dir });
  for (const id of ids) assert.equal(await d.deliver(notificationBody(id), { messageId: id }), 204, id);
  assert.equal(readJournal(dir).length, before, 'no redelivery journaled again');
  return d;
}

test('a graceful stop saves the dedup window; the next start restores it and reads no journal record', async (t) => {
  const dir = stateDir(t);
  const ids = ['m-1', 'm-2', 'm-3'];
  await runAndStop(t, dir, ids);
  assert.ok(existsSync(join(dir, SNAPSHOT)), 'the stop saved the window');
  const d = await redeliver(t, dir, ids);
  assert.deepEqual(
    { from_snapshot: windowReady(d).from_snapshot, records_read: windowReady(d).records_read, keys: windowReady(d).keys },
    { from_snapshot: true, records_read: 0, keys: 3 },
  );
  // A new message id is still new.
  assert.equal(await d.deliver(notificationBody('m-4'), { messageId: 'm-4' }), 204);
  assert.deepEqual(readJournal(dir).map((r) => r.message_id), [...ids, 'm-4']);
});

test('records journaled after the snapshot (a run killed before its stop) are read from the journal on top of it', async (t) => {
  const dir = stateDir(t);
  await runAndStop(t, dir, ['m-1', 'm-2']);
  // What a later run that was killed would leave: records after the snapshot's seq, and the same snapshot.
  const journal = await Journal.open({ dir: join(dir, 'journal'), clock: { now: () => Date.now(), sleep: async () => undefined } });
  const sub = JSON.parse(notificationBody()).subscription as never;
  for (const id of ['k-1', 'k-2']) {
    await journal.append({ message_id: id, message_type: 'notification', received_at: new Date().toISOString(), transport: 'webhook', subscription: sub, event: {} });
  }
  await journal.close();
  const d = await redeliver(t, dir, ['m-1', 'm-2', 'k-1', 'k-2']);
  assert.deepEqual(
    { from_snapshot: windowReady(d).from_snapshot, snapshot_seq: windowReady(d).snapshot_seq, records_read: windowReady(d).records_read },
    { from_snapshot: true, snapshot_seq: 2, records_read: 2 },
  );
});

test('a corrupt snapshot is reported and the window rebuilt from the journal', async (t) => {
  const dir = stateDir(t);
  await runAndStop(t, dir, ['m-1', 'm-2']);
  const bytes = readFileSync(join(dir, SNAPSHOT));
  bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff;
  writeFileSync(join(dir, SNAPSHOT), bytes);
  const d = await redeliver(t, dir, ['m-1', 'm-2']);
  const warn = d.logs.records().find((l) => l.msg === 'Ignoring the dedup snapshot; rebuilding the dedup window from the journal');
  assert.equal(warn?.level, 'warn');
  assert.equal(warn?.problem, 'its checksum does not match');
  assert.deepEqual({ from_snapshot: windowReady(d).from_snapshot, records_read: windowReady(d).records_read }, { from_snapshot: false, records_read: 2 });
});

test('a snapshot from another journal (the journal was replaced) is not used', async (t) => {
  const dir = stateDir(t);
  await runAndStop(t, dir, ['old-1', 'old-2']);
  const snapshot = readFileSync(join(dir, SNAPSHOT));
  rmSync(join(dir, 'journal'), { recursive: true });
  await runAndStop(t, dir, ['new-1', 'new-2', 'new-3']);
  writeFileSync(join(dir, SNAPSHOT), snapshot); // seq 2 exists again, but holds another message
  const d = await redeliver(t, dir, ['new-1', 'new-2', 'new-3']);
  assert.ok(d.logs.records().some((l) => /does not match the journal/.test(String(l.msg))));
  assert.deepEqual({ from_snapshot: windowReady(d).from_snapshot, keys: windowReady(d).keys }, { from_snapshot: false, keys: 3 });
  // old-1 was never in this journal: it is new here.
  assert.equal(await d.deliver(notificationBody('old-1'), { messageId: 'old-1' }), 204);
  assert.equal(readJournal(dir).at(-1)?.message_id, 'old-1');
});

test('a broken snapshot beside an empty journal is removed at the stop, so the warning is not repeated at every start', async (t) => {
  const dir = stateDir(t);
  writeFileSync(join(dir, SNAPSHOT), 'garbage\n', { mode: 0o600 });
  const d = await startInProcessDaemon(t, {}, { stateDir: dir });
  assert.ok(d.logs.records().some((l) => l.level === 'warn' && l.problem === 'its header is not JSON'));
  await d.daemon.close();
  assert.equal(existsSync(join(dir, SNAPSHOT)), false);
});
