/**
 * `eventsubd trigger`, run in-process against a real loopback receiver that checks signatures: the target
 * and secret taken from the settings, twitch-cli's short names, --count, every catalogue type.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { catalogueEntries } from '../../src/twitch/catalogue.js';
import { TRIGGER_ALIASES } from '../../src/twitch/sample-events.js';
import { verifySignature } from '../../src/twitch/signature.js';
import { cliInProcess } from '../helpers/cli-in-process.js';

const SECRET = 'trigger-test-secret-0123';

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  signed: boolean;
}

/** A receiver on 127.0.0.1 that records each request and answers `status` (204 by default). */
async function receiver(t: TestContext, answer: (n: number) => number = () => 204): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const h = req.headers;
      const signed = verifySignature([SECRET], String(h['twitch-eventsub-message-id']), String(h['twitch-eventsub-message-timestamp']), raw, String(h['twitch-eventsub-message-signature']));
      seen.push({ path: req.url ?? '', headers: h, body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, signed });
      res.writeHead(answer(seen.length)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, seen };
}

const cli = cliInProcess;

test('trigger without --to and --secret sends to EVENTSUBD_LISTEN + the callback path, signed with the first EVENTSUB_SECRET', async (t) => {
  const { port, seen } = await receiver(t);
  const res = await cli(['trigger', 'stream.online'], {
    EVENTSUBD_LISTEN: `127.0.0.1:${port}`,
    EVENTSUB_SECRET: `${SECRET},second-secret-0123456`,
    EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
  });
  assert.equal(res.code, 0, res.err);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.path, '/twitch/eventsub');
  assert.equal(seen[0]!.signed, true, 'signed with the first secret');
  assert.ok(!res.out.includes(SECRET) && !res.err.includes(SECRET), 'the secret is never printed');
});

test('trigger without a secret anywhere: CONFIG_INVALID naming EVENTSUB_SECRET, exit 78', async () => {
  const res = await cli(['trigger', 'stream.online', '--to', 'http://127.0.0.1:9/eventsub']);
  assert.equal(res.code, 78);
  assert.match(res.err, /^eventsubd: CONFIG_INVALID: .*--secret.*EVENTSUB_SECRET/);
  assert.equal(res.err.split('\n').length, 2, 'one line');
});

test("trigger accepts twitch-cli's short names: cheer, follow, subscribe, gift, raid...", async (t) => {
  const { port, seen } = await receiver(t);
  const to = `http://127.0.0.1:${port}/eventsub`;
  for (const [name, type] of [['cheer', 'channel.cheer'], ['follow', 'channel.follow'], ['subscribe', 'channel.subscribe'], ['raid', 'channel.raid'], ['streamup', 'stream.online'], ['unban-request-create', 'channel.unban_request.create']]) {
    const res = await cli(['trigger', name!, '--to', to, '--secret', SECRET]);
    assert.equal(res.code, 0, `${name}: ${res.err}`);
    assert.equal(seen.at(-1)!.headers['twitch-eventsub-subscription-type'], type, name);
  }
  const gift = await cli(['trigger', 'gift', '--to', to, '--secret', SECRET]);
  assert.equal(gift.code, 0);
  assert.equal((seen.at(-1)!.body.event as { is_gift: boolean }).is_gift, true, 'gift is a channel.subscribe with is_gift');
  const unknown = await cli(['trigger', 'chear', '--to', to, '--secret', SECRET]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.err, 'eventsubd: USAGE_ERROR: Unknown type "chear": did you mean "cheer"?\n');
  const far = await cli(['trigger', 'nothing-like-it', '--to', to, '--secret', SECRET]);
  assert.match(far.err, /USAGE_ERROR: Unknown type "nothing-like-it": known names are .*channel\.cheer.*, cheer,/);
});

test('every twitch-cli short name maps to a catalogue type', () => {
  const types = new Set(catalogueEntries().map((e) => e.type));
  for (const [name, alias] of Object.entries(TRIGGER_ALIASES)) assert.ok(types.has(alias.type), `${name} -> ${alias.type}`);
});

test('trigger sends every type and version of the catalogue, with the example event and a matching subscription', async (t) => {
  const { port, seen } = await receiver(t);
  const to = `http://127.0.0.1:${port}/eventsub`;
  for (const entry of catalogueEntries()) {
    const res = await cli(['trigger', entry.type, '--version', entry.version, '--to', to, '--secret', SECRET, '--broadcaster', '4242']);
    assert.equal(res.code, 0, `${entry.type}@${entry.version}: ${res.err}`);
    const last = seen.at(-1)!;
    assert.equal(last.signed, true);
    const sub = last.body.subscription as { type: string; version: string; condition: Record<string, string> };
    assert.equal(sub.type, entry.type);
    assert.equal(sub.version, entry.version);
    assert.equal(last.headers['twitch-eventsub-subscription-version'], entry.version);
    for (const field of entry.required) assert.ok(sub.condition[field], `${entry.type}: condition.${field}`);
    assert.ok(last.body.event !== undefined || last.body.events !== undefined, `${entry.type}: event or events`);
    if (sub.condition.broadcaster_user_id) assert.equal(sub.condition.broadcaster_user_id, '4242', `${entry.type}: --broadcaster`);
  }
  const chat = await cli(['trigger', 'channel.chat.message', '--to', to, '--secret', SECRET]);
  assert.equal(chat.code, 0);
  const event = seen.at(-1)!.body.event as Record<string, unknown>;
  for (const field of ['source_broadcaster_user_id', 'source_message_id', 'source_badges', 'is_source_only']) assert.ok(field in event, field);
  const unknownVersion = await cli(['trigger', 'channel.follow', '--version', '1', '--to', to, '--secret', SECRET]);
  assert.equal(unknownVersion.code, 2);
  assert.match(unknownVersion.err, /Unknown version "1" of channel.follow: known versions are 2/);
});

test('trigger --count N sends N messages with distinct message ids and prints a summary; exit 1 when one is not 2xx', async (t) => {
  const { port, seen } = await receiver(t, (n) => (n === 3 ? 500 : 204));
  const to = `http://127.0.0.1:${port}/eventsub`;
  const res = await cli(['trigger', 'cheer', '--count', '5', '--to', to, '--secret', SECRET, '--json']);
  assert.equal(seen.length, 5);
  assert.equal(new Set(seen.map((s) => s.headers['twitch-eventsub-message-id'])).size, 5, 'distinct message ids');
  assert.equal(res.code, 1);
  const summary = JSON.parse(res.out) as { count: number; succeeded: number; failed: number; by_status: Record<string, number> };
  assert.equal(summary.count, 5);
  assert.equal(summary.succeeded, 4);
  assert.equal(summary.failed, 1);
  assert.deepEqual(summary.by_status, { '204': 4, '500': 1 });
  const text = await cli(['trigger', 'cheer', '--count', '2', '--to', to, '--secret', SECRET]);
  assert.equal(text.code, 0);
  assert.match(text.out, /^2 notification channel\.cheer v1 -> .*: 2 answered 2xx, 0 failed/);
  for (const bad of ['0', 'x', '10001']) {
    const r = await cli(['trigger', 'cheer', '--count', bad, '--to', to, '--secret', SECRET]);
    assert.equal(r.code, 2, `--count ${bad}`);
  }
  const clash = await cli(['trigger', 'cheer', '--count', '2', '--message-id', 'same', '--to', to, '--secret', SECRET]);
  assert.equal(clash.code, 2);
});
