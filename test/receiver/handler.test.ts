import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signMessage, verifySignature } from '../../src/twitch/signature.js';
import {
  CHALLENGE,
  OTHER_SECRET,
  SECRET,
  makeHandler,
  nanoTimestamp,
  notificationBody,
  revocationBody,
  signedRequest,
  verificationBody,
} from './helpers.js';

const VECTOR = {
  id: 'e76c6bd4-55c9-4987-8304-da1588d8988b',
  timestamp: '2019-11-16T10:11:12.634234626Z',
  body: '{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"stream.online","version":"1","cost":0,"condition":{"broadcaster_user_id":"1337"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"},"event":{"id":"9001","broadcaster_user_id":"1337","broadcaster_user_login":"cool_user","broadcaster_user_name":"Cool_User","type":"live","started_at":"2020-10-11T10:11:12.123Z"}}',
  signature: 'sha256=4e618e47054a7cb256305b3a08888e545c130b2db43ee8447b636f3cb5861b17',
};

describe('contract 7.2 test vector', () => {
  test('signMessage() and verifySignature() agree with the test vector', () => {
    assert.equal(signMessage(SECRET, VECTOR.id, VECTOR.timestamp, VECTOR.body), VECTOR.signature);
    assert.equal(verifySignature([SECRET], VECTOR.id, VECTOR.timestamp, Buffer.from(VECTOR.body), VECTOR.signature), true);
  });

  test('webhook handler accepts the test vector message and journals it', async () => {
    const { handler, clock, journal } = makeHandler();
    clock.set(Date.parse('2019-11-16T10:15:00Z'));
    const res = await handler(
      signedRequest(clock, { body: VECTOR.body, messageId: VECTOR.id, timestamp: VECTOR.timestamp, signature: VECTOR.signature }),
    );
    assert.equal(res.status, 204);
    assert.equal(journal.entries.length, 1);
    assert.deepEqual(journal.entries[0], {
      message_id: VECTOR.id,
      message_type: 'notification',
      received_at: '2019-11-16T10:15:00.000Z',
      transport: 'webhook',
      subscription: {
        id: 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4',
        type: 'stream.online',
        version: '1',
        status: 'enabled',
        condition: { broadcaster_user_id: '1337' },
      },
      event: JSON.parse(VECTOR.body).event,
    });
  });
});

describe('webhook handler: message types', () => {
  test('webhook handler answers a challenge with 200 text/plain and the raw challenge, without journaling', async () => {
    const { handler, clock, journal, verified, outcomes } = makeHandler();
    const res = await handler(signedRequest(clock, { body: verificationBody(), type: 'webhook_callback_verification' }));
    assert.equal(res.status, 200);
    assert.equal(res.headers?.['Content-Type'], 'text/plain');
    assert.equal(res.body, CHALLENGE);
    assert.equal(journal.calls, 0);
    assert.equal(verified.length, 1);
    assert.equal((verified[0]?.[0] as { id: string }).id, 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4');
    assert.deepEqual(outcomes, ['challenge']);
  });

  test('webhook handler answers a conduit shard challenge (no subscription) with the raw challenge', async () => {
    const { handler, clock, verified } = makeHandler();
    const body = JSON.stringify({ challenge: 'abc-123', conduit_shard: { conduit_id: '3f1c2a87', shard: '42' } });
    const res = await handler(signedRequest(clock, { body, type: 'webhook_callback_verification' }));
    assert.equal(res.status, 200);
    assert.equal(res.body, 'abc-123');
    assert.deepEqual(verified, [[undefined, { conduit_id: '3f1c2a87', shard: '42' }]]);
  });

  test('webhook handler journals a new notification once and answers 204', async () => {
    const { handler, clock, journal, outcomes } = makeHandler();
    const res = await handler(signedRequest(clock, { body: notificationBody(), messageId: 'm-1' }));
    assert.equal(res.status, 204);
    assert.equal(res.body, undefined);
    assert.equal(journal.entries.length, 1);
    assert.equal(journal.entries[0]?.message_id, 'm-1');
    assert.equal(journal.entries[0]?.message_type, 'notification');
    assert.deepEqual(journal.entries[0]?.event, JSON.parse(notificationBody()).event);
    assert.deepEqual(outcomes, ['notification']);
  });

  test('webhook handler answers 204 to an already seen message id without journaling it again', async () => {
    const { handler, clock, journal, outcomes } = makeHandler();
    const req = signedRequest(clock, { body: notificationBody(), messageId: 'm-dup' });
    assert.equal((await handler(req)).status, 204);
    await clock.advance(5 * 60_000);
    const again = signedRequest(clock, { body: notificationBody(), messageId: 'm-dup' });
    assert.equal((await handler(again)).status, 204);
    assert.equal(journal.calls, 1);
    assert.deepEqual(outcomes, ['notification', 'duplicate']);
  });

  test('webhook handler journals a revocation, answers 204, then calls onRevocation once', async () => {
    const { handler, clock, journal, revoked } = makeHandler();
    const req = signedRequest(clock, { body: revocationBody('authorization_revoked'), type: 'revocation', messageId: 'r-1' });
    assert.equal((await handler(req)).status, 204);
    assert.equal(journal.entries.length, 1);
    assert.equal(journal.entries[0]?.message_type, 'revocation');
    assert.equal(journal.entries[0]?.subscription.status, 'authorization_revoked');
    assert.equal(journal.entries[0]?.event, undefined);
    assert.deepEqual(revoked, [
      {
        id: 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4',
        type: 'channel.follow',
        version: '2',
        status: 'authorization_revoked',
        condition: { broadcaster_user_id: '12826', moderator_user_id: '12826' },
      },
    ]);
    assert.equal((await handler(signedRequest(clock, { body: revocationBody(), type: 'revocation', messageId: 'r-1' }))).status, 204);
    assert.equal(journal.calls, 1);
    assert.equal(revoked.length, 1);
  });

  test('webhook handler still answers 204 when onRevocation throws', async () => {
    const { handler, clock, journal } = makeHandler({
      onRevocation: () => {
        throw new Error('callback bug');
      },
    });
    const res = await handler(signedRequest(clock, { body: revocationBody(), type: 'revocation' }));
    assert.equal(res.status, 204);
    assert.equal(journal.entries.length, 1);
  });

  test('webhook handler journals a batched events array as sent', async () => {
    const { handler, clock, journal } = makeHandler();
    const events = [{ id: 'a', data: { x: 1 } }, { id: 'b', data: { x: 2 } }];
    const body = JSON.stringify({ subscription: { ...JSON.parse(notificationBody()).subscription, type: 'drop.entitlement.grant' }, events });
    assert.equal((await handler(signedRequest(clock, { body }))).status, 204);
    assert.deepEqual(journal.entries[0]?.events, events);
    assert.equal(journal.entries[0]?.event, undefined);
  });

  test('webhook handler answers 400 to an unknown message type', async () => {
    const { handler, clock, journal, outcomes } = makeHandler();
    const res = await handler(signedRequest(clock, { body: notificationBody(), type: 'mystery' }));
    assert.equal(res.status, 400);
    assert.equal(journal.calls, 0);
    assert.deepEqual(outcomes, ['unknown_type']);
  });
});

describe('webhook handler: signatures', () => {
  const body = notificationBody();
  const good = (clock: { now(): number }) => {
    const timestamp = nanoTimestamp(clock.now());
    return { timestamp, sig: signMessage(SECRET, 'sig-1', timestamp, body) };
  };
  const shapes: Array<[string, (g: { timestamp: string; sig: string }) => Parameters<typeof signedRequest>[1]]> = [
    ['missing header', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: undefined })],
    ['no sha256= prefix', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: g.sig.slice(7) })],
    ['upper-case hex', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: 'sha256=' + g.sig.slice(7).toUpperCase() })],
    ['sha1= prefix', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: 'sha1=' + g.sig.slice(7) })],
    ['another secret', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, secret: OTHER_SECRET })],
    [
      'valid signature over a re-serialised body',
      (g) => ({ body: JSON.stringify(JSON.parse(body), null, 2), messageId: 'sig-1', timestamp: g.timestamp, signature: g.sig }),
    ],
    ['truncated hex', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: g.sig.slice(0, -2) })],
    ['empty header', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: '' })],
    ['header sent twice', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: [g.sig, g.sig] })],
    ['signature of another message id', (g) => ({ body, messageId: 'sig-2', timestamp: g.timestamp, signature: g.sig })],
    ['trailing space', (g) => ({ body, messageId: 'sig-1', timestamp: g.timestamp, signature: g.sig + ' ' })],
  ];
  for (const [name, build] of shapes) {
    test(`webhook handler answers 403 to a bad signature: ${name}`, async () => {
      const { handler, clock, journal, outcomes } = makeHandler();
      const res = await handler(signedRequest(clock, build(good(clock))));
      assert.equal(res.status, 403);
      assert.equal(res.body, 'invalid signature');
      assert.equal(journal.calls, 0);
      assert.deepEqual(outcomes, ['bad_signature']);
    });
  }

  test('webhook handler accepts the good signature that the 403 cases start from', async () => {
    const { handler, clock, journal } = makeHandler();
    const g = good(clock);
    const res = await handler(signedRequest(clock, { body, messageId: 'sig-1', timestamp: g.timestamp, signature: g.sig }));
    assert.equal(res.status, 204);
    assert.equal(journal.calls, 1);
  });

  test('webhook handler accepts a message signed with the second secret of the list', async () => {
    const { handler, clock, journal } = makeHandler({ secrets: () => [SECRET, OTHER_SECRET] });
    const res = await handler(signedRequest(clock, { body, secret: OTHER_SECRET }));
    assert.equal(res.status, 204);
    assert.equal(journal.calls, 1);
  });

  test('webhook handler answers 403 when no secret is configured', async () => {
    const { handler, clock } = makeHandler({ secrets: () => [''] });
    assert.equal((await handler(signedRequest(clock, { body, secret: '' }))).status, 403);
  });

  test('webhook handler checks the signature before parsing the body', async () => {
    const { handler, clock } = makeHandler();
    const res = await handler(signedRequest(clock, { body: '{not json', secret: OTHER_SECRET }));
    assert.equal(res.status, 403);
  });

  test('webhook handler error answers never contain a secret', async () => {
    const { handler, clock } = makeHandler({ secrets: () => [SECRET, OTHER_SECRET] });
    const res = await handler(signedRequest(clock, { body, secret: 'wrong-secret-xyz' }));
    assert.equal(res.status, 403);
    assert.ok(!String(res.body).includes(SECRET) && !String(res.body).includes(OTHER_SECRET));
    assert.ok(String(res.body).length < 40);
  });
});

describe('webhook handler: timestamps', () => {
  const cases: Array<[string, number, number]> = [
    ['11 minutes old', -11 * 60_000, 403],
    ['11 minutes in the future', 11 * 60_000, 403],
    ['9 minutes old', -9 * 60_000, 204],
    ['9 minutes in the future', 9 * 60_000, 204],
    ['exactly 10 minutes old', -10 * 60_000, 204],
    ['10 minutes and 1 ms old', -10 * 60_000 - 1, 403],
  ];
  for (const [name, offset, status] of cases) {
    test(`webhook handler answers ${status} to a notification ${name}`, async () => {
      const { handler, clock, journal, outcomes } = makeHandler();
      const timestamp = new Date(clock.now() + offset).toISOString();
      const res = await handler(signedRequest(clock, { body: notificationBody(), timestamp }));
      assert.equal(res.status, status);
      assert.equal(journal.calls, status === 204 ? 1 : 0);
      const expected = status === 204 ? 'notification' : offset < 0 ? 'stale' : 'future';
      assert.deepEqual(outcomes, [expected]);
    });
  }

  test('webhook handler applies the window to a stale challenge too', async () => {
    const { handler, clock, verified } = makeHandler();
    const timestamp = nanoTimestamp(clock.now() - 11 * 60_000);
    const res = await handler(signedRequest(clock, { body: verificationBody(), type: 'webhook_callback_verification', timestamp }));
    assert.equal(res.status, 403);
    assert.equal(verified.length, 0);
  });

  test('webhook handler reads timestamps with a UTC offset', async () => {
    const { handler, clock } = makeHandler();
    // 2026-11-24T10:00:00Z is 12:00:00+02:00.
    const res = await handler(signedRequest(clock, { body: notificationBody(), timestamp: '2026-11-24T12:00:00.123456789+02:00' }));
    assert.equal(res.status, 204);
  });

  test('webhook handler honours a custom replay window', async () => {
    const { handler, clock } = makeHandler({ replayWindowMs: 60_000 });
    const timestamp = nanoTimestamp(clock.now() - 2 * 60_000);
    assert.equal((await handler(signedRequest(clock, { body: notificationBody(), timestamp }))).status, 403);
  });
});
