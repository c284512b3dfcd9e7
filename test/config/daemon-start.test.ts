/**
 * Issue #13, in-process: the daemon refuses at start a subscriptions file that the catalogue refuses and an
 * EVENTSUBD_LISTEN it cannot bind (both exit 78), and on reload keeps what it has when the file went bad.
 * The exit codes through the CLI are in test/reliability/bad-settings.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { AppError } from '../../src/lib/errors.js';
import { startInProcessDaemon } from '../daemon/in-process.js';

const DECLARED = [{ type: 'stream.online', version: '1', condition: { broadcaster_user_id: '12345' } }];
const isSync = (s: Record<string, string>): boolean => /sync (ok|partial|error)/.test(s.STATUS ?? '');

test('daemon start refuses a subscriptions file with an unknown type, naming the nearest type (CONFIG_INVALID, exit 78)', async (t) => {
  const declared = [{ type: 'channel.folow', version: '2', condition: { broadcaster_user_id: '1', moderator_user_id: '1' } }];
  await assert.rejects(startInProcessDaemon(t, {}, { subscriptions: declared }), (err: AppError) => {
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.exitCode, 78);
    assert.match(err.message, /-subscriptions\.json:1: subscriptions\[0\]\.type: "channel\.folow" is not an EventSub subscription type: did you mean "channel\.follow"\?$/);
    return true;
  });
});

test('daemon start on an EVENTSUBD_LISTEN in use fails with LISTEN_FAILED naming the setting (exit 78)', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const port = (holder.address() as AddressInfo).port;
  await assert.rejects(startInProcessDaemon(t, { EVENTSUBD_LISTEN: `127.0.0.1:${port}` }), (err: AppError) => {
    assert.equal(err.code, 'LISTEN_FAILED');
    assert.equal(err.exitCode, 78);
    assert.match(err.message, new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${port} \\(EVENTSUBD_LISTEN\\): the address is already in use \\(EADDRINUSE\\)`));
    return true;
  });
});

test('daemon reload of a file that went bad (a version Twitch does not have) reports it and keeps the subscriptions', async (t) => {
  const d = await startInProcessDaemon(t, {}, { subscriptions: DECLARED });
  await d.notifier.next(isSync);
  const before = d.emulator.subscriptions().map((s) => [s.id, s.type]);
  assert.equal(before.length, 1);
  writeFileSync(`${d.stateDir}-subscriptions.json`, JSON.stringify({ subscriptions: [{ ...DECLARED[0], version: '2' }] }));
  const reloaded = d.notifier.next(isSync);
  await d.daemon.reload();
  assert.match((await reloaded).STATUS!, /sync error/);
  const report = d.logs.records().find((r) => r.msg === 'Sync finished' && r.reason === 'reload');
  assert.equal((report?.error as { code?: string } | undefined)?.code, 'CONFIG_INVALID');
  assert.match(String((report?.error as { message?: string }).message), /subscriptions\[0\]\.version: stream\.online has no version "2": use "1"$/);
  assert.deepEqual(d.emulator.subscriptions().map((s) => [s.id, s.type]), before, 'nothing was pruned');
});
