/**
 * Issue #11.1, state that tells the truth: `/metrics` is valid Prometheus text with types that match the
 * names, and the subscription gauges show what the last sync left, not the listing taken before it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { notificationBody } from '../receiver/helpers.js';
import { parsePrometheusText, sampleValue, type MetricFamily } from '../helpers/prom-text.js';
import { untilSleeping, untilTurn } from '../helpers/wait.js';
import { freePort } from './harness.js';
import { startInProcessDaemon, type InProcessDaemon } from './in-process.js';

const DECLARED = [
  { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '12345' } },
  { type: 'stream.offline', version: '1', condition: { broadcaster_user_id: '12345' } },
];

test('daemon /metrics passes a strict text-format parser, and after the first sync shows the subscriptions it created and their cost', async (t) => {
  const d = await startInProcessDaemon(t, {}, { subscriptions: DECLARED });
  const synced = await d.notifier.next((s) => /sync /.test(s.STATUS ?? '') && !/sync pending/.test(s.STATUS ?? ''));
  assert.match(synced.STATUS!, /sync ok \(0 kept, 2 created/);
  for (let i = 0; i < 3; i++) assert.equal(await d.deliver(notificationBody()), 204);
  const res = await request(`${d.daemon.url}/metrics`, { dispatcher: d.agent });
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const metrics = parsePrometheusText(await res.body.text());
  for (const name of ['eventsubd_webhook_requests_total', 'eventsubd_journal_appends_total', 'eventsubd_token_mints_total', 'eventsubd_syncs_total']) {
    assert.equal(metrics.get(name)?.type, 'counter', name);
  }
  assert.equal(metrics.get('eventsubd_journal_fsync_seconds')?.type, 'histogram');
  // As the sync left them: two created (Twitch answers a webhook create with verification pending), cost 1 each.
  assert.equal(sampleValue(metrics, 'eventsubd_subscriptions', { status: 'webhook_callback_verification_pending' }), 2);
  assert.equal(sampleValue(metrics, 'eventsubd_subscription_cost', { kind: 'total' }), 2);
  assert.equal(sampleValue(metrics, 'eventsubd_subscription_cost', { kind: 'max' }), 10_000);
  assert.equal(sampleValue(metrics, 'eventsubd_webhook_requests_total', { outcome: 'notification' }), 3);
  assert.equal(sampleValue(metrics, 'eventsubd_journal_appends_total'), 3);
  assert.equal(sampleValue(metrics, 'eventsubd_token_mints_total'), 1);
  assert.equal(sampleValue(metrics, 'eventsubd_token_state', { state: 'ok' }), 1);
  assert.equal(sampleValue(metrics, 'eventsubd_token_state', { state: 'missing' }), 0);
});

async function scrape(d: InProcessDaemon): Promise<Map<string, MetricFamily>> {
  const res = await request(`${d.daemon.url}/metrics`, { dispatcher: d.agent });
  return parsePrometheusText(await res.body.text());
}

/** Every sample of `eventsubd_subscriptions`, whatever its status: the subscriptions the last sync left. */
function subscriptionsGauge(metrics: Map<string, MetricFamily>): number {
  return (metrics.get('eventsubd_subscriptions')?.samples ?? []).reduce((n, s) => n + s.value, 0);
}

const online = (id: string): { type: string; version: string; condition: Record<string, string> } => ({
  type: 'stream.online',
  version: '1',
  condition: { broadcaster_user_id: id },
});

test('daemon /metrics: after each later sync (more declared, then fewer and pruned) the subscription and cost gauges show its result', async (t) => {
  const d = await startInProcessDaemon(t, {}, { subscriptions: DECLARED });
  const isSync = (s: Record<string, string>): boolean => /sync (ok|partial|error)/.test(s.STATUS ?? '');
  await d.notifier.next(isSync);
  assert.equal(subscriptionsGauge(await scrape(d)), 2);
  // The file the in-process daemon manages (in-process.ts): rewritten, then re-read on reload (as on SIGHUP).
  const file = join(d.stateDir, '..', `${basename(d.stateDir)}-subscriptions.json`);
  const resync = async (subscriptions: unknown[], expected: RegExp): Promise<Map<string, MetricFamily>> => {
    writeFileSync(file, JSON.stringify({ subscriptions }));
    const synced = d.notifier.next(isSync);
    await d.daemon.reload();
    assert.match((await synced).STATUS!, expected);
    return scrape(d);
  };
  const more = await resync([...DECLARED, online('777')], /sync ok \(2 kept, 1 created/);
  assert.equal(subscriptionsGauge(more), 3);
  assert.equal(sampleValue(more, 'eventsubd_subscription_cost', { kind: 'total' }), 3);
  const fewer = await resync([online('777')], /sync ok \(1 kept, 0 created, 0 recreated, 2 deleted/);
  assert.equal(subscriptionsGauge(fewer), 1, 'no status label keeps the count of an earlier sync');
  assert.equal(sampleValue(fewer, 'eventsubd_subscription_cost', { kind: 'total' }), 1);
  assert.equal(d.emulator.subscriptions().length, 1);
});

test('daemon /metrics: eventsubd_token_state is refused when Twitch refuses the client secret (no retry fixes it)', async (t) => {
  const d = await startInProcessDaemon(t, { TWITCH_CLIENT_SECRET: 'not-the-client-secret-0123' });
  // The token manager retries on the clock after the refused mint: by then the state is settled.
  await untilSleeping(d.clock, () => d.logs.records().some((r) => r.msg === 'No app token yet; retrying in the background'), 'the refused mint');
  const metrics = await scrape(d);
  assert.equal(sampleValue(metrics, 'eventsubd_token_state', { state: 'refused' }), 1);
  assert.equal(sampleValue(metrics, 'eventsubd_token_state', { state: 'missing' }), 0);
  assert.equal(sampleValue(metrics, 'eventsubd_token_state', { state: 'ok' }), 0);
  const status = await request(`${d.daemon.url}/status`, { dispatcher: d.agent });
  const token = ((await status.body.json()) as { token: { state: string; error: { code: string } } }).token;
  assert.equal(token.state, 'refused', '/status and the metric agree');
  assert.equal(token.error.code, 'TWITCH_AUTH_FAILED');
});

test('daemon /metrics: eventsubd_token_state is missing while Twitch\'s token endpoint is unreachable', async (t) => {
  const d = await startInProcessDaemon(t, { TWITCH_AUTH_URL: `http://127.0.0.1:${await freePort()}/oauth2` });
  const failed = (): boolean => d.logs.records().some((r) => r.msg === 'No app token yet; retrying in the background');
  // The OAuth client retries on the clock before it gives up: move the clock to each retry.
  while (!failed()) {
    await untilTurn(() => failed() || d.clock.pending > 0, 'a retry or the failed mint');
    if (!failed()) await d.clock.advance(d.clock.nextWake()! - d.clock.now());
  }
  const down = await scrape(d);
  assert.equal(sampleValue(down, 'eventsubd_token_state', { state: 'missing' }), 1);
  assert.equal(sampleValue(down, 'eventsubd_token_state', { state: 'refused' }), 0);
  assert.equal(sampleValue(down, 'eventsubd_token_state', { state: 'ok' }), 0);
});
