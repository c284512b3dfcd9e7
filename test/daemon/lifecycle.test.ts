/**
 * The daemon's life as a process, end to end against the emulator: dedup across a restart, revocation
 * handling by status, SIGHUP re-sync, SIGTERM that leaves the subscriptions in place, and the systemd
 * notifications on a NOTIFY_SOCKET bound by the test.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DEFAULT_SUBSCRIPTIONS,
  deletes,
  httpGet,
  readJournal,
  status,
  useFixture,
  waitEnabled,
  waitFor,
  type Fixture,
} from './harness.js';
import { send } from './messages.js';

const posts = (f: Fixture): number =>
  f.emulator.stats.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/eventsub/subscriptions')).length;

test('daemon dedup survives a restart: a message id seen before the restart is 204 and not journaled again', async (t) => {
  const { f, start } = await useFixture(t);
  const first = await start();
  await waitEnabled(f, 2);
  const x = await send(f, { event: { broadcaster_user_id: '12345', n: 'x' } });
  assert.equal(x.status, 204);
  const e = await send(f, { event: { id: 'event-e', broadcaster_user_id: '12345' } });
  assert.equal(e.status, 204);
  assert.equal(await first.stop('SIGTERM'), 0);
  const postsBefore = posts(f);

  const second = await start();
  const again = await send(f, { messageId: x.messageId, event: { broadcaster_user_id: '12345', n: 'x' } });
  assert.equal(again.status, 204);
  const againE = await send(f, { messageId: e.messageId, event: { id: 'event-e', broadcaster_user_id: '12345' } });
  assert.equal(againE.status, 204);
  // Only message ids are remembered: the same event under a new message id is a new message.
  const sameEvent = await send(f, { event: { id: 'event-e', broadcaster_user_id: '12345' } });
  assert.equal(sameEvent.status, 204);
  assert.deepEqual(
    readJournal(f.stateDir).map((r) => [r.seq, r.message_id]),
    [
      [1, x.messageId],
      [2, e.messageId],
      [3, sameEvent.messageId],
    ],
  );
  // The restart reused the cached token and found the subscriptions in place: nothing minted or created again.
  await waitFor('the second daemon\'s first sync', async () => (await status(f)).sync.result === 'ok');
  assert.equal(f.emulator.stats.mints, 1);
  assert.equal(posts(f), postsBefore);
  assert.equal((await status(f)).sync.counts?.keep, 2);
  assert.equal(await second.stop('SIGINT'), 0, 'SIGINT stops as gracefully as SIGTERM');
  assert.ok(second.logs().some((l) => l.msg === 'Stopped; subscriptions are left in place'));
});

test('daemon revocations: notification_failures_exceeded is journaled and recreated by a sync soon after; authorization_revoked is journaled and left alone', async (t) => {
  const { f, start } = await useFixture(t);
  const d = await start();
  const subs = await waitEnabled(f, 2);
  const failed = subs.find((s) => s.type === 'stream.online')!;
  const revoked = subs.find((s) => s.type === 'stream.offline')!;
  // Twitch changes the status, then sends the revocation.
  f.emulator.setSubscriptionStatus(failed.id, 'notification_failures_exceeded');
  f.emulator.setSubscriptionStatus(revoked.id, 'authorization_revoked');
  const postsBefore = posts(f);
  const r1 = await send(f, { messageType: 'revocation', subscription: { ...failed, status: 'notification_failures_exceeded' } });
  const r2 = await send(f, { messageType: 'revocation', subscription: { ...revoked, status: 'authorization_revoked' } });
  assert.equal(r1.status, 204, `revocation 1: ${r1.status} ${r1.body}`);
  assert.equal(r2.status, 204, `revocation 2: ${r2.status} ${r2.body}`);
  assert.deepEqual(
    readJournal(f.stateDir).map((r) => [r.message_type, r.subscription.id, r.subscription.status]),
    [
      ['revocation', failed.id, 'notification_failures_exceeded'],
      ['revocation', revoked.id, 'authorization_revoked'],
    ],
  );

  const started = Date.now();
  const recreated = await waitFor(
    'stream.online to be recreated and enabled',
    () => {
      const online = f.emulator.subscriptions().filter((s) => s.type === 'stream.online');
      return online.length === 1 && online[0]!.id !== failed.id && online[0]!.status === 'enabled' ? online[0]! : false;
    },
    { timeoutMs: 9_000, intervalMs: 100 },
  );
  assert.equal(recreated.condition.broadcaster_user_id, '12345');
  assert.ok(Date.now() - started < 9_000);
  const doc = await status(f);
  assert.equal(doc.sync.reason, 'revocation');
  assert.equal(doc.sync.counts?.recreate, 1);
  assert.deepEqual(doc.sync.blocked, [{ id: revoked.id, type: 'stream.offline', status: 'authorization_revoked' }]);
  // The authorization_revoked one is still there, untouched, and nothing else was created.
  const offline = f.emulator.subscriptions().filter((s) => s.type === 'stream.offline');
  assert.deepEqual(offline.map((s) => [s.id, s.status]), [[revoked.id, 'authorization_revoked']]);
  assert.equal(posts(f), postsBefore + 1);
  const logs = d.logs();
  assert.ok(logs.some((l) => l.msg === 'Subscription revoked; the next sync recreates it' && l.id === failed.id));
  assert.ok(logs.some((l) => l.msg === 'Subscription revoked and will not be recreated' && l.id === revoked.id));
  assert.equal(await d.stop('SIGTERM'), 0);
});

test('daemon SIGHUP re-reads the subscriptions file and syncs (a broken file changes nothing); SIGTERM exits 0 and deletes nothing', async (t) => {
  const { f, start } = await useFixture(t);
  const d = await start();
  await waitEnabled(f, 2);
  const added = { type: 'channel.update', version: '2', condition: { broadcaster_user_id: '12345' } };
  f.writeSubscriptions([...DEFAULT_SUBSCRIPTIONS, added]);
  d.child.kill('SIGHUP');
  const subs = await waitEnabled(f, 3);
  assert.deepEqual(subs.map((s) => s.type).sort(), ['channel.update', 'stream.offline', 'stream.online']);
  const doc = await waitFor('the reload sync to be reported', async () => {
    const s = await status(f);
    return s.sync.reason === 'reload' ? s : false;
  });
  assert.equal(doc.sync.result, 'ok');
  assert.equal(doc.sync.counts?.create, 1);
  assert.equal(doc.sync.counts?.keep, 2);
  assert.ok(d.running, 'SIGHUP does not stop the daemon');

  // A broken file is reported and changes nothing: above all, it does not prune what exists.
  writeFileSync(f.subscriptionsFile, '{ "subscriptions": [ { "type": ');
  d.child.kill('SIGHUP');
  const broken = await waitFor('the failed reload to be reported', async () => {
    const s = await status(f);
    return s.sync.result === 'error' ? s : false;
  });
  assert.equal(broken.sync.error?.code, 'CONFIG_INVALID');
  assert.equal(f.emulator.subscriptions().length, 3);
  assert.ok(d.running);

  const before = f.emulator.subscriptions().map((s) => [s.id, s.status]);
  assert.equal(await d.stop('SIGTERM'), 0);
  assert.deepEqual(f.emulator.subscriptions().map((s) => [s.id, s.status]), before);
  assert.equal(deletes(f.emulator), 0);
  assert.ok(d.logs().some((l) => l.msg === 'Stopped; subscriptions are left in place'));
  await assert.rejects(httpGet(f, '/healthz'), 'nothing listens after the exit');
});

interface DgramSocket {
  bind(path: string): void;
  close(): void;
  on(event: 'error', cb: (err: Error) => void): void;
}

test('daemon systemd notifications: READY=1 once ready, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM', async (t) => {
  const { f, start } = await useFixture(t);
  const dgram = createRequire(import.meta.url)('unix-dgram') as {
    createSocket(type: 'unix_dgram', onMessage: (buf: Buffer) => void): DgramSocket;
  };
  const messages: Array<{ at: number; fields: Record<string, string> }> = [];
  const path = join(f.stateDir, '..', 'notify.sock');
  const socket = dgram.createSocket('unix_dgram', (buf) => {
    const fields = Object.fromEntries(
      buf
        .toString('utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    messages.push({ at: Date.now(), fields });
  });
  socket.on('error', () => {});
  socket.bind(path);
  t.after(() => socket.close());

  const d = await start({ NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000' });
  const ready = await waitFor('READY=1', () => messages.find((m) => m.fields.READY === '1'));
  assert.equal(ready.fields.MAINPID, String(d.pid));
  assert.match(ready.fields.STATUS ?? '', /journal seq 0/);
  // Receiver and journal are up when READY=1 goes out.
  assert.equal((await httpGet(f, '/readyz')).status, 200);

  const from = Date.now();
  await waitFor('6 watchdog pings', () => messages.filter((m) => m.fields.WATCHDOG === '1' && m.at >= from).length >= 6, {
    timeoutMs: 3_000,
  });
  const elapsed = Date.now() - from;
  // Every 100 ms: 6 pings take about 500-600 ms, not the 1 s of WATCHDOG_USEC itself.
  assert.ok(elapsed < 1_000, `6 watchdog pings took ${elapsed} ms`);
  await waitFor('a STATUS= with the sync result', () => messages.find((m) => /sync ok/.test(m.fields.STATUS ?? '')));
  assert.equal(messages.some((m) => m.fields.STOPPING === '1'), false);

  assert.equal(await d.stop('SIGTERM'), 0);
  const stopping = messages.find((m) => m.fields.STOPPING === '1');
  assert.ok(stopping, 'STOPPING=1 was sent');
  const pingsAfterStop = messages.filter((m) => m.fields.WATCHDOG === '1' && m.at > stopping.at + 50);
  assert.equal(pingsAfterStop.length, 0, 'no watchdog ping after STOPPING=1');
});
