/**
 * The daemon's logic in-process (issue #11.3): the real journal, receiver and Twitch side against the
 * emulator, an injected clock and a recording notifier. Signals, exit codes and kill -9 stay with the child
 * process tests (lifecycle.test.ts, shutdown.test.ts, crash.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getTasks } from 'node-cron';
import { request } from 'undici';
import { runCli } from '../../src/cli/run.js';
import { systemClock } from '../../src/lib/clock.js';
import { emulatorSettings } from '../helpers/cli.js';
import { revocationBody } from '../receiver/helpers.js';
import { startInProcessDaemon, type InProcessDaemon } from './in-process.js';
import { deferred } from '../helpers/wait.js';

const DECLARED = [
  { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '12345' } },
  { type: 'stream.offline', version: '1', condition: { broadcaster_user_id: '12345' } },
];

const isSync = (s: Record<string, string>): boolean => /sync (ok|partial|error)/.test(s.STATUS ?? '');

async function getJson(d: InProcessDaemon, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(d.daemon.url + path, { dispatcher: d.agent });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

test('Daemon in-process: READY=1 with MAINPID, STATUS after its first sync, /readyz and /status, STOPPING=1 on close', async (t) => {
  const d = await startInProcessDaemon(t, {}, { subscriptions: DECLARED });
  assert.equal(d.notifier.sent[0]?.READY, '1');
  assert.equal(d.notifier.sent[0]?.MAINPID, String(process.pid));
  const status = await d.notifier.next(isSync);
  assert.equal(status.STATUS, 'token ok; sync ok (0 kept, 2 created, 0 recreated, 0 deleted, 0 blocked); journal seq 0');
  const ready = await getJson(d, '/readyz');
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.body, { ready: true, journal_writable: true, closing: false });
  const doc = await getJson(d, '/status');
  assert.equal((doc.body.token as { state: string }).state, 'ok');
  assert.equal((doc.body.sync as { result: string; reason: string }).result, 'ok');
  assert.equal((doc.body.sync as { cost: { current: number } }).cost.current, 2);
  await d.daemon.close();
  assert.deepEqual(d.notifier.sent.at(-1), { STOPPING: '1', STATUS: 'stopping' });
  assert.equal(d.notifier.closed, true);
});

test('Daemon in-process: reload() re-reads the file and syncs; a recoverable revocation syncs 5 s later on the clock', async (t) => {
  const d = await startInProcessDaemon(t, {}, { subscriptions: DECLARED });
  await d.notifier.next(isSync);
  const reloaded = d.notifier.next(isSync);
  await d.daemon.reload();
  assert.match((await reloaded).STATUS!, /sync ok \(2 kept, 0 created/);

  const sub = d.emulator.subscriptions()[0]!;
  d.emulator.setSubscriptionStatus(sub.id, 'notification_failures_exceeded');
  const body = JSON.parse(revocationBody('notification_failures_exceeded')) as { subscription: Record<string, unknown> };
  const revoked = { ...body.subscription, id: sub.id, type: sub.type, version: sub.version, condition: sub.condition };
  const afterRevocation = d.notifier.next(isSync);
  assert.equal(await d.deliver(JSON.stringify({ subscription: revoked }), { type: 'revocation' }), 204);
  assert.ok(d.logs.records().some((r) => r.msg === 'Subscription revoked; the next sync recreates it'));
  while (d.clock.pending === 0 || d.clock.nextWake()! > d.clock.now() + 5_000) await new Promise((r) => setImmediate(r));
  await d.clock.advance(5_000);
  assert.match((await afterRevocation).STATUS!, /sync ok \(1 kept, 0 created, 1 recreated/);
});

test('Daemon in-process: after `eventsubd token rotate` from the CLI, /status shows the new token at once', async (t) => {
  const d = await startInProcessDaemon(t);
  await d.notifier.next((st) => /^token ok/.test(st.STATUS ?? ''));
  const started = ((await getJson(d, '/status')).body.token as { fingerprint: string }).fingerprint;
  // The daemon's token changes (its STATUS= is sent again) once it has taken the CLI's token.
  const swapped = d.notifier.next((st) => /^token ok/.test(st.STATUS ?? ''));
  let out = '';
  const code = await runCli({
    argv: ['token', 'rotate', '--json'],
    env: { ...emulatorSettings(d.emulator), EVENTSUBD_STATE_DIR: d.stateDir },
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: () => true },
    clock: systemClock,
    readEnvFile: () => undefined,
    version: 'test',
    signal: new AbortController().signal,
    stopped: new Promise(() => {}),
    process: { pid: process.pid, onHangup: () => () => {} },
  });
  assert.equal(code, 0);
  await swapped;
  const rotated = JSON.parse(out) as { previous: string; current: string };
  assert.equal(rotated.previous, started);
  const token = (await getJson(d, '/status')).body.token as { state: string; fingerprint: string };
  assert.deepEqual([token.state, token.fingerprint], ['ok', rotated.current]);
  assert.ok(d.logs.records().some((r) => r.msg === 'Another process changed the shared token cache; taking its token'));
});

test('Daemon in-process: a stop that comes while the Twitch side is still starting stops what it started (no cron job left)', async (t) => {
  const held = deferred();
  const asked = deferred();
  const d = await startInProcessDaemon(t, {}, {
    subscriptions: DECLARED,
    dispatcher: async (agent) => {
      asked.resolve();
      await held.promise;
      return agent;
    },
  });
  await asked.promise;
  const before = new Set(getTasks().keys());
  const closed = d.daemon.close();
  held.resolve();
  await closed;
  await d.daemon.reload(); // resolves once the Twitch side's start has settled, whether or not close() waited for it
  const left = [...getTasks().values()].filter((task) => !before.has(task.id) || task.name === 'reconcile');
  assert.deepEqual(left.map((task) => task.name), [], 'the reconcile job is destroyed');
  assert.equal(d.logs.records().some((r) => r.msg === 'Stopped; subscriptions are left in place'), true);
});
