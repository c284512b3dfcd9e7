/**
 * Issue #13: the subscriptions file is checked against the catalogue of types Twitch accepts, so that a typo
 * stops every command that reads the file (config check, run, subscriptions sync, authorize) with exit 78 and
 * the nearest valid name, instead of printing "Configuration OK." and failing at Twitch.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { checkEntry } from '../../src/config/catalogue-check.js';
import { ConfigProblemsError, MAX_LISTED } from '../../src/config/problems.js';
import { parseSubscriptionsFile } from '../../src/config/subscriptions-file.js';
import { catalogueEntries } from '../../src/twitch/catalogue.js';
import { tempDir } from '../helpers/cli.js';
import { cliInProcess } from '../helpers/cli-in-process.js';

const opts = { fileName: 'subs.yaml', callbackUrl: 'https://events.example.com/cb', secret: 'catalogue-secret-0123' };

/** The error of parsing `text`, checked to be CONFIG_INVALID, exit 78, one line. */
function failure(text: string, fileName = 'subs.yaml'): ConfigProblemsError {
  try {
    parseSubscriptionsFile(text, { ...opts, fileName });
  } catch (err) {
    assert.ok(err instanceof ConfigProblemsError, `expected a ConfigProblemsError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.exitCode, 78);
    assert.equal(err.setting, 'EVENTSUBD_SUBSCRIPTIONS');
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err;
  }
  assert.fail('expected the file to be refused');
}

const one = (type: string, version: string, condition: string): string =>
  `subscriptions:\n  - type: ${type}\n    version: "${version}"\n    condition: ${condition}\n`;

describe('parseSubscriptionsFile() against the catalogue', () => {
  it('refuses an unknown type with the nearest known type', () => {
    assert.equal(
      failure(one('channel.folow', '2', '{ broadcaster_user_id: "1", moderator_user_id: "1" }')).message,
      'subs.yaml:2: subscriptions[0].type: "channel.folow" is not an EventSub subscription type: did you mean "channel.follow"?',
    );
  });

  it('refuses an unknown type far from every known one, pointing at the list', () => {
    assert.equal(
      failure(one('stream.started.now', '1', '{ broadcaster_user_id: "1" }')).message,
      'subs.yaml:2: subscriptions[0].type: "stream.started.now" is not an EventSub subscription type: see the subscription types in the README',
    );
  });

  it('refuses an unknown version of a known type, naming the versions that exist', () => {
    assert.equal(
      failure(one('channel.follow', '1', '{ broadcaster_user_id: "1", moderator_user_id: "1" }')).message,
      'subs.yaml:2: subscriptions[0].version: channel.follow has no version "1": use "2"',
    );
    assert.equal(
      failure(one('channel.moderate', '3', '{ broadcaster_user_id: "1", moderator_user_id: "1" }')).message,
      'subs.yaml:2: subscriptions[0].version: channel.moderate has no version "3": use "1", "2"',
    );
  });

  it('refuses an unknown condition field with the missing field it stands for', () => {
    assert.equal(
      failure(one('channel.follow', '2', '{ broadcaster_id: "1", moderator_user_id: "1" }')).message,
      'subs.yaml:2: subscriptions[0].condition.broadcaster_id: channel.follow version 2 has no condition field "broadcaster_id": did you mean "broadcaster_user_id"?',
    );
  });

  it('refuses a missing required condition field', () => {
    assert.equal(
      failure(one('channel.follow', '2', '{ broadcaster_user_id: "1" }')).message,
      'subs.yaml:2: subscriptions[0].condition: channel.follow version 2 requires the condition field "moderator_user_id"',
    );
  });

  it('refuses an unknown condition field unlike any allowed one, listing the allowed fields', () => {
    assert.equal(
      failure(one('stream.online', '1', '{ broadcaster_user_id: "1", colour: "red" }')).message,
      'subs.yaml:2: subscriptions[0].condition.colour: stream.online version 1 has no condition field "colour": allowed: broadcaster_user_id',
    );
  });

  it('refuses channel.raid without exactly one of from_ and to_broadcaster_user_id', () => {
    assert.equal(
      failure(one('channel.raid', '1', '{ from_broadcaster_user_id: "1", to_broadcaster_user_id: "2" }')).message,
      'subs.yaml:2: subscriptions[0].condition: channel.raid version 1 needs exactly one of the condition fields from_broadcaster_user_id, to_broadcaster_user_id: 2 set',
    );
  });

  it('reports every problem of the file at once, in file order, each with its line', () => {
    const text = `subscriptions:
  - type: channel.folow
    version: "2"
    condition: { broadcaster_user_id: "1", moderator_user_id: "1" }
  - type: stream.online
    version: "1"
    condition: { broadcaster_user_id: "1" }
  - type: channel.follow
    version: "1"
    condition: { broadcaster_user_id: "1", moderator_user_id: "1" }
  - { type: channel.follow, version: "2", condition: { broadcaster_id: "1", moderator_user_id: "1" } }
  - typ: stream.offline
    version: "1"
    condition: { broadcaster_user_id: "1" }
`;
    const err = failure(text);
    assert.deepEqual(
      err.problems.map((p) => p.message),
      [
        'line 2: subscriptions[0].type: "channel.folow" is not an EventSub subscription type: did you mean "channel.follow"?',
        'line 8: subscriptions[2].version: channel.follow has no version "1": use "2"',
        'line 11: subscriptions[3].condition.broadcaster_id: channel.follow version 2 has no condition field "broadcaster_id": did you mean "broadcaster_user_id"?',
        'line 12: subscriptions[4].typ: unknown key: did you mean "type"?',
      ],
    );
    assert.equal(err.message, `subs.yaml: 4 problems: ${err.problems.map((p) => p.message).join('; ')}`);
  });

  it('gives the lines of a JSON file too', () => {
    const text = '{"subscriptions": [\n  {"type": "stream.online", "version": "1", "condition": {"broadcaster_user_id": "1"}},\n  {"type": "stream.onlin", "version": "1", "condition": {"broadcaster_user_id": "1"}}\n]}\n';
    assert.equal(
      failure(text, 'subs.json').message,
      'subs.json:3: subscriptions[1].type: "stream.onlin" is not an EventSub subscription type: did you mean "stream.online"?',
    );
  });

  it(`lists the first ${MAX_LISTED} problems of a long file and counts the rest`, () => {
    const entries = Array.from({ length: MAX_LISTED + 5 }, (_, i) => `  - { type: stream.onlin, version: "1", condition: { broadcaster_user_id: "${i}" } }\n`);
    const err = failure('subscriptions:\n' + entries.join(''));
    assert.equal(err.problems.length, MAX_LISTED + 5);
    assert.match(err.message, /^subs\.yaml: 25 problems: line 2: subscriptions\[0\]\.type: /);
    assert.match(err.message, /; line 21: subscriptions\[19\]\.type: [^;]+; and 5 more$/);
  });
});

describe('checkEntry()', () => {
  it('accepts every type and version of the catalogue with its required fields (and one of exactlyOneOf)', () => {
    for (const e of catalogueEntries()) {
      const fields = [...e.required, ...e.exactlyOneOf.slice(0, 1)];
      const condition = Object.fromEntries(fields.map((f) => [f, '1']));
      assert.deepEqual(checkEntry({ type: e.type, version: e.version, condition }), [], `${e.type} v${e.version}`);
    }
  });

  it('accepts the optional fields of a type', () => {
    const condition = { broadcaster_user_id: '1', reward_id: 'abc' };
    assert.deepEqual(checkEntry({ type: 'channel.channel_points_custom_reward_redemption.add', version: '1', condition }), []);
  });
});

test('config check reports the missing secrets and every entry of the file in one run, exit 78', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'subs.yaml');
  writeFileSync(file, 'subscriptions:\n  - type: channel.folow\n    version: "2"\n    condition: { broadcaster_user_id: "1", moderator_user_id: "1" }\n');
  const run = await cliInProcess(['config', 'check'], { TWITCH_CLIENT_ID: 'x', EVENTSUB_CALLBACK_URL: 'https://a.example/x', EVENTSUBD_SUBSCRIPTIONS: file });
  assert.equal(run.code, 78);
  const line = run.err.trim();
  assert.match(line, /^eventsubd: CONFIG_INVALID: Configuration: 3 problems: /);
  assert.match(line, /TWITCH_CLIENT_SECRET is required/);
  assert.match(line, /EVENTSUB_SECRET is required/);
  assert.match(line, /subs\.yaml:2: .*"channel\.folow".*did you mean "channel\.follow"/);
  assert.equal(run.out, '', 'no "Configuration OK."');
});
