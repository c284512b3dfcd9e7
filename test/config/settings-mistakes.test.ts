/**
 * Issue #13: mistakes in the settings are all reported in one run, names that look like settings but are
 * not are warned about with the nearest setting, and `config check` can show every setting without a secret.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigProblemsError } from '../../src/config/problems.js';
import { describeSettings } from '../../src/config/describe-settings.js';
import { loadConfig, SECRET_SETTINGS, SETTING_NAMES, unknownSettingWarnings } from '../../src/config/settings.js';

const BASE = { TWITCH_CLIENT_ID: 'abc123', TWITCH_CLIENT_SECRET: 'client-secret-value-1' };

function problems(raw: Record<string, string>): ConfigProblemsError {
  try {
    loadConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ConfigProblemsError, `expected a ConfigProblemsError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.exitCode, 78);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err;
  }
  assert.fail('expected the settings to be refused');
}

describe('loadConfig() reports every bad setting at once', () => {
  test('three bad values, of the schema and of the rules across settings, in one line', () => {
    const err = problems({
      ...BASE,
      EVENTSUBD_PRUNE: 'maybe',
      EVENTSUBD_JOURNAL_FSYNC: 'never',
      EVENTSUBD_LISTEN: 'localhost',
      EVENTSUB_CALLBACK_URL: 'http://events.example.com/cb',
    });
    assert.deepEqual(err.problems.map((p) => p.setting), ['EVENTSUBD_PRUNE', 'EVENTSUBD_JOURNAL_FSYNC', 'EVENTSUB_CALLBACK_URL', 'EVENTSUBD_LISTEN']);
    assert.equal(err.setting, 'EVENTSUBD_PRUNE');
    assert.equal(
      err.message,
      'Settings: 4 problems: EVENTSUBD_PRUNE must be true or false; EVENTSUBD_JOURNAL_FSYNC must be group or each; ' +
        'EVENTSUB_CALLBACK_URL must be https:// on port 443 (Twitch\'s rule): current value uses http://…:80; ' +
        'EVENTSUBD_LISTEN must be host:port (e.g. 127.0.0.1:8080): current value is "localhost"',
    );
  });

  test('one bad value keeps its plain one-line message', () => {
    assert.equal(problems({ ...BASE, EVENTSUBD_PRUNE: 'maybe' }).message, 'EVENTSUBD_PRUNE must be true or false');
  });

  test('a missing stream token beyond loopback is reported with a bad secret file', () => {
    const readFile = (): string => {
      throw Object.assign(new Error('missing'), { code: 'ENOENT' });
    };
    let err: unknown;
    try {
      loadConfig({ ...BASE, EVENTSUBD_LISTEN: '0.0.0.0:8080', EVENTSUB_SECRET_FILE: '/nope' }, { readFile });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigProblemsError);
    assert.deepEqual(err.problems.map((p) => p.setting), ['EVENTSUB_SECRET_FILE', 'EVENTSUBD_STREAM_TOKEN']);
  });
});

describe('unknownSettingWarnings()', () => {
  test('warns about our prefixes with the nearest setting, and about a near TWITCH_ name only', () => {
    const raw = {
      ...BASE,
      EVENTSUBD_LISTN: '127.0.0.1:9000',
      EVENTSUBD_FORWRD_URL: 'http://127.0.0.1:3000',
      EVENTSUB_SECRT: 'x',
      EVENTSUBD_COLOUR: 'red',
      TWITCH_CLIENT_SECRT: 'x',
      TWITCH_OAUTH_TOKEN: 'another tool',
      TWITCH_CHANNEL: 'another tool',
      eventsubd_prune: 'false',
      EVENTSUBD_LISTEN_FILE: '/etc/listen',
      PATH: '/usr/bin',
      STATE_DIRECTORY: '/var/lib/eventsubd',
      CREDENTIALS_DIRECTORY: '/run/credentials/eventsubd.service',
      TWITCH_CLIENT_SECRET_FILE: '/run/secret',
    };
    const w = 'eventsubd: warning:';
    assert.deepEqual(unknownSettingWarnings(raw), [
      `${w} EVENTSUBD_LISTN is not a setting of eventsubd and is ignored: did you mean EVENTSUBD_LISTEN?`,
      `${w} EVENTSUBD_FORWRD_URL is not a setting of eventsubd and is ignored: did you mean EVENTSUBD_FORWARD_URL?`,
      `${w} EVENTSUB_SECRT is not a setting of eventsubd and is ignored: did you mean EVENTSUB_SECRET?`,
      `${w} EVENTSUBD_COLOUR is not a setting of eventsubd and is ignored: see README.md "Settings"`,
      `${w} TWITCH_CLIENT_SECRT is not a setting of eventsubd and is ignored: did you mean TWITCH_CLIENT_SECRET?`,
      `${w} eventsubd_prune is not a setting of eventsubd and is ignored: setting names are upper case: did you mean EVENTSUBD_PRUNE?`,
      `${w} EVENTSUBD_LISTEN_FILE is not a setting of eventsubd and is ignored: only secrets (${SECRET_SETTINGS.join(', ')}) can be read from a file: set EVENTSUBD_LISTEN itself`,
    ]);
  });

  test('loadConfig() hands the warnings to options.warn and still loads: a warning is never fatal', () => {
    const lines: string[] = [];
    const c = loadConfig({ ...BASE, EVENTSUBD_LISTN: '127.0.0.1:9000' }, { warn: (l) => lines.push(l) });
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8080 }, 'the misspelt setting is not used');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /did you mean EVENTSUBD_LISTEN\?$/);
  });
});

describe('describeSettings()', () => {
  test('shows every setting, in SETTING_NAMES order, and each secret only as set or not set', () => {
    const secrets = {
      TWITCH_CLIENT_SECRET: 'client-secret-value-1',
      TWITCH_ACCESS_TOKEN: 'access-token-value-2',
      EVENTSUB_SECRET: 'webhook-secret-value-3,webhook-secret-value-4',
      EVENTSUBD_FORWARD_SECRET: 'forward-secret-value-5',
      EVENTSUBD_STREAM_TOKEN: 'stream-token-value-6',
    };
    const view = describeSettings(
      loadConfig({ TWITCH_CLIENT_ID: 'abc123', ...secrets, EVENTSUBD_FORWARD_URL: 'http://127.0.0.1:3000/hook', EVENTSUBD_JOURNAL_FSYNC: 'each' }),
    );
    assert.deepEqual(Object.keys(view), [...SETTING_NAMES]);
    const text = JSON.stringify(view);
    for (const value of Object.values(secrets).flatMap((v) => v.split(','))) assert.ok(!text.includes(value), 'no secret value');
    assert.equal(view.TWITCH_CLIENT_SECRET, 'set');
    assert.equal(view.EVENTSUB_SECRET, 'set (2 secrets)');
    assert.equal(view.EVENTSUBD_STREAM_TOKEN, 'set');
    assert.equal(view.EVENTSUBD_FORWARD_URL, 'http://127.0.0.1:3000/hook');
    assert.equal(view.EVENTSUBD_FORWARD_CONCURRENCY, 1);
    assert.equal(view.EVENTSUBD_JOURNAL_FSYNC, 'each');
    assert.equal(view.EVENTSUBD_JOURNAL_MAX_AGE_DAYS, 7);
    assert.equal(view.EVENTSUBD_STREAM_PATH, '/events');
    const bare = describeSettings(loadConfig({ TWITCH_CLIENT_ID: 'abc123', EVENTSUBD_STREAM_PATH: 'off', EVENTSUBD_LISTEN: '[::1]:9000' }));
    assert.equal(bare.TWITCH_CLIENT_SECRET, 'not set');
    assert.equal(bare.EVENTSUB_SECRET, 'not set');
    assert.equal(bare.EVENTSUBD_FORWARD_URL, null);
    assert.equal(bare.EVENTSUBD_STREAM_PATH, 'off');
    assert.equal(bare.EVENTSUBD_LISTEN, '[::1]:9000');
  });
});
