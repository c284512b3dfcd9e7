/**
 * The receiver's fast path (fast-body.ts: the journal line assembled from the verified bytes) against the
 * slow path (parse, validate, serialise): the same requests through a handler on a file journal that takes
 * prepared records and through one whose journal only takes entries must leave the same records, byte for
 * byte when the body is compact, and the same answers. And the scanner never lets through a body JSON.parse
 * refuses.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Journal } from '../../src/journal/journal.js';
import { decodeLine } from '../../src/journal/format.js';
import { Dedup } from '../../src/receiver/dedup.js';
import { scanNotification } from '../../src/receiver/fast-body.js';
import { createWebhookHandler } from '../../src/receiver/handler.js';
import { parseBody } from '../../src/receiver/message.js';
import { DEFAULT_RECEIVER_LIMITS } from '../../src/receiver/server.js';
import type { JournalSink, ReceiverRequest } from '../../src/receiver/types.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { mulberry32 } from '../helpers/prng.js';
import { allLines, tempJournalDir } from '../journal/helpers.js';
import { SECRET, signedRequest, WEBHOOK_PATH } from './helpers.js';

const SUB = '"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"stream.online","version":"1","condition":{"broadcaster_user_id":"1337"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z","cost":0}';
const EVENT = '"event":{"id":"9001","broadcaster_user_id":"1337","broadcaster_user_login":"cool_user","broadcaster_user_name":"Cool_User","type":"live","started_at":"2020-10-11T10:11:12.123Z"}';
const COMPACT = `{${SUB},${EVENT}}`;

/** The largest body the receiver takes (DEFAULT_RECEIVER_LIMITS.maxBodyBytes), a long string in the event. */
function largest(): string {
  const shell = `{${SUB},"event":{"id":"big","text":""}}`;
  return `{${SUB},"event":{"id":"big","text":"${'x'.repeat(DEFAULT_RECEIVER_LIMITS.maxBodyBytes - Buffer.byteLength(shell))}"}}`;
}

/** [name, body, whether the fast path takes it] */
const CASES: [string, string, boolean][] = [
  ['compact, as Twitch sends it', COMPACT, true],
  ['spaces and tabs between every token', `{ \t${SUB.replace(/([,:{}])/g, '$1 ')} ,\t${EVENT.replace(/([,:])/g, ' $1 ')}\t}`, true],
  ['unicode escapes and raw UTF-8 in the event', `{${SUB},"event":{"id":"caf\\u00e9","name":"caf\u00e9 \u2603 \ud83d\ude00","e":"\\ud83d\\ude00 \\u2028 \\/ \\\\ \\" \\n \\u0000","lone":"\\ud800"}}`, true],
  ['the key order of the subscription changed, no status', '{"event":{"id":"1"},"subscription":{"condition":{"a":"b"},"version":"2","type":"channel.follow","id":"s-1"}}', true],
  ['batched events, unknown top-level keys', `{"x":[1,2,{"y":null}],${SUB},"events":[{"id":"1"},{"id":"2","n":-1.5}],"z":true}`, true],
  ['both event and events', `{${SUB},${EVENT},"events":[]}`, true],
  ['numbers that round-trip', `{${SUB},"event":{"a":0,"b":-12.5,"c":123456789012345678901234567890,"d":0.000001}}`, true],
  ['the largest allowed body', largest(), true],
  ['line breaks as whitespace', `{\n${SUB},\r\n${EVENT}\n}`, false],
  ['an exponent (1e999 would become null)', `{${SUB},"event":{"n":1e999,"m":2E-3}}`, false],
  ['minus zero', `{${SUB},"event":{"n":-0}}`, false],
  ['an escape in a subscription string', `{${SUB.replace('"stream.online"', '"stream\\u002eonline"')},${EVENT}}`, false],
  ['an escaped key', `{${SUB},"\\u0065vent":{"id":"2"},${EVENT}}`, false],
  ['a repeated event key', `{${SUB},"event":{"id":"1"},"event":{"id":"2"}}`, false],
  ['a leading BOM', `\ufeff${COMPACT}`, false],
];

interface Side {
  handler: ReturnType<typeof createWebhookHandler>;
  journal: Journal;
  dir: string;
}

async function side(t: TestContext, clock: FakeClock, fast: boolean): Promise<Side> {
  const dir = tempJournalDir(t);
  const journal = await Journal.open({ dir, clock });
  t.after(() => journal.close());
  // Without appendPrepared the handler has no fast path.
  const sink: JournalSink = fast ? journal : { append: (entry) => journal.append(entry) };
  const handler = createWebhookHandler({ webhookPath: WEBHOOK_PATH, secrets: () => [SECRET], clock, journal: sink, dedup: new Dedup({ clock }) });
  return { handler, journal, dir };
}

test('the fast path and the slow path journal the same records for the same requests', async (t) => {
  const clock = new FakeClock(Date.parse('2026-12-05T12:00:00.000Z'));
  const fast = await side(t, clock, true);
  const slow = await side(t, clock, false);
  const requests: ReceiverRequest[] = [];
  for (const [name, body, takesFast] of CASES) {
    const raw = Buffer.from(body);
    assert.equal(scanNotification(raw) !== undefined, takesFast, `${name}: the fast path ${takesFast ? 'takes' : 'leaves'} it`);
    assert.equal(parseBody('notification', raw)?.type, 'notification', `${name}: a valid notification`);
    requests.push(signedRequest(clock, { body: raw, messageId: `m-${requests.length}` }));
  }
  for (const req of requests) {
    const [a, b] = [await fast.handler(req), await slow.handler(req)];
    assert.equal(a.status, 204, `fast path answers ${String(req.headers['twitch-eventsub-message-id'])}`);
    assert.deepEqual(a, b);
    await clock.advance(1);
  }
  const fastLines = allLines(fast.dir);
  const slowLines = allLines(slow.dir);
  assert.equal(fastLines.length, CASES.length);
  assert.equal(slowLines.length, CASES.length);
  for (let i = 0; i < CASES.length; i++) {
    const [name, , takesFast] = CASES[i]!;
    const a = decodeLine(fastLines[i]!, false);
    const b = decodeLine(slowLines[i]!, false);
    assert.ok(a, `${name}: the fast path's line carries a valid checksum`);
    assert.deepStrictEqual(a, b, `${name}: the same record`);
    // A compact body gives the very same bytes (whitespace is kept as sent in the raw spans, escapes too).
    if (!takesFast || i === 0 || name.startsWith('the largest') || name.startsWith('batched') || name.startsWith('both')) {
      assert.equal(fastLines[i], slowLines[i], `${name}: the same line`);
    }
  }
  assert.deepStrictEqual(await fast.journal.read(0, 100), await slow.journal.read(0, 100));
});

test('a redelivery through the fast path is a duplicate of one through the slow path and back', async (t) => {
  const clock = new FakeClock(Date.parse('2026-12-05T12:00:00.000Z'));
  const fast = await side(t, clock, true);
  const req = signedRequest(clock, { body: COMPACT, messageId: 'same' });
  assert.equal((await fast.handler(req)).status, 204);
  const again = signedRequest(clock, { body: `{\n${SUB},${EVENT}}`, messageId: 'same' });
  assert.equal((await fast.handler(again)).status, 204);
  assert.equal(allLines(fast.dir).length, 1);
});

test('the scanner accepts no body JSON.parse refuses, and what it accepts journals like the slow path (2,000 mutations)', () => {
  const random = mulberry32(1605);
  const alphabet = '{}[]":,\\ \t0123456789-+.eEtrufalsn\u00e9x';
  const bases = [COMPACT, CASES[2]![1], CASES[4]![1]];
  let accepted = 0;
  for (let n = 0; n < 2000; n++) {
    let text = bases[n % bases.length]!;
    for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
      const at = Math.floor(random() * text.length);
      const c = alphabet[Math.floor(random() * alphabet.length)]!;
      const op = random();
      text = op < 0.33 ? text.slice(0, at) + text.slice(at + 1) : op < 0.66 ? text.slice(0, at) + c + text.slice(at) : text.slice(0, at) + c + text.slice(at + 1);
    }
    const raw = Buffer.from(text);
    const spans = scanNotification(raw);
    if (spans === undefined) continue;
    accepted += 1;
    assert.doesNotThrow(() => JSON.parse(text), `accepted by the scanner but not JSON: ${text}`);
    const parsed = parseBody('notification', raw);
    assert.equal(parsed?.type, 'notification', `accepted by the scanner but not a notification: ${text}`);
    if (parsed?.type !== 'notification') continue;
    assert.deepStrictEqual(spans.subscription, parsed.subscription, text);
    if (spans.event) assert.deepStrictEqual(JSON.parse(raw.toString('utf8', ...spans.event)), parsed.event, text);
    if (spans.events) assert.deepStrictEqual(JSON.parse(raw.toString('utf8', ...spans.events)), parsed.events, text);
  }
  assert.ok(accepted > 100, `enough mutated bodies stay valid to mean something: ${accepted}`);
});
