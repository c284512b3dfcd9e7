import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, requireWebhook } from '../../src/config/settings.js';
import {
  deliveryTarget,
  loadSubscriptionsFile,
  MAX_SUBSCRIPTIONS_FILE_BYTES,
  ownershipOf,
  parseSubscriptionsFile,
  withTarget,
} from '../../src/config/subscriptions-file.js';
import { subscriptionKey } from '../../src/twitch/subscription.js';
import { ConfigError } from '../../src/lib/errors.js';

const CALLBACK = 'https://events.example.com/twitch/eventsub';
const SECRET = 'hunter2-webhook-secret';
const yamlOpts = { fileName: 'subs.yaml', callbackUrl: CALLBACK, secret: SECRET };
const jsonOpts = { ...yamlOpts, fileName: 'subs.json' };

/** Asserts a one-line CONFIG_INVALID error, exit 78, that never includes the secret; returns its message. */
function configFailure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.exitCode, 78);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    assert.ok(!err.message.includes(SECRET));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

const entry = (body: string): string => `subscriptions:\n  - type: stream.online\n    version: "1"\n${body}`;
const cond = '    condition: { broadcaster_user_id: "12345" }\n';

describe('parseSubscriptionsFile()', () => {
  it('reads YAML, converts integer versions and IDs, and resolves the transport from settings', () => {
    const text = `subscriptions:
  - type: stream.online
    version: 1
    condition: { broadcaster_user_id: 12345 }
  - type: channel.follow
    version: "2"
    condition:
      broadcaster_user_id: "1"
      moderator_user_id: "2"
    transport: { method: webhook }
`;
    const list = parseSubscriptionsFile(text, yamlOpts);
    assert.deepEqual(list, [
      {
        type: 'stream.online',
        version: '1',
        condition: { broadcaster_user_id: '12345' },
        transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
      },
      {
        type: 'channel.follow',
        version: '2',
        condition: { broadcaster_user_id: '1', moderator_user_id: '2' },
        transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
      },
    ]);
    assert.ok(Object.isFrozen(list) && Object.isFrozen(list[0]) && Object.isFrozen(list[0]?.condition));
    assert.ok(Object.isFrozen(list[0]?.transport));
  });

  it('reads JSON, and names the JSON syntax error with its line and column', () => {
    const ok = '{"subscriptions":[{"type":"user.update","version":1,"condition":{"user_id":42}}]}';
    assert.deepEqual(parseSubscriptionsFile(ok, jsonOpts)[0]?.condition, { user_id: '42' });
    const msg = configFailure(() => parseSubscriptionsFile('{\n  "subscriptions": [,]\n}', jsonOpts));
    assert.match(msg, /^subs\.json:2:\d+: invalid JSON: /);
  });

  it('names a YAML syntax error with its line and column', () => {
    const msg = configFailure(() => parseSubscriptionsFile('subscriptions:\n  - type: a\n    type: b\n', yamlOpts));
    assert.match(msg, /^subs\.yaml:3:\d+: invalid YAML: Map keys must be unique/);
  });

  it('accepts an empty list without a callback, and rejects an empty file', () => {
    assert.deepEqual(parseSubscriptionsFile('subscriptions: []\n', { fileName: 'subs.yaml' }), []);
    assert.equal(
      configFailure(() => parseSubscriptionsFile('# nothing\n', yamlOpts)),
      'subs.yaml: the file is empty: expected a "subscriptions" list',
    );
  });

  const cases: [string, string, string][] = [
    [
      'an unknown entry key',
      entry(cond + '    colour: red\n'),
      'subs.yaml:2: subscriptions[0].colour: unknown key (allowed: type, version, condition, transport)',
    ],
    [
      'an unknown top-level key',
      'subscriptions: []\nprune: true\n',
      'subs.yaml: prune: unknown key (allowed: subscriptions)',
    ],
    [
      'a top-level list',
      '- type: stream.online\n',
      'subs.yaml: expected a mapping with a "subscriptions" list, got a list',
    ],
    ['a missing condition', entry(''), 'subs.yaml:2: subscriptions[0].condition: is required'],
    [
      'an empty condition',
      entry('    condition: {}\n'),
      'subs.yaml:2: subscriptions[0].condition: must name at least one condition field',
    ],
    [
      'a condition that is a list',
      entry('    condition: [1]\n'),
      'subs.yaml:2: subscriptions[0].condition: expected a mapping such as { broadcaster_user_id: "12345" }, got a list',
    ],
    [
      'a user ID that is not digits',
      entry('    condition: { broadcaster_user_id: abc }\n'),
      'subs.yaml:2: subscriptions[0].condition.broadcaster_user_id: expected a string of digits (a Twitch user ID such as "12345")',
    ],
    [
      'a condition value that is a mapping',
      entry('    condition: { reward_id: { a: 1 } }\n'),
      'subs.yaml:2: subscriptions[0].condition.reward_id: expected a string, got a mapping',
    ],
    [
      'an ID too large for a number',
      entry('    condition: { broadcaster_user_id: 123456789012345678901 }\n'),
      'subs.yaml:2: subscriptions[0].condition.broadcaster_user_id: is too large to be read exactly as a number: quote it',
    ],
    [
      'a fractional version',
      'subscriptions:\n  - type: stream.online\n    version: 1.5\n' + cond,
      'subs.yaml:2: subscriptions[0].version: expected a string such as "1", got a number',
    ],
    [
      'a missing version',
      'subscriptions:\n  - type: stream.online\n' + cond,
      'subs.yaml:2: subscriptions[0].version: is required',
    ],
    [
      'a malformed type',
      'subscriptions:\n  - type: Stream Online\n    version: "1"\n' + cond,
      'subs.yaml:2: subscriptions[0].type: expected an EventSub type such as "stream.online"',
    ],
    [
      'a websocket transport',
      entry(cond + '    transport: { method: websocket }\n'),
      'subs.yaml:2: subscriptions[0].transport.method: websocket transport needs a user token; eventsubd manages webhook and conduit subscriptions (app token)',
    ],
    [
      'a conduit transport in webhook mode',
      entry(cond + '    transport: { method: conduit }\n'),
      'subs.yaml:2: subscriptions[0].transport.method: conduit transport does not match EVENTSUBD_TRANSPORT=webhook: every declared ' +
        'subscription follows EVENTSUBD_TRANSPORT; set EVENTSUBD_TRANSPORT=conduit, or remove this key',
    ],
    [
      'an unknown transport method',
      entry(cond + '    transport: { method: pigeon }\n'),
      'subs.yaml:2: subscriptions[0].transport.method: expected "webhook" or "conduit" (or no transport key: it follows EVENTSUBD_TRANSPORT)',
    ],
    [
      'a conduit id in the transport',
      entry(cond + '    transport: { method: conduit, conduit_id: abc }\n'),
      'subs.yaml:2: subscriptions[0].transport.conduit_id: is not allowed here: the conduit is EVENTSUBD_CONDUIT_ID or the one the daemon creates',
    ],
    [
      'a secret in the transport',
      entry(cond + `    transport: { method: webhook, secret: ${SECRET} }\n`),
      'subs.yaml:2: subscriptions[0].transport.secret: is not allowed here: the secret comes from EVENTSUB_SECRET',
    ],
    [
      'a callback in the transport',
      entry(cond + '    transport: { method: webhook, callback: "https://x.example" }\n'),
      'subs.yaml:2: subscriptions[0].transport.callback: is not allowed here: the callback is EVENTSUB_CALLBACK_URL',
    ],
  ];
  for (const [what, text, expected] of cases) {
    it(`rejects ${what} with one line naming the path and the rule`, () => {
      assert.equal(configFailure(() => parseSubscriptionsFile(text, yamlOpts)), expected);
    });
  }

  it('lists every problem of an entry in one line, each with its line', () => {
    const text = 'subscriptions:\n  - type: 1\n    version: true\n    condition: {}\n';
    assert.equal(
      configFailure(() => parseSubscriptionsFile(text, yamlOpts)),
      'subs.yaml: 3 problems: line 2: subscriptions[0].type: expected a string, got an integer; ' +
        'line 2: subscriptions[0].version: expected a string such as "1", got a boolean; ' +
        'line 2: subscriptions[0].condition: must name at least one condition field',
    );
  });

  it('rejects a duplicate entry naming both indexes, whatever the key order or integer form', () => {
    const text = `subscriptions:
  - { type: stream.online, version: "1", condition: { broadcaster_user_id: "1" } }
  - { type: channel.follow, version: "2", condition: { broadcaster_user_id: "1", moderator_user_id: "2" } }
  - { type: channel.follow, version: 2, condition: { moderator_user_id: 2, broadcaster_user_id: 1 } }
`;
    assert.equal(
      configFailure(() => parseSubscriptionsFile(text, yamlOpts)),
      'subs.yaml:4: subscriptions[2] duplicates subscriptions[1] (channel.follow v2 broadcaster_user_id=1 moderator_user_id=2)',
    );
  });

  it('rejects more than 10,000 entries and more than 5 MiB', () => {
    const one = { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1' } };
    const many = JSON.stringify({ subscriptions: Array.from({ length: 10_001 }, () => one) });
    assert.equal(
      configFailure(() => parseSubscriptionsFile(many, jsonOpts)),
      'subs.json: subscriptions: must have at most 10000 entries',
    );
    const huge = 'subscriptions: []\n' + '#'.repeat(MAX_SUBSCRIPTIONS_FILE_BYTES);
    assert.equal(
      configFailure(() => parseSubscriptionsFile(huge, yamlOpts)),
      'subs.yaml: the file is larger than 5242880 bytes (5 MiB)',
    );
  });

  it('names EVENTSUB_CALLBACK_URL or EVENTSUB_SECRET when the file declares subscriptions without them', () => {
    const text = entry(cond);
    let err: unknown;
    assert.throws(() => parseSubscriptionsFile(text, { fileName: 'subs.yaml', secret: SECRET }), (e) => ((err = e), true));
    assert.equal((err as ConfigError).setting, 'EVENTSUB_CALLBACK_URL');
    assert.equal(
      configFailure(() => parseSubscriptionsFile(text, { fileName: 'subs.yaml', secret: SECRET })),
      'subs.yaml declares webhook subscriptions but EVENTSUB_CALLBACK_URL is not set',
    );
    assert.equal(
      configFailure(() => parseSubscriptionsFile(text, { fileName: 'subs.yaml', callbackUrl: CALLBACK })),
      'subs.yaml declares webhook subscriptions but EVENTSUB_SECRET is not set',
    );
  });
});

describe('parseSubscriptionsFile() and the transport (EVENTSUBD_TRANSPORT)', () => {
  const CONDUIT_ID = 'bfcfc993-26b1-b876-44d9-afe75a379dac';
  const conduit = { method: 'conduit', conduit_id: CONDUIT_ID } as const;

  it('checks a file without a target (conduit mode before the conduit exists): entries come back without one', () => {
    const list = parseSubscriptionsFile(entry(cond + '    transport: { method: conduit }\n'), { fileName: 'subs.yaml', transport: 'conduit' });
    assert.deepEqual(list, [{ type: 'stream.online', version: '1', condition: { broadcaster_user_id: '12345' } }]);
    assert.ok(Object.isFrozen(list) && Object.isFrozen(list[0]));
    assert.equal(parseSubscriptionsFile(entry(cond), { fileName: 'subs.yaml' }).length, 1, 'a check needs no webhook settings either');
  });

  it('gives every entry the target, frozen; withTarget() does the same later', () => {
    const list = parseSubscriptionsFile(entry(cond), { fileName: 'subs.yaml', target: conduit });
    assert.deepEqual(list.map((d) => d.transport), [conduit]);
    assert.ok(Object.isFrozen(list[0]?.transport));
    const later = withTarget(parseSubscriptionsFile(entry(cond), { fileName: 'subs.yaml', transport: 'conduit' }), conduit);
    assert.deepEqual(later, list);
    assert.ok(Object.isFrozen(later) && Object.isFrozen(later[0]));
  });

  it('rejects a webhook transport key in conduit mode, naming EVENTSUBD_TRANSPORT', () => {
    assert.equal(
      configFailure(() => parseSubscriptionsFile(entry(cond + '    transport: { method: webhook }\n'), { fileName: 'subs.yaml', target: conduit })),
      'subs.yaml:2: subscriptions[0].transport.method: webhook transport does not match EVENTSUBD_TRANSPORT=conduit: every declared ' +
        'subscription follows EVENTSUBD_TRANSPORT; set EVENTSUBD_TRANSPORT=webhook, or remove this key',
    );
  });
});

describe('deliveryTarget() and ownershipOf()', () => {
  const BASE = { TWITCH_CLIENT_ID: 'client', TWITCH_CLIENT_SECRET: 'client-secret-value', EVENTSUBD_STATE_DIR: '/tmp/unused' };
  const WEBHOOK = { EVENTSUB_CALLBACK_URL: CALLBACK, EVENTSUB_SECRET: SECRET };
  const CONDUIT_ID = 'bfcfc993-26b1-b876-44d9-afe75a379dac';

  it('webhook mode: the callback and the first secret, or a ConfigError naming the missing setting', () => {
    assert.deepEqual(deliveryTarget(loadConfig({ ...BASE, ...WEBHOOK, EVENTSUB_SECRET: `${SECRET},older-secret-value` })), {
      method: 'webhook',
      callback: CALLBACK,
      secret: SECRET,
    });
    // The same rule and words as requireWebhook(), which settings.ts keeps for the receiver and the other commands.
    for (const raw of [{ ...BASE, EVENTSUB_SECRET: SECRET }, { ...BASE, EVENTSUB_CALLBACK_URL: CALLBACK }]) {
      const config = loadConfig(raw);
      let expected: unknown;
      assert.throws(() => requireWebhook(config), (e) => ((expected = e), true));
      assert.throws(() => deliveryTarget(config), (e) => {
        assert.ok(e instanceof ConfigError && expected instanceof ConfigError);
        assert.deepEqual([e.code, e.setting, e.message], [expected.code, expected.setting, expected.message]);
        return true;
      });
    }
  });

  it('conduit mode: the given conduit, else EVENTSUBD_CONDUIT_ID, else exit 78 naming EVENTSUBD_CONDUIT_ID', () => {
    const config = loadConfig({ ...BASE, EVENTSUBD_TRANSPORT: 'conduit' });
    assert.deepEqual(deliveryTarget(config, CONDUIT_ID), { method: 'conduit', conduit_id: CONDUIT_ID });
    const pinned = loadConfig({ ...BASE, EVENTSUBD_TRANSPORT: 'conduit', EVENTSUBD_CONDUIT_ID: 'pinned-1' });
    assert.deepEqual(deliveryTarget(pinned), { method: 'conduit', conduit_id: 'pinned-1' });
    let err: unknown;
    assert.throws(() => deliveryTarget(config), (e) => ((err = e), true));
    assert.ok(err instanceof ConfigError);
    assert.equal(err.exitCode, 78);
    assert.equal(err.setting, 'EVENTSUBD_CONDUIT_ID');
    assert.equal(err.message, 'No conduit yet: start `eventsubd run` once in conduit mode, it creates one, or set EVENTSUBD_CONDUIT_ID');
  });

  it('owns the callback (when set) and every known conduit, in either mode, without repeats', () => {
    const conduitMode = loadConfig({ ...BASE, ...WEBHOOK, EVENTSUBD_TRANSPORT: 'conduit', EVENTSUBD_CONDUIT_ID: 'pinned-1' });
    assert.deepEqual(ownershipOf(conduitMode, [CONDUIT_ID, 'replaced-1', undefined, 'pinned-1']), {
      callbackUrl: CALLBACK,
      conduitIds: [CONDUIT_ID, 'replaced-1', 'pinned-1'],
    });
    assert.deepEqual(ownershipOf(loadConfig({ ...BASE, EVENTSUBD_TRANSPORT: 'conduit' }), []), { callbackUrl: undefined, conduitIds: [] });
    assert.deepEqual(ownershipOf(loadConfig({ ...BASE, ...WEBHOOK }), [CONDUIT_ID]), { callbackUrl: CALLBACK, conduitIds: [CONDUIT_ID] });
  });
});

describe('subscriptionKey()', () => {
  it('sorts condition keys and tells every field apart', () => {
    const a = subscriptionKey('t', '1', { b: '2', a: '1' }, CALLBACK);
    assert.equal(a, subscriptionKey('t', '1', { a: '1', b: '2' }, CALLBACK));
    assert.notEqual(a, subscriptionKey('t', '2', { a: '1', b: '2' }, CALLBACK));
    assert.notEqual(a, subscriptionKey('t', '1', { a: '1', b: '2' }, 'https://other'));
    assert.notEqual(subscriptionKey('t', '1', { a: '1&b=2' }, CALLBACK), subscriptionKey('t', '1', { a: '1', b: '2' }, CALLBACK));
  });
});

describe('loadSubscriptionsFile()', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'eventsubd-subs-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function loadFailure(promise: Promise<unknown>): Promise<string> {
    let message = '';
    await assert.rejects(promise, (err) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.setting, 'EVENTSUBD_SUBSCRIPTIONS');
      message = err.message;
      return !message.includes('\n');
    });
    return message;
  }

  it('reads a file from disk', async () => {
    const path = join(dir, 'subs.json');
    await writeFile(path, '\uFEFF{"subscriptions":[{"type":"stream.online","version":"1","condition":{"broadcaster_user_id":"9"}}]}');
    const list = await loadSubscriptionsFile(path, { callbackUrl: CALLBACK, secret: SECRET });
    assert.deepEqual(list.map((d) => d.condition), [{ broadcaster_user_id: '9' }]);
    const conduit = { method: 'conduit', conduit_id: 'c-1' } as const;
    assert.deepEqual((await loadSubscriptionsFile(path, { target: conduit })).map((d) => d.transport), [conduit]);
    assert.deepEqual(await loadSubscriptionsFile(path, { transport: 'conduit' }), [{ type: 'stream.online', version: '1', condition: { broadcaster_user_id: '9' } }]);
  });

  it('reports a missing file', async () => {
    const path = join(dir, 'missing.yaml');
    assert.equal(
      await loadFailure(loadSubscriptionsFile(path, { callbackUrl: CALLBACK, secret: SECRET })),
      `${path}: cannot read the subscriptions file: it does not exist (ENOENT)`,
    );
  });

  it('reports a directory', async () => {
    assert.match(
      await loadFailure(loadSubscriptionsFile(dir, { callbackUrl: CALLBACK, secret: SECRET })),
      /cannot read the subscriptions file: it is a directory \(EISDIR\)$/,
    );
  });

  it('refuses a file over 5 MiB without parsing it', async () => {
    const path = join(dir, 'big.yaml');
    await writeFile(path, Buffer.alloc(MAX_SUBSCRIPTIONS_FILE_BYTES + 10, 0x23));
    assert.equal(
      await loadFailure(loadSubscriptionsFile(path, { callbackUrl: CALLBACK, secret: SECRET })),
      `${path}: the file is larger than 5242880 bytes (5 MiB)`,
    );
  });

  it('uses an injected reader and rejects bytes that are not UTF-8', async () => {
    const readFile = async (): Promise<Uint8Array> => new Uint8Array([0x73, 0xff, 0xfe]);
    assert.equal(
      await loadFailure(loadSubscriptionsFile('x.yaml', { callbackUrl: CALLBACK, secret: SECRET, readFile })),
      'x.yaml: the file is not valid UTF-8',
    );
  });
});
