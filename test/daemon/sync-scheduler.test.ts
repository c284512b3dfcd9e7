/**
 * The daemon's sync scheduler in-process (issue #11.3): an in-memory Twitch (test/subscriptions/fake-api.ts),
 * a fake clock, and the reports it hands to the daemon. Runs never overlap; requests during a run make one
 * more run; transient failures are retried with capped backoff; a recoverable revocation asks for a run later.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SyncScheduler, type SyncReport } from '../../src/daemon/sync-scheduler.js';
import { AppError } from '../../src/lib/errors.js';
import type { DeliveryTarget, Ownership } from '../../src/twitch/subscription.js';
import type { Subscription } from '../../src/twitch/wire.js';
import { ConfigError } from '../../src/lib/errors.js';
import { captureLogs } from '../auth/fakes.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { CALLBACK, CONDUIT, FakeEventSubApi, OLD_CONDUIT, SECRET, sub } from '../subscriptions/fake-api.js';

interface Where {
  target: () => DeliveryTarget | undefined;
  ownership: () => Ownership;
}
const WEBHOOK: Where = { target: () => ({ method: 'webhook', callback: CALLBACK, secret: SECRET }), ownership: () => ({ callbackUrl: CALLBACK, conduitIds: [] }) };

function scheduler(t: TestContext, api: FakeEventSubApi, clock = new FakeClock(), onReport?: (r: SyncReport, s: SyncScheduler) => void, where: Where = WEBHOOK) {
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-scheduler-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'subscriptions.yaml');
  writeFileSync(
    file,
    'subscriptions:\n' +
      '  - { type: stream.online, version: "1", condition: { broadcaster_user_id: "12345" } }\n' +
      '  - { type: stream.offline, version: "1", condition: { broadcaster_user_id: "12345" } }\n',
  );
  const reports: SyncReport[] = [];
  const listings: Array<readonly Subscription[]> = [];
  const logs = captureLogs();
  const s = new SyncScheduler({
    api,
    file,
    ...where,
    prune: true,
    clock,
    logger: logs.logger,
    random: () => 0,
    onReport: (r) => {
      reports.push(r);
      onReport?.(r, s);
    },
    onSubscriptions: (subs) => listings.push(subs),
  });
  t.after(() => s.close());
  return { s, clock, reports, listings, logs, file };
}

test('SyncScheduler runs a sync and reports what it left: counts, the subscriptions and their cost after the changes', async (t) => {
  const stray = sub({ id: 'stray', type: 'channel.update', version: '2' });
  const api = new FakeEventSubApi([stray]);
  const { s, reports, listings } = scheduler(t, api);
  await s.request('start');
  assert.equal(reports.length, 1);
  const r = reports[0]!;
  assert.equal(r.result, 'ok');
  assert.deepEqual(r.counts, { create: 2, recreate: 0, migrate: 0, delete: 1, keep: 0, blocked: 0, unmanaged: 0 });
  assert.deepEqual(r.applied, { created: 2, adopted: 0, recreated: 0, deleted: 1, migrated: 0, failed: 0 });
  assert.equal(r.cost?.current, 2, 'total cost after the sync: the stray one deleted, two created');
  assert.deepEqual(listings.at(-1)!.map((x) => x.type).sort(), ['stream.offline', 'stream.online']);
  assert.equal(s.last, r);
});

test('SyncScheduler never runs two syncs at once: requests during a run make exactly one more run', async (t) => {
  const api = new FakeEventSubApi([], { hold: true });
  const { s, reports } = scheduler(t, api);
  const first = s.request('start');
  while (api.inFlight === 0) await flushMicrotasks(1);
  const during = [s.request('cron'), s.request('reload'), s.request('revocation')];
  api.release();
  while (reports.length < 1) await flushMicrotasks(1);
  api.release();
  await Promise.all([first, ...during]);
  assert.deepEqual(reports.map((r) => r.reason), ['start', 'cron'], 'three requests during the first run: one more run');
});

test('SyncScheduler retries a sync that failed for a transient reason with growing backoff, until it succeeds', async (t) => {
  const api = new FakeEventSubApi();
  let outage = 3;
  const list = api.list.bind(api);
  api.list = async (...args) => {
    if (outage-- > 0) throw new AppError('TWITCH_UNREACHABLE', 'connect ECONNREFUSED');
    return list(...args);
  };
  const { s, clock, reports } = scheduler(t, api);
  const running = s.request('start');
  for (let i = 0; i < 3; i++) {
    while (clock.pending === 0) await flushMicrotasks(1);
    await clock.advance(clock.nextWake()! - clock.now());
  }
  await running;
  assert.deepEqual(reports.map((r) => r.result), ['error', 'error', 'error', 'ok']);
  assert.deepEqual(reports.map((r) => r.reason), ['start', 'retry', 'retry', 'retry']);
  assert.deepEqual(clock.sleeps, [500, 1_000, 2_000], 'equal-jitter backoff from 1 s (random 0: half of each cap)');
});

test('SyncScheduler does not retry a configuration error by itself: it waits for the next request', async (t) => {
  const api = new FakeEventSubApi();
  const { s, clock, reports, file } = scheduler(t, api);
  writeFileSync(file, 'subscriptions: [ { type: 1 } ]\n');
  await s.request('reload');
  assert.equal(reports.at(-1)?.result, 'error');
  assert.equal(reports.at(-1)?.error?.code, 'CONFIG_INVALID');
  assert.equal(clock.pending, 0, 'no retry scheduled');
  assert.equal(api.lists, 0, 'nothing asked of Twitch with a broken file');
});

test('SyncScheduler.requestAfter() runs a sync once the delay has passed on the clock, and close() cancels it', async (t) => {
  const api = new FakeEventSubApi();
  const { s, clock, reports } = scheduler(t, api);
  s.requestAfter(5_000, 'revocation');
  await clock.advance(4_999);
  assert.equal(reports.length, 0);
  await clock.advance(1);
  while (reports.length === 0) await flushMicrotasks(1);
  assert.equal(reports[0]!.reason, 'revocation');
  s.requestAfter(5_000, 'revocation');
  await s.close();
  await clock.advance(5_000);
  assert.equal(reports.length, 1, 'no run after close()');
  assert.equal(api.lists, 1);
});

test('SyncScheduler does not lose a request made as a run ends (a SIGHUP right as a sync finishes)', async (t) => {
  // The request comes a few microtasks after the report, whichever step of the run's end that lands in.
  for (let hops = 0; hops <= 12; hops++) {
    const api = new FakeEventSubApi();
    let late: Promise<void> | undefined;
    const { s, reports } = scheduler(t, api, new FakeClock(), (r, self) => {
      if (r.reason !== 'start') return;
      let p: Promise<unknown> = Promise.resolve();
      for (let i = 0; i < hops; i++) p = p.then(() => undefined);
      void p.then(() => (late = self.request('reload')));
    });
    await s.request('start');
    while (!late) await flushMicrotasks(1);
    await late;
    assert.deepEqual(reports.map((r) => r.reason), ['start', 'reload'], `a request ${hops} microtasks after the report`);
  }
});

test('SyncScheduler skips a sync while the conduit is not ready (target() undefined): an info log, no report, no retry, nothing asked of Twitch', async (t) => {
  const api = new FakeEventSubApi();
  let conduit: string | undefined = undefined;
  const where: Where = {
    target: () => (conduit === undefined ? undefined : { method: 'conduit', conduit_id: conduit }),
    ownership: () => ({ conduitIds: conduit === undefined ? [] : [conduit] }),
  };
  const { s, clock, reports, logs } = scheduler(t, api, new FakeClock(), undefined, where);
  await s.request('start');
  assert.equal(reports.length, 0, 'no report');
  assert.equal(s.last, undefined);
  assert.equal(api.lists, 0);
  assert.equal(clock.pending, 0, 'no retry scheduled: the daemon asks again once the conduit exists');
  const skipped = logs.records().find((r) => r.msg === 'Sync skipped: the conduit is not ready yet');
  assert.equal(skipped?.level, 'info');

  conduit = CONDUIT;
  await s.request('conduit ready');
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.result, 'ok');
  assert.deepEqual(api.bodies.map((b) => b.transport), [
    { method: 'conduit', conduit_id: CONDUIT },
    { method: 'conduit', conduit_id: CONDUIT },
  ]);
});

test("SyncScheduler in conduit mode migrates the old webhooks and prunes a replaced conduit's leftovers, asking where and what it owns at each run", async (t) => {
  const hook = sub({ id: 'hook', condition: { broadcaster_user_id: '12345' } });
  const leftover = sub({ id: 'leftover', type: 'channel.update', version: '2', transport: { method: 'conduit', conduit_id: OLD_CONDUIT } });
  const api = new FakeEventSubApi([hook, leftover]);
  const where: Where = {
    target: () => ({ method: 'conduit', conduit_id: CONDUIT }),
    ownership: () => ({ callbackUrl: CALLBACK, conduitIds: [CONDUIT, OLD_CONDUIT] }),
  };
  const { s, reports } = scheduler(t, api, new FakeClock(), undefined, where);
  await s.request('start');
  const r = reports[0]!;
  assert.equal(r.result, 'ok');
  assert.deepEqual(r.counts, { create: 2, recreate: 0, migrate: 1, delete: 1, keep: 0, blocked: 0, unmanaged: 0 });
  assert.deepEqual(r.applied, { created: 2, adopted: 0, recreated: 0, deleted: 1, migrated: 1, failed: 0 });
  assert.deepEqual(api.subs.map((x) => x.transport), [
    { method: 'conduit', conduit_id: CONDUIT },
    { method: 'conduit', conduit_id: CONDUIT },
  ]);
});

test('SyncScheduler reports a target() that throws (webhook settings missing) as a configuration error, not retried', async (t) => {
  const api = new FakeEventSubApi();
  const where: Where = {
    target: () => {
      throw new ConfigError('EVENTSUB_CALLBACK_URL is required for webhook subscriptions', { setting: 'EVENTSUB_CALLBACK_URL' });
    },
    ownership: () => ({ conduitIds: [] }),
  };
  const { s, clock, reports } = scheduler(t, api, new FakeClock(), undefined, where);
  await s.request('start');
  assert.equal(reports.at(-1)?.result, 'error');
  assert.equal(reports.at(-1)?.error?.code, 'CONFIG_INVALID');
  assert.equal(clock.pending, 0);
  assert.equal(api.lists, 0);
});
