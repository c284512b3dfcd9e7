/**
 * The receiver through the real daemon (`node dist/main.js run`) on loopback, against the emulator: the
 * accepting rows of SPEC.md's receiver table (challenge, notification, duplicate, revocation), methods and
 * paths, /healthz /readyz /status /metrics, and what `events tail` shows. Hostile input is in
 * hostile.test.ts. One daemon serves the whole file; `expected` keeps the message ids that must be in the
 * journal, in order, so that every test can check that nothing else was journaled.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BIN } from '../helpers/cli.js';
import {
  CALLBACK,
  DEFAULT_SUBSCRIPTIONS,
  assertJournalIds,
  assertNoSecrets,
  eventsTail,
  httpGet,
  jsonLines,
  metric,
  readJournal,
  startDaemon,
  startFixture,
  status,
  waitEnabled,
  waitFor,
  type DaemonProcess,
  type Fixture,
  type StatusDoc,
} from './harness.js';
import { post, send, wireSubscription } from './messages.js';

let f: Fixture;
let daemon: DaemonProcess;
/** Message ids that must be journaled, in the order they were accepted. */
const expected: string[] = [];
/** Accepted requests per outcome, to check /metrics exactly. */
const sent = { challenge: 0, notification: 0, duplicate: 0, revocation: 0 };

before(async () => {
  f = await startFixture();
  daemon = await startDaemon(f);
});
after(async () => {
  if (daemon?.running) await daemon.kill9();
  await f?.close();
});


describe('daemon receiver end to end', () => {
  test('verification: every subscription of the file becomes enabled because the daemon answered its challenge', async () => {
    const subs = await waitEnabled(f, DEFAULT_SUBSCRIPTIONS.length);
    assert.deepEqual(subs.map((s) => s.type).sort(), ['stream.offline', 'stream.online']);
    for (const s of subs) assert.equal(s.transport.callback, CALLBACK);
    assert.equal(f.emulator.stats.verificationsSent, 2);
    const doc = await status(f);
    assert.equal(doc.sync.result, 'ok');
    assert.equal(doc.sync.counts?.create, 2);
  });

  test('challenge: 200 text/plain with the raw challenge, not journaled', async () => {
    const challenge = 'pogchamp-kappa-"quoted"&<tag>';
    const res = await send(f, {
      messageType: 'webhook_callback_verification',
      subscription: wireSubscription(DEFAULT_SUBSCRIPTIONS[0]!, { status: 'webhook_callback_verification_pending' }),
      challenge,
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.equal(res.body, challenge, 'the raw challenge, not JSON');
    sent.challenge += 3; // this one and the emulator's two
    assertJournalIds(f, expected);
  });

  test('notification: 204 only once journaled, and shown by events tail --json', async () => {
    const event = { broadcaster_user_id: '12345', type: 'live', marker: randomUUID() };
    const res = await send(f, { event });
    assert.equal(res.status, 204);
    assert.equal(res.body, '');
    expected.push(res.messageId);
    sent.notification += 1;
    // 204 means on disk: the file has it the moment the answer arrives.
    const last = readJournal(f.stateDir).at(-1)!;
    assert.equal(last.message_id, res.messageId);
    assert.deepEqual(last.event, event);

    const tail = await eventsTail(f, ['--json', '--since', '0']);
    assert.equal(tail.code, 0, tail.stderr);
    const records = jsonLines(tail.stdout);
    assert.deepEqual(records.map((r) => r.message_id), expected);
    const rec = records.at(-1)!;
    assert.equal(rec.seq, 1);
    assert.equal(rec.message_type, 'notification');
    assert.equal(rec.subscription.type, 'stream.online');
    assert.deepEqual(rec.event, event);
  });

  test('duplicate: the same message id again is 204 and not journaled again; the same event id under a new message id is journaled', async () => {
    const first = await send(f, { event: { id: 'event-dup-1', broadcaster_user_id: '12345' } });
    assert.equal(first.status, 204);
    expected.push(first.messageId);
    sent.notification += 1;
    const again = await send(f, { messageId: first.messageId, event: { id: 'event-dup-1', broadcaster_user_id: '12345' } });
    assert.equal(again.status, 204);
    sent.duplicate += 1;
    // A new message id is a new message, whatever its event id (a poll's progress repeats the poll's id).
    const sameEvent = await send(f, { event: { id: 'event-dup-1', broadcaster_user_id: '12345' } });
    assert.equal(sameEvent.status, 204);
    expected.push(sameEvent.messageId);
    sent.notification += 1;
    assertJournalIds(f, expected);
  });

  test('revocation: 204 and journaled once with its status; authorization_revoked is reported, not recreated', async () => {
    const sub = wireSubscription({ type: 'channel.update', version: '2', condition: { broadcaster_user_id: '999' } }, { status: 'authorization_revoked' });
    const res = await send(f, { messageType: 'revocation', subscription: sub });
    assert.equal(res.status, 204);
    expected.push(res.messageId);
    sent.revocation += 1;
    const rec = readJournal(f.stateDir).at(-1)!;
    assert.equal(rec.message_type, 'revocation');
    assert.equal(rec.subscription.id, sub.id);
    assert.equal(rec.subscription.status, 'authorization_revoked');
    assert.equal(rec.event, undefined);
    const warn = daemon.logs().find((l) => l.msg === 'Subscription revoked and will not be recreated');
    assert.equal(warn?.level, 'warn');
    assert.equal(warn?.id, sub.id);
    // Twitch retries: the same revocation again is acknowledged, not journaled or handled twice (see /metrics).
    const again = await send(f, { messageType: 'revocation', subscription: sub, messageId: res.messageId });
    assert.equal(again.status, 204);
    sent.duplicate += 1;
    assertJournalIds(f, expected);
  });

  test('methods and paths: 405 on the webhook path for other methods, 404 elsewhere, 405 for POST on a route', async () => {
    const get = await httpGet(f, '/twitch/eventsub');
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    assert.equal((await httpGet(f, '/twitch/eventsub', 'PUT')).status, 405);
    assert.equal((await httpGet(f, '/twitch/eventsub', 'DELETE')).status, 405);
    assert.equal((await httpGet(f, '/nowhere')).status, 404);
    assert.equal((await httpGet(f, '/twitch/eventsub/more')).status, 404);
    assert.equal((await httpGet(f, '/twitch')).status, 404);
    const postHealth = await post(f, { 'content-type': 'application/json' }, '{}', { path: '/healthz' });
    assert.equal(postHealth.status, 405);
    assertJournalIds(f, expected);
  });

  test('/healthz and /readyz are 200; /status is JSON with token, sync and journal fields and no secret', async () => {
    assert.equal((await httpGet(f, '/healthz')).status, 200);
    const ready = await httpGet(f, '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(JSON.parse(ready.body).ready, true);
    const raw = await httpGet(f, '/status');
    assert.equal(raw.status, 200);
    assert.match(String(raw.headers['content-type']), /^application\/json/);
    const doc = JSON.parse(raw.body) as StatusDoc;
    assert.equal(doc.token.state, 'ok');
    assert.ok(Date.parse(doc.token.expires_at!) > Date.now() + 24 * 3_600_000, 'expires_at is a date days ahead');
    assert.ok(Math.abs(Date.parse(doc.token.validated_at!) - Date.now()) < 60_000, 'validated_at is recent');
    assert.equal(doc.token.error, null);
    assert.equal(doc.sync.result, 'ok');
    assert.equal(doc.sync.managed, true);
    assert.deepEqual(
      { create: doc.sync.counts?.create, delete: doc.sync.counts?.delete },
      { create: 2, delete: 0 },
    );
    assert.equal(doc.journal.head, expected.length);
    assert.equal(doc.journal.writable, true);
    assert.equal(doc.journal.appends, expected.length);
    assert.ok(doc.journal.fsyncs >= 1 && doc.journal.fsyncs <= expected.length);
    assertNoSecrets(f, raw.body, '/status');
  });

  test('/metrics: Prometheus text with requests by outcome and the journal head, no secret', async () => {
    const res = await httpGet(f, '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(res.body, /^# HELP eventsubd_webhook_requests_total /m);
    assert.match(res.body, /^# TYPE eventsubd_webhook_requests_total counter$/m);
    for (const [outcome, n] of Object.entries(sent)) {
      assert.equal(metric(res.body, 'eventsubd_webhook_requests_total', `{outcome="${outcome}"}`), n, outcome);
    }
    // The methods-and-paths test: four 405s and three 404s; and no refusal of any other kind.
    assert.equal(metric(res.body, 'eventsubd_webhook_requests_total', '{outcome="method_not_allowed"}'), 4);
    assert.equal(metric(res.body, 'eventsubd_webhook_requests_total', '{outcome="not_found"}'), 3);
    assert.equal(metric(res.body, 'eventsubd_webhook_requests_total', '{outcome="bad_signature"}'), undefined);
    assert.equal(metric(res.body, 'eventsubd_journal_head_seq'), expected.length);
    assert.equal(metric(res.body, 'eventsubd_journal_appends_total'), expected.length);
    assert.equal(metric(res.body, 'eventsubd_revocations_total', '{status="authorization_revoked"}'), 1);
    assert.equal(metric(res.body, 'eventsubd_token_mints_total'), 1);
    assert.equal(metric(res.body, 'eventsubd_helix_requests_total', '{method="POST",status="202"}'), 2);
    assert.equal(metric(res.body, 'eventsubd_syncs_total', '{result="ok"}'), 1);
    assert.equal(metric(res.body, 'eventsubd_subscription_cost', '{kind="max"}'), 10_000);
    assert.ok((metric(res.body, 'eventsubd_ratelimit_remaining') ?? 0) > 0);
    assertNoSecrets(f, res.body, '/metrics');
  });

  test('events tail: --since N gives the records after N; --follow prints new records as they are journaled', async () => {
    assert.equal(expected.length, 4);
    const since = await eventsTail(f, ['--json', '--since', '1']);
    assert.equal(since.code, 0, since.stderr);
    assert.deepEqual(
      jsonLines(since.stdout).map((r) => [r.seq, r.message_id]),
      expected.slice(1).map((id, i) => [i + 2, id]),
    );
    const none = await eventsTail(f, ['--json', '--since', String(expected.length)]);
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
    const human = await eventsTail(f, ['--since', String(expected.length - 1)]);
    assert.equal(human.code, 0);
    assert.match(
      human.stdout,
      new RegExp(`^#${expected.length} \\S+ revocation channel\\.update v2 broadcaster_user_id=999 status=authorization_revoked message_id=${expected.at(-1)}\\n$`),
    );
    assert.equal((await eventsTail(f, ['--since', 'abc'])).code, 2);

    const follow = spawn(process.execPath, [BIN, 'events', 'tail', '--follow', '--json', '--since', String(expected.length)], {
      env: { PATH: process.env.PATH ?? '', ...f.env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    follow.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    follow.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => follow.once('exit', (code) => r(code)));
    try {
      const ids: string[] = [];
      for (let n = 0; n < 2; n++) {
        const res = await send(f);
        assert.equal(res.status, 204);
        expected.push(res.messageId);
        ids.push(res.messageId);
        sent.notification += 1;
        // Each record shows up while the follower keeps running.
        await waitFor(`record ${n + 1} in --follow`, () => jsonLines(out).length === n + 1, { timeoutMs: 10_000 });
      }
      assert.deepEqual(
        jsonLines(out).map((r) => [r.seq, r.message_id]),
        ids.map((id, i) => [expected.length - 1 + i, id]),
      );
      assert.equal(follow.exitCode, null, 'still following');
    } finally {
      follow.kill('SIGINT');
    }
    assert.equal(await exited, 0, err);
  });

  test('afterwards: the daemon is up, the journal holds each accepted message once, in order, and stderr has no secret', async () => {
    assert.equal((await httpGet(f, '/healthz')).status, 200);
    const records = readJournal(f.stateDir);
    assert.deepEqual(records.map((r) => r.message_id), expected);
    assert.deepEqual(records.map((r) => r.seq), expected.map((_, i) => i + 1));
    assertNoSecrets(f, daemon.stderr, 'daemon stderr');
    assert.equal(await daemon.stop('SIGTERM'), 0);
  });
});
