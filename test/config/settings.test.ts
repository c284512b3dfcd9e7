import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigProblemsError } from '../../src/config/problems.js';
import { loadConfig, parseListen, requireWebhook, SETTING_NAMES } from '../../src/config/settings.js';
import { ConfigError } from '../../src/lib/errors.js';
import { ROOT } from '../helpers/cli.js';

const BASE = { TWITCH_CLIENT_ID: 'abc123', TWITCH_CLIENT_SECRET: 'supersecretvalue' };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 78);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig()', () => {
  test('applies the defaults of SPEC.md', () => {
    const c = loadConfig(BASE);
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8080 });
    assert.equal(c.stateDir, './.eventsubd');
    assert.equal(c.prune, true);
    assert.equal(c.reconcileCron, '*/10 * * * *');
    assert.equal(c.authUrl, 'https://id.twitch.tv/oauth2');
    assert.equal(c.apiUrl, 'https://api.twitch.tv/helix');
    assert.equal(c.logLevel, 'info');
    assert.ok(Object.isFrozen(c));
  });

  test('STATE_DIRECTORY (systemd) is the state dir when EVENTSUBD_STATE_DIR is unset', () => {
    assert.equal(loadConfig({ ...BASE, STATE_DIRECTORY: '/var/lib/eventsubd' }).stateDir, '/var/lib/eventsubd');
    assert.equal(loadConfig({ ...BASE, STATE_DIRECTORY: '/a', EVENTSUBD_STATE_DIR: '/b' }).stateDir, '/b');
  });

  test('rejects a 9-character EVENTSUB_SECRET without printing it', () => {
    const err = configError(() => loadConfig({ ...BASE, EVENTSUB_SECRET: 'ninechars' }));
    assert.equal(err.setting, 'EVENTSUB_SECRET');
    assert.match(err.message, /10-100 printable ASCII characters: current length is 9/);
    assert.ok(!err.message.includes('ninechars'));
  });

  test('accepts comma-separated secrets for rotation; the first signs', () => {
    const c = loadConfig({ ...BASE, EVENTSUB_SECRET: 'new-secret-0001, old-secret-0002' });
    assert.deepEqual(c.eventsubSecrets, ['new-secret-0001', 'old-secret-0002']);
    assert.equal(requireWebhook({ ...c, callbackUrl: 'https://x.example/cb' }).secret, 'new-secret-0001');
  });

  test('rejects an http:// callback against real Twitch, allows it against a loopback API', () => {
    const err = configError(() => loadConfig({ ...BASE, EVENTSUB_CALLBACK_URL: 'http://example.com/cb' }));
    assert.match(err.message, /^EVENTSUB_CALLBACK_URL must be https:\/\/ on port 443/);
    configError(() => loadConfig({ ...BASE, EVENTSUB_CALLBACK_URL: 'https://example.com:8443/cb' }));
    const c = loadConfig({
      ...BASE,
      TWITCH_API_URL: 'http://127.0.0.1:9000/helix',
      EVENTSUB_CALLBACK_URL: 'http://127.0.0.1:8080/cb',
    });
    assert.equal(c.callbackUrl, 'http://127.0.0.1:8080/cb');
  });

  test('names the setting and rule for bad values', () => {
    assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_PRUNE: 'maybe' })).message, /EVENTSUBD_PRUNE must be true or false/);
    assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_RECONCILE_CRON: 'every day' })).message, /EVENTSUBD_RECONCILE_CRON/);
    assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_LOG_LEVEL: 'loud' })).message, /EVENTSUBD_LOG_LEVEL/);
    assert.match(configError(() => loadConfig({ ...BASE, TWITCH_API_URL: 'ftp://x' })).message, /TWITCH_API_URL must be an http\(s\) URL/);
    assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_LISTEN: 'localhost' })).message, /EVENTSUBD_LISTEN must be host:port/);
  });

  test('reads secrets from NAME_FILE and from the systemd credentials directory', () => {
    const files: Record<string, string> = {
      '/run/secret': 'from-file-secret\n',
      '/creds/twitch_client_secret': 'from-credential',
      '/creds/eventsub_secret': 'credential-webhook-secret',
    };
    const readFile = (p: string) => {
      const v = files[p];
      if (v === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
      return v;
    };
    assert.equal(loadConfig({ TWITCH_CLIENT_SECRET_FILE: '/run/secret' }, { readFile }).clientSecret, 'from-file-secret');
    const c = loadConfig({ CREDENTIALS_DIRECTORY: '/creds' }, { readFile });
    assert.equal(c.clientSecret, 'from-credential');
    assert.deepEqual(c.eventsubSecrets, ['credential-webhook-secret']);
    assert.equal(c.accessToken, undefined, 'an absent credential is simply unset');
    // The unit's fallback for a missing webhook secret file (SetCredential=eventsub_secret:\x20): blank is unset.
    files['/creds/eventsub_secret'] = ' ';
    assert.deepEqual(loadConfig({ CREDENTIALS_DIRECTORY: '/creds' }, { readFile }).eventsubSecrets, []);
    const err = configError(() => loadConfig({ TWITCH_CLIENT_SECRET_FILE: '/missing' }, { readFile }));
    assert.match(err.message, /^TWITCH_CLIENT_SECRET_FILE: cannot read \/missing: ENOENT$/);
  });

  test('reports an unreadable systemd credential under CREDENTIALS_DIRECTORY, not under NAME_FILE', () => {
    const readFile = () => {
      throw Object.assign(new Error('denied'), { code: 'EACCES' });
    };
    const err = configError(() => loadConfig({ CREDENTIALS_DIRECTORY: '/creds' }, { readFile }));
    // Every secret's credential is unreadable: all six are reported, in one line.
    assert.match(err.message, /^Settings: 6 problems: TWITCH_CLIENT_SECRET: cannot read the systemd credential \/creds\/twitch_client_secret \(CREDENTIALS_DIRECTORY\): EACCES; TWITCH_ACCESS_TOKEN: /);
    assert.match(err.message, /EVENTSUBD_REDIS_URL: cannot read the systemd credential \/creds\/eventsubd_redis_url /);
    assert.equal((err as { setting?: string }).setting, 'CREDENTIALS_DIRECTORY');
  });

  test('refuses a secret file that is a FIFO at once (it would block start-up), and follows a link to a regular file', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'eventsubd-secret-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const err = configError(() => loadConfig({ EVENTSUB_SECRET_FILE: join(dir, 'fifo') }));
    assert.equal(err.message, `EVENTSUB_SECRET_FILE: cannot read ${join(dir, 'fifo')}: it is not a regular file`);
    writeFileSync(join(dir, 'real'), 'a-linked-secret-0123\n');
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    assert.deepEqual(loadConfig({ EVENTSUB_SECRET_FILE: join(dir, 'link') }).eventsubSecrets, ['a-linked-secret-0123']);
  });

  test('strips an oauth: or Bearer prefix from a supplied token', () => {
    assert.equal(loadConfig({ ...BASE, TWITCH_ACCESS_TOKEN: 'oauth:abcdef123' }).accessToken, 'abcdef123');
  });
});

test('loadConfig() enables forwarding and the stream, and requires a stream token beyond loopback', () => {
  const c = loadConfig({ ...BASE, EVENTSUBD_FORWARD_URL: 'http://127.0.0.1:3000/hook', EVENTSUBD_FORWARD_SECRET: 'fwd-secret' });
  assert.deepEqual(c.forward, { url: 'http://127.0.0.1:3000/hook', secret: 'fwd-secret', concurrency: 1, maxBackoffMs: 10_000 });
  assert.deepEqual(c.stream, { path: '/events', token: undefined });
  const err = configError(() => loadConfig({ ...BASE, EVENTSUBD_LISTEN: '0.0.0.0:8080' }));
  assert.equal(err.setting, 'EVENTSUBD_STREAM_TOKEN');
  assert.equal(loadConfig({ ...BASE, EVENTSUBD_LISTEN: '0.0.0.0:8080', EVENTSUBD_STREAM_PATH: 'off' }).stream, undefined);
  const token = 'a-long-stream-token-123';
  assert.equal(loadConfig({ ...BASE, EVENTSUBD_LISTEN: '0.0.0.0:8080', EVENTSUBD_STREAM_TOKEN: token }).stream?.token, token);
  assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_STREAM_TOKEN: 'short' })).message, /at least 16 characters/);
});

test('loadConfig() reads conduit mode: transport, shards within 1-20000, a wss:// URL (ws:// only on loopback)', () => {
  const d = loadConfig(BASE);
  assert.equal(d.transport, 'webhook');
  assert.deepEqual(d.conduit, { id: undefined, shards: 1, wsUrl: 'wss://eventsub.wss.twitch.tv/ws' });
  const c = loadConfig({ ...BASE, EVENTSUBD_TRANSPORT: 'conduit', EVENTSUBD_CONDUIT_SHARDS: '4', EVENTSUBD_CONDUIT_ID: 'bfcfc993-26b1-b876-44d9-afe75a379dac', TWITCH_EVENTSUB_WS_URL: 'ws://127.0.0.1:9/ws' });
  assert.equal(c.transport, 'conduit');
  assert.deepEqual(c.conduit, { id: 'bfcfc993-26b1-b876-44d9-afe75a379dac', shards: 4, wsUrl: 'ws://127.0.0.1:9/ws' });
  assert.equal(loadConfig({ ...BASE, EVENTSUBD_CONDUIT_SHARDS: '20000' }).conduit.shards, 20_000);
  for (const bad of ['0', '20001', '-1', '1.5', 'four', '999999999']) {
    assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_CONDUIT_SHARDS: bad })).message, /EVENTSUBD_CONDUIT_SHARDS must be a whole number from 1 to 20000/);
  }
  assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_TRANSPORT: 'websocket' })).message, /EVENTSUBD_TRANSPORT must be webhook or conduit/);
  assert.match(configError(() => loadConfig({ ...BASE, TWITCH_EVENTSUB_WS_URL: 'ws://eventsub.example.com/ws' })).message, /TWITCH_EVENTSUB_WS_URL must be wss:\/\//);
  assert.match(configError(() => loadConfig({ ...BASE, TWITCH_EVENTSUB_WS_URL: 'https://eventsub.example.com/ws' })).message, /TWITCH_EVENTSUB_WS_URL must be a wss:\/\/ URL/);
  assert.match(configError(() => loadConfig({ ...BASE, EVENTSUBD_CONDUIT_ID: 'not a conduit!' })).message, /EVENTSUBD_CONDUIT_ID must be a conduit id/);
});

test('parseListen() accepts host:port, [v6]:port and :port', () => {
  assert.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  assert.deepEqual(parseListen('[::1]:8080'), { host: '::1', port: 8080 });
  assert.deepEqual(parseListen(':9000'), { host: '0.0.0.0', port: 9000 });
  assert.throws(() => parseListen('x:70000'), ConfigError);
});

test('README and .env.example document every setting', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const example = readFileSync(join(ROOT, '.env.example'), 'utf8');
  assert.ok(SETTING_NAMES.length >= 20, `${SETTING_NAMES.length} settings`);
  for (const name of SETTING_NAMES) {
    assert.ok(readme.includes(`\`${name}\``), `README documents ${name}`);
    assert.match(example, new RegExp(`^#? ?${name}=`, 'm'), `.env.example lists ${name}`);
  }
});

test('loadConfig() checks every rule at once: each broken one is a problem naming its setting, in setting order (as the former zod schema gave them)', () => {
  const err = configError(() =>
    loadConfig({
      ...BASE,
      TWITCH_CLIENT_ID: 'a b',
      EVENTSUB_SECRET: '0123456789,short,,x',
      EVENTSUBD_PRUNE: 'maybe',
      EVENTSUBD_RECONCILE_CRON: '61 * * * *',
      TWITCH_AUTH_URL: 'nope',
      EVENTSUBD_JOURNAL_MAX_BYTES: '1048575',
      EVENTSUBD_JOURNAL_MAX_AGE_DAYS: '0',
      EVENTSUBD_JOURNAL_FSYNC: 'GROUP',
      EVENTSUBD_FORWARD_URL: 'mailto:a',
      EVENTSUBD_FORWARD_CONCURRENCY: '1000',
      EVENTSUBD_FORWARD_MAX_BACKOFF_MS: '99',
      EVENTSUBD_STREAM_PATH: 'events',
      EVENTSUBD_STREAM_TOKEN: 'short',
      TWITCH_REDIRECT_URL: 'x',
      EVENTSUBD_TRANSPORT: 'ws',
      EVENTSUBD_CONDUIT_ID: 'a_b',
      EVENTSUBD_CONDUIT_SHARDS: '20001',
      TWITCH_EVENTSUB_WS_URL: 'http://x',
      EVENTSUBD_REDIS_URL: 'redis://',
      EVENTSUBD_REDIS_PREFIX: 'a b',
      EVENTSUBD_REDIS_DURABILITY: 'replicas:0',
      EVENTSUBD_REDIS_LEASE_MS: '999',
      EVENTSUBD_LOG_LEVEL: 'INFO',
    }),
  );
  assert.ok(err instanceof ConfigProblemsError);
  assert.deepEqual(err.problems, [
    ['TWITCH_CLIENT_ID', 'TWITCH_CLIENT_ID must be letters and digits (as shown in the Twitch console)'],
    ['EVENTSUB_SECRET', 'EVENTSUB_SECRET secret #2 must be 10-100 printable ASCII characters: current length is 5'],
    ['EVENTSUB_SECRET', 'EVENTSUB_SECRET secret #3 must be 10-100 printable ASCII characters: current length is 1'],
    ['EVENTSUBD_PRUNE', 'EVENTSUBD_PRUNE must be true or false'],
    ['EVENTSUBD_RECONCILE_CRON', 'EVENTSUBD_RECONCILE_CRON must be a valid cron expression (e.g. "*/10 * * * *")'],
    ['TWITCH_AUTH_URL', 'TWITCH_AUTH_URL must be an http(s) URL'],
    ['EVENTSUBD_JOURNAL_MAX_BYTES', 'EVENTSUBD_JOURNAL_MAX_BYTES must be at least 1048576 (1 MiB)'],
    ['EVENTSUBD_JOURNAL_MAX_AGE_DAYS', 'EVENTSUBD_JOURNAL_MAX_AGE_DAYS must be more than 0'],
    ['EVENTSUBD_JOURNAL_FSYNC', 'EVENTSUBD_JOURNAL_FSYNC must be group or each'],
    ['EVENTSUBD_FORWARD_URL', 'EVENTSUBD_FORWARD_URL must be an http(s) URL'],
    ['EVENTSUBD_FORWARD_CONCURRENCY', 'EVENTSUBD_FORWARD_CONCURRENCY must be a whole number from 1 to 999'],
    ['EVENTSUBD_FORWARD_MAX_BACKOFF_MS', 'EVENTSUBD_FORWARD_MAX_BACKOFF_MS must be at least 100'],
    ['EVENTSUBD_STREAM_PATH', 'EVENTSUBD_STREAM_PATH must be a path such as /events, or off'],
    ['EVENTSUBD_STREAM_TOKEN', 'EVENTSUBD_STREAM_TOKEN must be at least 16 characters'],
    ['TWITCH_REDIRECT_URL', 'TWITCH_REDIRECT_URL must be an http(s) URL'],
    ['EVENTSUBD_TRANSPORT', 'EVENTSUBD_TRANSPORT must be webhook or conduit'],
    ['EVENTSUBD_CONDUIT_ID', 'EVENTSUBD_CONDUIT_ID must be a conduit id as Twitch returns it (letters, digits and dashes)'],
    ['EVENTSUBD_CONDUIT_SHARDS', 'EVENTSUBD_CONDUIT_SHARDS must be a whole number from 1 to 20000'],
    ['TWITCH_EVENTSUB_WS_URL', 'TWITCH_EVENTSUB_WS_URL must be a wss:// URL'],
    ['EVENTSUBD_REDIS_URL', 'EVENTSUBD_REDIS_URL must be a redis:// or rediss:// URL with a host, e.g. redis://127.0.0.1:6379'],
    ['EVENTSUBD_REDIS_PREFIX', 'EVENTSUBD_REDIS_PREFIX must be 1-100 letters, digits, or the characters : . _ -'],
    ['EVENTSUBD_REDIS_DURABILITY', 'EVENTSUBD_REDIS_DURABILITY must be fsync, trust or replicas:N (N from 1 to 999)'],
    ['EVENTSUBD_REDIS_LEASE_MS', 'EVENTSUBD_REDIS_LEASE_MS must be a whole number of milliseconds from 1000 to 60000'],
    ['EVENTSUBD_LOG_LEVEL', 'EVENTSUBD_LOG_LEVEL must be one of debug, info, warn, error'],
  ].map(([setting, message]) => ({ setting, message })));
});

test('loadConfig() trims and converts values as the rules say', () => {
  const c = loadConfig({
    ...BASE,
    TWITCH_CLIENT_ID: ' ab_-9 ',
    TWITCH_ACCESS_TOKEN: 'Bearer  xyz',
    EVENTSUB_SECRET: ' 0123456789 , abcdefghijk ',
    EVENTSUBD_PRUNE: ' No ',
    EVENTSUBD_JOURNAL_MAX_BYTES: '1048576',
    EVENTSUBD_JOURNAL_MAX_AGE_DAYS: '0.5',
    EVENTSUBD_FORWARD_URL: 'http://127.0.0.1:9/x',
    EVENTSUBD_FORWARD_CONCURRENCY: '999',
    EVENTSUBD_TRANSPORT: 'conduit',
    EVENTSUBD_CONDUIT_ID: ' abc-1 ',
    EVENTSUBD_CONDUIT_SHARDS: ' 3 ',
    EVENTSUBD_REDIS_URL: 'redis://127.0.0.1:6379',
    EVENTSUBD_REDIS_PREFIX: ' p ',
    EVENTSUBD_REDIS_DURABILITY: ' replicas:3 ',
    EVENTSUBD_REDIS_LEASE_MS: ' 5000 ',
    EVENTSUBD_LOG_LEVEL: 'debug',
  });
  assert.deepEqual(
    {
      clientId: c.clientId,
      accessToken: c.accessToken,
      secrets: c.eventsubSecrets,
      prune: c.prune,
      max: c.journalMaxBytes,
      age: c.journalMaxAgeMs,
      forward: c.forward,
      conduit: c.conduit,
      redis: c.redis,
      logLevel: c.logLevel,
      transport: c.transport,
    },
    {
      clientId: 'ab_-9',
      accessToken: 'xyz',
      secrets: ['0123456789', 'abcdefghijk'],
      prune: false,
      max: 1048576,
      age: 43200000,
      forward: { url: 'http://127.0.0.1:9/x', secret: undefined, concurrency: 999, maxBackoffMs: 10000 },
      conduit: { id: 'abc-1', shards: 3, wsUrl: 'wss://eventsub.wss.twitch.tv/ws' },
      redis: { url: 'redis://127.0.0.1:6379', prefix: 'p', durability: { kind: 'replicas', replicas: 3 }, leaseMs: 5000 },
      logLevel: 'debug',
      transport: 'conduit',
    },
  );
});
