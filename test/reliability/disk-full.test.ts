/**
 * Issue #6, "The disk": the real daemon (`node dist/main.js run`) with its whole state directory (journal,
 * token cache, pid file) on a tiny tmpfs. When the journal cannot write, because the disk is full or read-only,
 * a new notification must be answered 503 `journal unavailable` (Twitch retries later), never 2xx; `/readyz`
 * and `/status` must say the journal is not writable; the daemon stays up; and when the disk is usable again
 * it recovers by itself: Twitch's retries and new messages are 2xx and journaled, each id exactly once, seq
 * dense, nothing acknowledged lost. Records are read straight from the segment files.
 *
 * Needs root (mount): run as root, as .ci/run does. Without it every test FAILS with NEEDS_ROOT (no skip).
 *
 * Read-only: root ignores mode bits, so the tmpfs itself is remounted read-only. The kernel refuses that
 * (EBUSY) while a file on it is open for writing, and the journal keeps its active segment open from its first
 * append on; so the test restarts the daemon on the journal written by a first one, and remounts before the
 * second daemon appends anything. Build first: `npx tsc -p tsconfig.build.json`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  BROADCASTER,
  httpGet,
  metric,
  readJournal,
  startDaemon,
  startFixture,
  status,
  waitFor,
  type DaemonProcess,
  type Fixture,
} from '../daemon/harness.js';
import { send } from '../daemon/messages.js';
import { checkJournal, fill, Ledger, mountTmpfs, remount, tornSegments, unmount, type JournalCheck } from './disk.js';

const KIB = 1024;
/** Each event carries this, so that every record needs at least one new 4 KiB page of the tmpfs. */
const PAD = 'x'.repeat(6 * KIB);

/**
 * A fixture whose state directory (or, with `journalOnly`, its journal directory) is a tmpfs of `sizeBytes`;
 * daemons killed, tmpfs unmounted after the test.
 */
async function diskFixture(
  t: TestContext,
  sizeBytes: number,
  options: { journalOnly?: boolean } = {},
): Promise<{ f: Fixture; start: () => Promise<DaemonProcess> }> {
  const f = await startFixture({ subscriptions: [] });
  const mountPoint = options.journalOnly ? join(f.stateDir, 'journal') : f.stateDir;
  const daemons: DaemonProcess[] = [];
  t.after(async () => {
    for (const d of daemons) await d.kill9();
    unmount(mountPoint);
    await f.close();
  });
  mkdirSync(f.stateDir, { recursive: true, mode: 0o700 });
  mountTmpfs(mountPoint, sizeBytes);
  return {
    f,
    start: async () => {
      const d = await startDaemon(f);
      daemons.push(d);
      return d;
    },
  };
}

/** Sends a signed notification with id `id` (the same event on every retry) and records the answer. */
function sender(f: Fixture, ledger: Ledger, prefix: string): { next: () => string; send: (id: string) => Promise<number> } {
  let n = 0;
  return {
    next: () => `${prefix}-${n++}-${randomUUID()}`,
    send: async (id) => ledger.record(id, await send(f, { messageId: id, event: { broadcaster_user_id: BROADCASTER, message: id, pad: PAD } })),
  };
}

/** The journal holds exactly the acknowledged ids, once each, seq 1..n. */
function assertJournalExact(check: JournalCheck, ledger: Ledger, when: string): void {
  assert.equal(check.duplicates, 0, `${when}: no id journaled twice`);
  assert.deepEqual(check.lost, [], `${when}: every acknowledged id is journaled`);
  assert.deepEqual(check.unacknowledged, [], `${when}: nothing refused is journaled`);
  assert.ok(check.dense, `${when}: seq is 1..n without a gap`);
  assert.equal(check.records.length, ledger.ackedIds.size, `${when}: one record per acknowledged id`);
}

/** While the journal fails: /readyz 503, /status journal not writable at `head`, /healthz 200, process up. */
async function assertFailingShown(f: Fixture, daemon: DaemonProcess, head: number): Promise<void> {
  const ready = await httpGet(f, '/readyz');
  assert.equal(ready.status, 503, '/readyz is 503 while the journal cannot write');
  assert.deepEqual(JSON.parse(ready.body), { ready: false, journal_writable: false, closing: false });
  const doc = await status(f);
  assert.equal(doc.journal.writable, false, '/status journal.writable');
  assert.equal(doc.journal.head, head, '/status journal.head');
  assert.equal((await httpGet(f, '/healthz')).status, 200);
  assert.ok(daemon.running, 'the daemon is still running');
}

/** After recovery: /readyz 200 and /status journal writable at `head`. */
async function assertRecoveredShown(f: Fixture, head: number): Promise<void> {
  const ready = await httpGet(f, '/readyz');
  assert.equal(ready.status, 200, '/readyz is 200 again');
  assert.deepEqual(JSON.parse(ready.body), { ready: true, journal_writable: true, closing: false });
  const doc = await status(f);
  assert.equal(doc.journal.writable, true);
  assert.equal(doc.journal.head, head);
}

/** An error log line of the journal naming `errno` (ENOSPC, EROFS). */
function assertLoggedErrno(daemon: DaemonProcess, errno: string): void {
  const lines = daemon.logs().filter((l) => l.level === 'error' && JSON.stringify(l).includes(errno));
  assert.ok(lines.length > 0, `an error log line names ${errno}:\n${daemon.stderr}`);
}

function figures(ledger: Ledger, check: JournalCheck): string {
  return `tried ${ledger.tried}, acknowledged ${ledger.acknowledged} (${ledger.ackedIds.size} ids), refused with 503 ${ledger.refused}, journaled ${check.records.length}, duplicates ${check.duplicates}, lost ${check.lost.length}`;
}

test('disk full: new notifications get 503 and are not journaled, /readyz and /status say so; once space returns the retries are journaled once each', async (t) => {
  const { f, start } = await diskFixture(t, 1024 * KIB);
  const daemon = await start();
  const ledger = new Ledger();
  const s = sender(f, ledger, 'full');

  for (let i = 0; i < 5; i++) assert.equal(await s.send(s.next()), 204);
  const beforeFull = readJournal(f.stateDir);
  assert.equal(beforeFull.length, 5);

  // Leave 64 KiB, then 6 KiB notifications one by one until the first refusal.
  const filler = join(f.stateDir, 'filler.bin');
  fill(filler, 64 * KIB);
  const refused: string[] = [];
  for (let i = 0; i < 40 && refused.length === 0; i++) {
    const id = s.next();
    const code = await s.send(id);
    if (code === 503) refused.push(id);
    else assert.equal(code, 204, `notification ${i} while filling`);
  }
  assert.equal(refused.length, 1, 'a 503 came before 40 notifications of 6 KiB filled 64 KiB');
  assert.ok(ledger.ackedIds.size >= 8, `some notifications fitted in the last 64 KiB (${ledger.ackedIds.size - 5})`);

  // Full to the last page: a burst, single notifications and Twitch's retries of the refused are all refused.
  fill(filler);
  const acknowledgedAtFull = ledger.acknowledged;
  const burst = Array.from({ length: 16 }, () => s.next());
  assert.deepEqual(await Promise.all(burst.map((id) => s.send(id))), burst.map(() => 503));
  refused.push(...burst);
  for (let i = 0; i < 4; i++) {
    const id = s.next();
    assert.equal(await s.send(id), 503);
    refused.push(id);
  }
  for (const id of refused.slice(0, 3)) assert.equal(await s.send(id), 503, 'a retry while full');
  assert.equal(ledger.acknowledged, acknowledgedAtFull, 'no 2xx after the first refusal while the disk is full');
  assert.deepEqual(ledger.other, []);

  const whileFull = checkJournal(readJournal(f.stateDir), ledger.ackedIds);
  assertJournalExact(whileFull, ledger, 'while full');
  assert.deepEqual(tornSegments(f.stateDir), [], 'no bytes of a refused append are left in a segment');
  assert.deepEqual(whileFull.records.slice(0, 5), beforeFull, 'records from before are untouched');
  await assertFailingShown(f, daemon, ledger.ackedIds.size);
  const metrics = (await httpGet(f, '/metrics')).body;
  assert.equal(metric(metrics, 'eventsubd_webhook_requests_total', '{outcome="journal_failed"}'), ledger.refused);
  assertLoggedErrno(daemon, 'ENOSPC');
  t.diagnostic(`while full: ${figures(ledger, whileFull)}`);

  // Space returns. Twitch retries every refused message, and may resend acknowledged ones; new ones arrive.
  rmSync(filler);
  const acked = [...ledger.ackedIds];
  const wave = [...refused, ...acked.slice(0, 5), ...Array.from({ length: 10 }, () => s.next())];
  const answers = await Promise.all(wave.map((id) => s.send(id)));
  assert.deepEqual(answers, wave.map(() => 204), 'every retry and every new notification is acknowledged');
  assert.deepEqual(ledger.other, []);

  const after = checkJournal(readJournal(f.stateDir), ledger.ackedIds);
  assertJournalExact(after, ledger, 'after recovery');
  for (const id of refused) assert.ok(after.records.some((r) => r.message_id === id), `refused ${id} is journaled after its retry`);
  assert.deepEqual(after.records.slice(0, whileFull.records.length), whileFull.records, 'records from before are untouched');
  await assertRecoveredShown(f, ledger.ackedIds.size);
  assert.ok(daemon.logs().some((l) => l.msg === 'Journal appends succeed again'));
  t.diagnostic(`after space returned: ${figures(ledger, after)}`);
  assert.equal(await daemon.stop('SIGTERM'), 0);
});

test('read-only disk: new notifications get 503 and are not journaled, a retry of a stored one stays 2xx; after remount rw the retries are journaled once each', async (t) => {
  // The journal's own file system goes read-only: the daemon holds its instance lock (daemon.pid) open for
  // writing in the state directory, which `mount -o remount,ro` would refuse (the kernel's own remount after
  // an I/O error does not ask).
  const { f, start } = await diskFixture(t, 4 * 1024 * KIB, { journalOnly: true });
  const journalDir = join(f.stateDir, 'journal');
  const ledger = new Ledger();
  const s = sender(f, ledger, 'ro');
  const first = await start();
  for (let i = 0; i < 5; i++) assert.equal(await s.send(s.next()), 204);
  assert.equal(await first.stop('SIGTERM'), 0);
  const beforeRo = readJournal(f.stateDir);
  assert.equal(beforeRo.length, 5);

  const daemon = await start();
  try {
    remount(journalDir, 'ro');
  } catch (err) {
    throw new Error(`The daemon, before its first append, keeps a journal file open for writing: ${(err as Error).message}`, { cause: err });
  }
  const acknowledgedAtRo = ledger.acknowledged;
  const refused = Array.from({ length: 12 }, () => s.next());
  assert.deepEqual(await Promise.all(refused.map((id) => s.send(id))), refused.map(() => 503));
  for (let i = 0; i < 3; i++) {
    const id = s.next();
    assert.equal(await s.send(id), 503);
    refused.push(id);
  }
  assert.equal(await s.send(refused[0]!), 503, 'a retry while read-only');
  assert.equal(ledger.acknowledged, acknowledgedAtRo, 'no 2xx for a new message while read-only');
  // Already on disk (dedup is rebuilt from the journal at start): acknowledging Twitch's retry is right.
  assert.equal(await s.send(beforeRo[0]!.message_id), 204, 'a retry of a stored message');
  assert.deepEqual(ledger.other, []);

  const whileRo = checkJournal(readJournal(f.stateDir), ledger.ackedIds);
  assertJournalExact(whileRo, ledger, 'while read-only');
  assert.deepEqual(tornSegments(f.stateDir), []);
  assert.deepEqual(whileRo.records, beforeRo);
  await assertFailingShown(f, daemon, 5);
  assertLoggedErrno(daemon, 'EROFS');
  t.diagnostic(`while read-only: ${figures(ledger, whileRo)}`);

  remount(journalDir, 'rw');
  const wave = [...refused, ...Array.from({ length: 10 }, () => s.next())];
  assert.deepEqual(await Promise.all(wave.map((id) => s.send(id))), wave.map(() => 204));
  assert.deepEqual(ledger.other, []);
  const after = checkJournal(readJournal(f.stateDir), ledger.ackedIds);
  assertJournalExact(after, ledger, 'after remount rw');
  assert.deepEqual(after.records.slice(0, 5), beforeRo);
  await assertRecoveredShown(f, ledger.ackedIds.size);
  t.diagnostic(`after remount rw: ${figures(ledger, after)}`);
  assert.equal(await daemon.stop('SIGTERM'), 0);
});

test('disk full: /readyz turns 200 again once space returns, without waiting for a delivery (a load balancer asks /readyz before Twitch gets through)', async (t) => {
  const { f, start } = await diskFixture(t, 1024 * KIB);
  const daemon = await start();
  const ledger = new Ledger();
  const s = sender(f, ledger, 'ready');
  assert.equal(await s.send(s.next()), 204);
  const filler = join(f.stateDir, 'filler.bin');
  fill(filler);
  assert.equal(await s.send(s.next()), 503);
  await assertFailingShown(f, daemon, 1);

  rmSync(filler);
  const started = Date.now();
  try {
    await waitFor('/readyz 200 with no delivery', async () => (await httpGet(f, '/readyz')).status === 200, { timeoutMs: 6_000, intervalMs: 100 });
  } catch {
    assert.fail(
      `/readyz still 503 ${Date.now() - started} ms after space returned, with no delivery in between: the journal's probe ` +
        '(every 2 s while appends fail) should have found the disk writable; a load balancer that follows /readyz would keep Twitch away',
    );
  }
  assert.equal(await s.send(s.next()), 204);
});

for (const journalBefore of [false, true]) {
  test(`disk full at start (${journalBefore ? 'a journal from an earlier run' : 'a new state directory'}): the daemon starts unready, answers 503, and recovers by itself once space returns`, async (t) => {
    const { f, start } = await diskFixture(t, 1024 * KIB);
    const ledger = new Ledger();
    const s = sender(f, ledger, 'start-full');
    if (journalBefore) {
      const first = await start();
      assert.equal(await s.send(s.next()), 204);
      assert.equal(await first.stop('SIGTERM'), 0);
    }
    const filler = join(f.stateDir, 'filler.bin');
    fill(filler);
    const daemon = await start();
    const head = journalBefore ? 1 : 0;
    const refused = s.next();
    assert.equal(await s.send(refused), 503, 'a notification while the disk is full');
    assert.deepEqual(ledger.other, []);
    await assertFailingShown(f, daemon, head);

    rmSync(filler);
    await waitFor('/readyz 200 with no delivery', async () => (await httpGet(f, '/readyz')).status === 200, { timeoutMs: 6_000, intervalMs: 100 });
    assert.equal(await s.send(refused), 204, 'Twitch\'s retry of the refused notification');
    const after = checkJournal(readJournal(f.stateDir), ledger.ackedIds);
    assertJournalExact(after, ledger, 'after space returned');
    assert.equal(await daemon.stop('SIGTERM'), 0);
  });
}
