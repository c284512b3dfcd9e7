/**
 * Hostile and broken input through the real daemon: signatures in every wrong shape, stale and future
 * timestamps, malformed headers and JSON, oversized and truncated bodies, a slow client. None of it is
 * journaled, the daemon stays up, and /metrics counts every refusal by outcome. One daemon for the file;
 * `expected` keeps the (few) well-formed control messages that must be journaled.
 */
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  DEFAULT_SUBSCRIPTIONS,
  WEBHOOK_SECRET,
  assertJournalIds,
  assertNoSecrets,
  httpGet,
  metric,
  readJournal,
  startDaemon,
  startFixture,
  type DaemonProcess,
  type Fixture,
} from './harness.js';
import { deferred } from '../helpers/wait.js';
import { notificationBody, post, rawExchange, rawStatus, send, signedHeaders, wireSubscription } from './messages.js';

let f: Fixture;
let daemon: DaemonProcess;
/** Message ids that must be journaled, in the order they were accepted. */
const expected: string[] = [];
/** Requests sent per outcome, to check /metrics exactly. */
const sent = { bad_signature: 0, stale: 0, future: 0, bad_request: 0, unknown_type: 0, too_large: 0, notification: 0 };

before(async () => {
  f = await startFixture({ subscriptions: [] });
  daemon = await startDaemon(f);
});
after(async () => {
  if (daemon?.running) await daemon.kill9();
  await f?.close();
});


describe('daemon receiver on hostile input', () => {
  test('bad signatures in every shape: 403, nothing journaled', async () => {
    const body = notificationBody();
    const good = signedHeaders(body);
    const id = good['twitch-eventsub-message-id']!;
    const ts = good['twitch-eventsub-message-timestamp']!;
    const hex = good['twitch-eventsub-message-signature']!.slice('sha256='.length);
    const { 'twitch-eventsub-message-signature': _, ...unsigned } = good;
    const sha1 = createHmac('sha1', WEBHOOK_SECRET).update(id + ts + body).digest('hex');
    const pretty = JSON.stringify(JSON.parse(body), null, 2);
    const shapes: Array<[string, Record<string, string>, string]> = [
      ['missing', unsigned, body],
      ['empty', { ...unsigned, 'twitch-eventsub-message-signature': '' }, body],
      ['no prefix', { ...unsigned, 'twitch-eventsub-message-signature': hex }, body],
      ['upper-case hex', { ...unsigned, 'twitch-eventsub-message-signature': `sha256=${hex.toUpperCase()}` }, body],
      ['upper-case prefix', { ...unsigned, 'twitch-eventsub-message-signature': `SHA256=${hex}` }, body],
      ['sha1=', { ...unsigned, 'twitch-eventsub-message-signature': `sha1=${sha1}` }, body],
      ['truncated hex', { ...unsigned, 'twitch-eventsub-message-signature': `sha256=${hex.slice(0, 63)}` }, body],
      ['other secret', signedHeaders(body, { secret: 'another-secret-0123456789', messageId: id, timestamp: ts }), body],
      ['re-serialised body', good, pretty],
      ['signed for another message id', { ...good, 'twitch-eventsub-message-id': randomUUID() }, body],
      ['signed for another timestamp', { ...good, 'twitch-eventsub-message-timestamp': new Date(Date.parse(ts) - 1000).toISOString() }, body],
    ];
    for (const [name, headers, payload] of shapes) {
      const res = await post(f, headers, payload);
      assert.equal(res.status, 403, `${name}: ${res.body}`);
      sent.bad_signature += 1;
    }
    assertJournalIds(f, expected);
    // The untouched message is accepted: the 403s were about the signatures, nothing else.
    const ok = await post(f, good, body);
    assert.equal(ok.status, 204);
    expected.push(id);
    sent.notification += 1;
    assertJournalIds(f, expected);
  });

  test('timestamps: more than 10 minutes old or ahead is 403; 9 minutes old is accepted', async () => {
    const now = Date.now();
    const stale = await send(f, { timestamp: new Date(now - 11 * 60_000).toISOString() });
    assert.equal(stale.status, 403);
    assert.equal(stale.body, 'message too old');
    sent.stale += 1;
    const future = await send(f, { timestamp: new Date(now + 11 * 60_000).toISOString() });
    assert.equal(future.status, 403);
    assert.equal(future.body, 'message timestamp in the future');
    sent.future += 1;
    assertJournalIds(f, expected);
    const inside = await send(f, { timestamp: new Date(now - 9 * 60_000).toISOString() });
    assert.equal(inside.status, 204);
    expected.push(inside.messageId);
    sent.notification += 1;
    assertJournalIds(f, expected);
  });

  test('malformed headers or JSON: 400, nothing journaled', async () => {
    const body = notificationBody();
    const good = signedHeaders(body);
    const without = (name: string): Record<string, string> => Object.fromEntries(Object.entries(good).filter(([k]) => k !== name));
    const signed = (payload: string, over: { messageType?: string; timestamp?: string } = {}): [Record<string, string>, string] => [
      signedHeaders(payload, over),
      payload,
    ];
    const badUtf8 = Buffer.from('{"subscription":"\xff"}', 'latin1');
    const cases: Array<[string, Record<string, string>, string | Buffer]> = [
      ['no message id', without('twitch-eventsub-message-id'), body],
      ['no timestamp', without('twitch-eventsub-message-timestamp'), body],
      ['no message type', without('twitch-eventsub-message-type'), body],
      ['message id over 256 characters', { ...good, 'twitch-eventsub-message-id': 'x'.repeat(300) }, body],
      ['not JSON', ...signed('{"subscription": {')],
      ['a JSON array', ...signed('[1,2,3]')],
      ['a notification without subscription', ...signed(JSON.stringify({ event: {} }))],
      ['a notification without event', ...signed(JSON.stringify({ subscription: wireSubscription(DEFAULT_SUBSCRIPTIONS[0]!) }))],
      ['invalid UTF-8', signedHeaders(badUtf8), badUtf8],
      ['a timestamp that is not RFC 3339', ...signed(body, { timestamp: 'yesterday at noon' })],
      ['an unknown message type', ...signed(body, { messageType: 'party_invitation' })],
    ];
    for (const [name, headers, payload] of cases) {
      const res = await post(f, headers, payload);
      assert.equal(res.status, 400, `${name}: ${res.status} ${res.body}`);
      sent[name === 'an unknown message type' ? 'unknown_type' : 'bad_request'] += 1;
    }
    assertJournalIds(f, expected);
  });

  test('size: a body over 1 MiB is 413 whether declared or streamed; a signed ~1 MB notification is accepted', async () => {
    const head = (extra: string): string =>
      `POST /twitch/eventsub HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}\r\n`;
    // Declared: refused from the headers alone, before a byte of the body is read.
    const declared = await rawExchange(f, [head(`Content-Length: ${1024 * 1024 + 1}\r\n`)]);
    assert.equal(rawStatus(declared), 413, declared);
    // Streamed (chunked, no length): refused once 1 MiB + 1 byte has arrived. Nothing more is sent, so the
    // server's close cannot turn into a reset that would hide the answer.
    const chunk = 'a'.repeat(64 * 1024);
    const chunks = [head('Transfer-Encoding: chunked\r\n')];
    for (let i = 0; i < 16; i++) chunks.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    chunks.push('1\r\na\r\n');
    const streamed = await rawExchange(f, chunks);
    assert.equal(rawStatus(streamed), 413, streamed.slice(0, 200));
    sent.too_large += 2;
    assertJournalIds(f, expected);

    const big = notificationBody({ broadcaster_user_id: '12345', padding: 'p'.repeat(1_000_000) });
    assert.ok(big.length < 1024 * 1024 && big.length > 1_000_000);
    const headers = signedHeaders(big);
    const ok = await post(f, headers, big);
    assert.equal(ok.status, 204);
    expected.push(headers['twitch-eventsub-message-id']!);
    sent.notification += 1;
    assertJournalIds(f, expected);
    assert.equal((readJournal(f.stateDir).at(-1)!.event as { padding: string }).padding.length, 1_000_000);
  });

  test('truncated bodies: Content-Length larger than what is sent, then the client goes: nothing journaled', async () => {
    for (const end of [true, false]) {
      // Signed over exactly what is sent: only the missing 100 bytes make it unacceptable, so a partial
      // body handed to the handler would verify and be journaled.
      const body = notificationBody();
      const headers = signedHeaders(body);
      const head =
        'POST /twitch/eventsub HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('') +
        `Content-Length: ${body.length + 100}\r\n\r\n`;
      // end: half-close after the partial body; otherwise the socket is destroyed after 200 ms.
      const answer = await rawExchange(f, [head, body], { end, waitMs: 200 });
      assert.notEqual(rawStatus(answer), 204, answer);
      assert.notEqual(rawStatus(answer), 200, answer);
    }
    assert.equal((await httpGet(f, '/healthz')).status, 200);
    assertJournalIds(f, expected);
  });

  test('slow client: headers sent byte by byte do not hold up a normal request', async () => {
    const socket = connect(f.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    const head = 'POST /twitch/eventsub HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTwitch-Eventsub-Message-Id: slow';
    const midHeaders = deferred();
    let i = 0;
    // The drip's pace is the stimulus (a slow client); the test waits on its progress, not on time.
    const drip = setInterval(() => {
      if (i >= head.length) return;
      const n = ++i;
      socket.write(head[n - 1]!, () => n === 10 && midHeaders.resolve());
    }, 20);
    try {
      await midHeaders.promise; // the slow client is mid-headers: its first 10 bytes are written
      const started = Date.now();
      const res = await send(f);
      const took = Date.now() - started;
      assert.equal(res.status, 204);
      // Not held until the slow client is done (~2.3 s) or timed out (10 s).
      assert.ok(took < 2_000, `a normal request took ${took} ms while a slow client was sending headers`);
      expected.push(res.messageId);
      sent.notification += 1;
      assert.ok(i > 5 && i < head.length, `still dripping (${i} bytes sent)`);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    assertJournalIds(f, expected);
  });

  test('afterwards: the daemon is up, only the well-formed control messages are journaled, /metrics counts each refusal', async () => {
    assert.equal((await httpGet(f, '/healthz')).status, 200);
    assert.equal((await httpGet(f, '/readyz')).status, 200);
    assert.equal(daemon.running, true);
    assertJournalIds(f, expected);
    const res = await httpGet(f, '/metrics');
    assert.equal(res.status, 200);
    for (const [outcome, n] of Object.entries(sent)) {
      assert.equal(metric(res.body, 'eventsubd_webhook_requests_total', `{outcome="${outcome}"}`), n, outcome);
    }
    assert.equal(metric(res.body, 'eventsubd_journal_head_seq'), expected.length);
    assertNoSecrets(f, daemon.stderr, 'daemon stderr');
    assert.equal(await daemon.stop('SIGTERM'), 0);
  });
});
