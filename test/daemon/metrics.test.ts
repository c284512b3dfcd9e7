/**
 * Issue #11.1, state that tells the truth: `/metrics` is valid Prometheus text with types that match the
 * names, and the subscription gauges show what the last sync left, not the listing taken before it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { notificationBody } from '../receiver/helpers.js';
import { parsePrometheusText, sampleValue } from '../helpers/prom-text.js';
import { startInProcessDaemon } from './in-process.js';

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
