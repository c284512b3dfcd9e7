import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Dedup } from '../../src/receiver/dedup.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { SUB_STREAM_ONLINE, WEBHOOK_PATH, makeHandler, nanoTimestamp, notificationBody, signedRequest } from './helpers.js';

describe('webhook handler: malformed requests', () => {
  const body = notificationBody();
  const headerCases: Array<[string, Record<string, string | string[] | undefined>]> = [
    ['missing message id', { 'twitch-eventsub-message-id': undefined }],
    ['missing timestamp', { 'twitch-eventsub-message-timestamp': undefined }],
    ['missing message type', { 'twitch-eventsub-message-type': undefined }],
    ['empty message id', { 'twitch-eventsub-message-id': '' }],
    ['message id sent twice', { 'twitch-eventsub-message-id': ['a', 'a'] }],
    ['message type sent twice', { 'twitch-eventsub-message-type': ['notification', 'notification'] }],
    ['message id of 257 characters', { 'twitch-eventsub-message-id': 'x'.repeat(257) }],
    ['timestamp of 65 characters', { 'twitch-eventsub-message-timestamp': '2'.repeat(65) }],
  ];
  for (const [name, headers] of headerCases) {
    test(`webhook handler answers 400 to malformed headers: ${name}`, async () => {
      const { handler, clock, journal, outcomes } = makeHandler();
      const res = await handler(signedRequest(clock, { body, headers }));
      assert.equal(res.status, 400);
      assert.equal(res.headers?.['Content-Type'], 'text/plain; charset=utf-8');
      assert.equal(journal.calls, 0);
      assert.deepEqual(outcomes, ['bad_request']);
    });
  }

  const bodyCases: Array<[string, string | Buffer, string?]> = [
    ['invalid JSON', '{"subscription":'],
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"subscription":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"hello"'],
    ['an empty body', ''],
    ['no subscription', JSON.stringify({ event: { id: '1' } })],
    ['a subscription without type', JSON.stringify({ subscription: { id: 'x', version: '1', condition: {} }, event: {} })],
    ['a subscription without condition', JSON.stringify({ subscription: { id: 'x', type: 't', version: '1' }, event: {} })],
    ['a notification without event', JSON.stringify({ subscription: SUB_STREAM_ONLINE })],
    ['a challenge without challenge', JSON.stringify({ subscription: SUB_STREAM_ONLINE }), 'webhook_callback_verification'],
    ['a challenge with a numeric challenge', JSON.stringify({ challenge: 42, subscription: SUB_STREAM_ONLINE }), 'webhook_callback_verification'],
    ['a revocation without subscription', JSON.stringify({}), 'revocation'],
    ['an unknown type with an array body', '[]', 'mystery'],
  ];
  for (const [name, raw, type] of bodyCases) {
    test(`webhook handler answers 400 to a correctly signed body that is ${name}`, async () => {
      const { handler, clock, journal } = makeHandler();
      const res = await handler(signedRequest(clock, { body: raw, ...(type ? { type } : {}) }));
      assert.equal(res.status, 400);
      assert.equal(journal.calls, 0);
    });
  }

  for (const timestamp of ['yesterday', '2026-11-24 10:00:00Z', '2026-02-30T10:00:00Z', '2026-11-24T25:00:00Z', '2026-11-24T10:00:00']) {
    test(`webhook handler answers 400 to an unparseable timestamp '${timestamp}'`, async () => {
      const { handler, clock, journal } = makeHandler();
      const res = await handler(signedRequest(clock, { body, timestamp }));
      assert.equal(res.status, 400);
      assert.equal(res.body, 'invalid timestamp');
      assert.equal(journal.calls, 0);
    });
  }

  test('webhook handler parses the body before judging the timestamp (bad JSON + stale → 400)', async () => {
    const { handler, clock } = makeHandler();
    const res = await handler(signedRequest(clock, { body: '{', timestamp: nanoTimestamp(clock.now() - 60 * 60_000) }));
    assert.equal(res.status, 400);
  });
});

describe('webhook handler: routing', () => {
  test('webhook handler answers 405 with Allow: POST to other methods on the webhook path', async () => {
    const { handler, clock } = makeHandler();
    for (const method of ['GET', 'PUT', 'DELETE', 'HEAD']) {
      const res = await handler(signedRequest(clock, { body: notificationBody(), method }));
      assert.equal(res.status, 405, method);
      assert.equal(res.headers?.Allow, 'POST');
    }
  });

  test('webhook handler answers 404 to other paths, including the webhook path with a trailing slash', async () => {
    const { handler, clock, journal } = makeHandler();
    for (const path of ['/', '/other', `${WEBHOOK_PATH}/`, '/WEBHOOKS/callback']) {
      const res = await handler(signedRequest(clock, { body: notificationBody(), path }));
      assert.equal(res.status, 404, path);
    }
    assert.equal(journal.calls, 0);
  });

  test('webhook handler serves GET routes supplied by the daemon and 405s other methods on them', async () => {
    const { handler } = makeHandler({
      routes: { '/healthz': () => ({ status: 200, body: 'ok' }), '/readyz': async () => ({ status: 503, body: 'not ready' }) },
    });
    const get = (path: string, method = 'GET') => handler({ method, path, headers: {}, body: Buffer.alloc(0) });
    assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok' });
    assert.deepEqual(await get('/readyz'), { status: 503, body: 'not ready' });
    const post = await get('/healthz', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers?.Allow, 'GET, HEAD');
    assert.equal((await get('/metrics')).status, 404);
  });

  test('webhook handler answers 500 when a route throws', async () => {
    const { handler, outcomes } = makeHandler({
      routes: {
        '/status': () => {
          throw new Error('bug');
        },
      },
    });
    const res = await handler({ method: 'GET', path: '/status', headers: {}, body: Buffer.alloc(0) });
    assert.equal(res.status, 500);
    assert.deepEqual(outcomes, ['internal_error']);
  });

  test('webhook handler answers 503 with Connection: close while closing, without journaling', async () => {
    let closing = false;
    const { handler, clock, journal } = makeHandler({ isClosing: () => closing });
    closing = true;
    const res = await handler(signedRequest(clock, { body: notificationBody() }));
    assert.equal(res.status, 503);
    assert.equal(res.headers?.Connection, 'close');
    assert.equal(journal.calls, 0);
  });

  test('createWebhookHandler() refuses a path without a leading slash', () => {
    assert.throws(() => makeHandler({ webhookPath: 'webhooks' }), RangeError);
  });
});

describe('webhook handler: journal and dedup', () => {
  test('webhook handler answers 503 when the journal fails, and a later retry is journaled', async () => {
    const { handler, clock, journal, outcomes } = makeHandler();
    journal.failing = true;
    const first = await handler(signedRequest(clock, { body: notificationBody(), messageId: 'j-1' }));
    assert.equal(first.status, 503);
    assert.equal(journal.entries.length, 0);
    journal.failing = false;
    await clock.advance(30_000);
    const retry = await handler(signedRequest(clock, { body: notificationBody(), messageId: 'j-1' }));
    assert.equal(retry.status, 204);
    assert.equal(journal.entries.length, 1);
    assert.deepEqual(outcomes, ['journal_failed', 'notification']);
  });

  test('webhook handler journals concurrent duplicates once, answering all of them after the append', async () => {
    const { handler, clock, journal } = makeHandler();
    const release = journal.hold();
    const req = () => signedRequest(clock, { body: notificationBody(), messageId: 'c-1' });
    let settled = 0;
    const all = Promise.all([1, 2, 3, 4, 5].map(() => Promise.resolve(handler(req())).finally(() => (settled += 1))));
    await flushMicrotasks();
    assert.equal(journal.calls, 1);
    assert.equal(settled, 0, 'nobody is answered before the append resolves');
    release();
    const answers = await all;
    assert.deepEqual(answers.map((r) => r.status), [204, 204, 204, 204, 204]);
    assert.equal(journal.entries.length, 1);
  });

  test('webhook handler answers 503 to every concurrent duplicate when the shared append fails', async () => {
    const { handler, clock, journal } = makeHandler();
    const release = journal.hold();
    journal.failing = true;
    const req = () => signedRequest(clock, { body: notificationBody(), messageId: 'c-2' });
    const all = Promise.all([handler(req()), handler(req()), handler(req())]);
    await flushMicrotasks();
    release();
    assert.deepEqual((await all).map((r) => r.status), [503, 503, 503]);
    journal.failing = false;
    assert.equal((await handler(req())).status, 204);
    assert.equal(journal.entries.length, 1);
  });

  test('webhook handler journals every new message id, even when its event repeats an earlier event id', async () => {
    const { handler, clock, journal, outcomes } = makeHandler();
    // Three progress updates of one poll: one event id (the poll's), new message ids, new vote counts.
    const poll = { ...SUB_STREAM_ONLINE, type: 'channel.poll.progress', condition: { broadcaster_user_id: '1337' } };
    for (const [i, votes] of [10, 11, 12].entries()) {
      const body = JSON.stringify({ subscription: poll, event: { id: 'poll-1', broadcaster_user_id: '1337', votes } });
      assert.equal((await handler(signedRequest(clock, { body, messageId: `p-${i}` }))).status, 204);
    }
    // The same event under another subscription and message id (a duplicate subscription) is journaled too.
    const twin = { ...SUB_STREAM_ONLINE, id: 'other-sub' };
    assert.equal((await handler(signedRequest(clock, { body: notificationBody('ev-1'), messageId: 'a' }))).status, 204);
    assert.equal((await handler(signedRequest(clock, { body: notificationBody('ev-1', twin), messageId: 'b' }))).status, 204);
    assert.deepEqual(journal.entries.map((e) => e.message_id), ['p-0', 'p-1', 'p-2', 'a', 'b']);
    assert.deepEqual(journal.entries.slice(0, 3).map((e) => (e.event as { votes: number }).votes), [10, 11, 12]);
    assert.deepEqual(outcomes, ['notification', 'notification', 'notification', 'notification', 'notification']);
  });

  test('webhook handler shares one append between concurrent deliveries of one message id, not between ids', async () => {
    const { handler, clock, journal } = makeHandler();
    const release = journal.hold();
    const a = handler(signedRequest(clock, { body: notificationBody('ev-9'), messageId: 'x1' }));
    const b = handler(signedRequest(clock, { body: notificationBody('ev-9'), messageId: 'x2' }));
    const c = handler(signedRequest(clock, { body: notificationBody('ev-9'), messageId: 'x1' }));
    await flushMicrotasks();
    release();
    assert.deepEqual([(await a).status, (await b).status, (await c).status], [204, 204, 204]);
    assert.deepEqual(journal.entries.map((e) => e.message_id), ['x1', 'x2']);
    assert.equal(journal.calls, 2);
  });

  test('webhook handler remembers a message accepted at the window\'s future edge until its replay fails the window', async () => {
    const { handler, clock, journal } = makeHandler();
    const future = nanoTimestamp(clock.now() + 10 * 60_000);
    const req = () => signedRequest(clock, { body: notificationBody('ev-f'), messageId: 'edge', timestamp: future });
    assert.equal((await handler(req())).status, 204);
    // 20 minutes later the signed timestamp is exactly 10 minutes old: still inside the window.
    await clock.advance(20 * 60_000);
    assert.equal((await handler(req())).status, 204);
    assert.equal(journal.entries.length, 1, 'the replay at the window\'s edge was journaled again');
    await clock.advance(1);
    assert.equal((await handler(req())).status, 403);
  });

  test('createWebhookHandler() refuses a dedup that forgets ids before the replay window closes', () => {
    const clock = new FakeClock();
    assert.throws(
      () => makeHandler({ dedup: new Dedup({ clock, retentionMs: 20 * 60_000 }) }),
      /Dedup retention must be at least 1200001 ms for a 600000 ms replay window: current value is 1200000/,
    );
  });

  test('webhook handler forgets a message id after the dedup retention', async () => {
    const { handler, clock, journal } = makeHandler();
    const body = notificationBody('ev-r');
    const timestamp = () => nanoTimestamp(clock.now());
    assert.equal((await handler(signedRequest(clock, { body, messageId: 'r', timestamp: timestamp() }))).status, 204);
    await clock.advance(21 * 60_000);
    assert.equal((await handler(signedRequest(clock, { body, messageId: 'r', timestamp: timestamp() }))).status, 204);
    assert.equal(journal.entries.length, 2);
  });

  test('a Dedup rebuilt from the journal records\' message ids answers a redelivery as a duplicate', async () => {
    const first = makeHandler();
    await first.handler(signedRequest(first.clock, { body: notificationBody('ev-7'), messageId: 'keep' }));
    const record = first.journal.entries[0]!;
    // A restart: a new handler whose Dedup is seeded from the journal at the records' own times.
    const dedup = new Dedup({ clock: first.clock });
    dedup.add(record.message_id, Date.parse(record.received_at));
    await first.clock.advance(60_000);
    const second = makeHandler({ dedup, clock: first.clock });
    const redelivered = signedRequest(first.clock, { body: notificationBody('ev-7'), messageId: 'keep' });
    assert.equal((await second.handler(redelivered)).status, 204);
    assert.equal(second.journal.calls, 0);
    assert.deepEqual(second.outcomes, ['duplicate']);
  });
});
