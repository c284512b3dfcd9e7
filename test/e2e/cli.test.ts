/**
 * End to end: the built CLI (dist/main.js) in child processes against the emulator on loopback.
 * Each test has its own emulator and state directories, so that it passes alone and in any order; every output
 * of every run is kept and scanned, once the test ends, for the secret and token values the test met.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { emulatorSettings, runCli, tempDir, type CliResult } from '../helpers/cli.js';

const WEBHOOK_SECRET = 'e2e-webhook-secret-0123456789';
const CALLBACK = 'https://events.example.com/twitch/eventsub';

interface Rig {
  emulator: Emulator;
  /** Values no output may contain: add every secret or token the test comes across. */
  secrets: Set<string>;
  /** A fresh state directory. */
  newState(): string;
  /** The environment of a CLI run against this test's emulator. */
  envFor(stateDir: string, extra?: Record<string, string>): Record<string, string>;
  /** Runs the CLI and keeps its output for the scan. */
  cli(args: string[], env: Record<string, string>, cwd?: string): Promise<CliResult>;
  /** Subscription writes (POST, DELETE) the emulator has seen. */
  writes(): number;
}

/**
 * What one test needs: its own emulator (page size 2) and state directories, removed after it. When the test
 * ends, every output of its runs is scanned: no secret or token value may appear in any.
 */
async function rig(t: TestContext): Promise<Rig> {
  const emulator = await startEmulator({ pageSize: 2 });
  const dirs: Array<{ cleanup: () => void }> = [];
  const outputs: CliResult[] = [];
  const secrets = new Set<string>([WEBHOOK_SECRET, emulator.clients[0]!.clientSecret]);
  t.after(async () => {
    await emulator.close();
    for (const d of dirs) d.cleanup();
  });
  t.after(() => {
    assert.ok(outputs.length > 0, 'the test ran the CLI');
    for (const res of outputs) {
      for (const value of secrets) {
        assert.ok(!res.stdout.includes(value) && !res.stderr.includes(value), 'a secret or token value was printed');
      }
    }
  });
  return {
    emulator,
    secrets,
    newState() {
      const d = tempDir();
      dirs.push(d);
      return d.path;
    },
    envFor(stateDir, extra = {}) {
      return {
        ...emulatorSettings(emulator),
        EVENTSUB_SECRET: WEBHOOK_SECRET,
        EVENTSUB_CALLBACK_URL: CALLBACK,
        EVENTSUBD_STATE_DIR: stateDir,
        ...extra,
      };
    },
    async cli(args, env, cwd) {
      const res = await runCli(args, { env, ...(cwd ? { cwd } : {}) });
      outputs.push(res);
      return res;
    },
    writes() {
      return emulator.stats.requests.filter((r) => r.path.includes('/eventsub/') && (r.method === 'POST' || r.method === 'DELETE')).length;
    },
  };
}

/** A one-line error with the given code and exit status, and no stack trace. */
function assertOneLineError(res: CliResult, exit: number, code: string): void {
  assert.equal(res.code, exit, `exit code (stderr: ${res.stderr})`);
  const lines = res.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${res.stderr}`);
  assert.match(lines[0]!, new RegExp(`^eventsubd: ${code}: \\S`));
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
}

function cachedToken(stateDir: string): string {
  return (JSON.parse(readFileSync(join(stateDir, 'token.json'), 'utf8')) as { access_token: string }).access_token;
}

describe('eventsubd CLI: usage and bad input', () => {
  test('--help lists every command; --version prints the package version', async (t) => {
    const { cli } = await rig(t);
    const help = await cli(['--help'], {});
    assert.equal(help.code, 0);
    for (const c of ['subscriptions list', 'subscriptions create', 'subscriptions delete', 'subscriptions sync', 'token status', 'token rotate', 'token revoke', 'config check', 'emulate']) {
      assert.ok(help.stdout.includes(c), `help mentions ${c}`);
    }
    const version = await cli(['--version'], {});
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const sub = await cli(['subscriptions', 'create', '--help'], {});
    assert.match(sub.stdout, /--condition key=value \.\.\./);
  });

  test('unknown command and unknown flag: exit 2, one line', async (t) => {
    const { newState, envFor, cli } = await rig(t);
    assertOneLineError(await cli(['frobnicate'], {}), 2, 'USAGE_ERROR');
    const res = await cli(['subscriptions', 'list', '--bogus'], envFor(newState()));
    assertOneLineError(res, 2, 'USAGE_ERROR');
    assert.match(res.stderr, /Unknown flag --bogus/);
  });

  test('create without --type, and a condition without "=": exit 2', async (t) => {
    const { newState, envFor, cli } = await rig(t);
    const env = envFor(newState());
    const noType = await cli(['subscriptions', 'create', '--version', '1', '--condition', 'broadcaster_user_id=1'], env);
    assertOneLineError(noType, 2, 'USAGE_ERROR');
    assert.match(noType.stderr, /Missing required flag --type/);
    const badCond = await cli(['subscriptions', 'create', '--type', 'stream.online', '--version', '1', '--condition', 'broadcaster_user_id'], env);
    assertOneLineError(badCond, 2, 'USAGE_ERROR');
    assert.match(badCond.stderr, /--condition must be key=value/);
  });

  test('a 9-character secret and an http:// callback: exit 78 naming the setting', async (t) => {
    const { newState, envFor, cli } = await rig(t);
    const short = await cli(['config', 'check'], envFor(newState(), { EVENTSUB_SECRET: 'ninechars' }));
    assertOneLineError(short, 78, 'CONFIG_INVALID');
    assert.match(short.stderr, /EVENTSUB_SECRET/);
    assert.ok(!short.stderr.includes('ninechars'), 'the secret is not echoed');
    const http = await cli(
      ['config', 'check'],
      envFor(newState(), { TWITCH_API_URL: 'https://api.twitch.tv/helix', EVENTSUB_CALLBACK_URL: 'http://events.example.com/cb' }),
    );
    assertOneLineError(http, 78, 'CONFIG_INVALID');
    assert.match(http.stderr, /EVENTSUB_CALLBACK_URL must be https:\/\/ on port 443/);
  });

  test('a bad subscriptions file: exit 78 with the entry path, nothing sent to Twitch', async (t) => {
    const { emulator, newState, envFor, cli } = await rig(t);
    const state = newState();
    const file = join(state, 'subs.yaml');
    writeFileSync(file, 'subscriptions:\n  - type: stream.online\n    version: "1"\n    condition: {}\n    colour: red\n');
    const before = emulator.stats.helix.total;
    const res = await cli(['subscriptions', 'sync', '--file', file], envFor(state));
    assertOneLineError(res, 78, 'CONFIG_INVALID');
    assert.match(res.stderr, /subscriptions\[0\]/);
    assert.equal(emulator.stats.helix.total, before);
  });

  test('.env in the working directory is read; the environment wins over it', async (t) => {
    const { newState, envFor, cli } = await rig(t);
    const state = newState();
    writeFileSync(join(state, '.env'), `EVENTSUBD_LOG_LEVEL=loud\n`);
    const bad = await cli(['config', 'check'], envFor(state), state);
    assertOneLineError(bad, 78, 'CONFIG_INVALID');
    assert.match(bad.stderr, /EVENTSUBD_LOG_LEVEL/);
    const ok = await cli(['config', 'check', '--json'], envFor(state, { EVENTSUBD_LOG_LEVEL: 'warn' }), state);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).settings.EVENTSUBD_LOG_LEVEL, 'warn');
  });
});

describe('eventsubd CLI: sync, list, create, delete against the emulator', () => {
  test('dry run writes nothing; sync creates; a second sync sends zero writes and only the list pages', async (t) => {
    const { emulator, newState, envFor, cli, writes } = await rig(t);
    const state = newState();
    const file = join(state, 'subs.yaml');
    writeFileSync(
      file,
      [
        'subscriptions:',
        '  - { type: stream.online, version: "1", condition: { broadcaster_user_id: "1001" } }',
        '  - { type: stream.offline, version: "1", condition: { broadcaster_user_id: "1001" } }',
        '  - { type: channel.update, version: 2, condition: { broadcaster_user_id: 1001 } }',
      ].join('\n'),
    );
    const env = envFor(state, { EVENTSUBD_SUBSCRIPTIONS: file });
    const w0 = writes();
    const dry = await cli(['subscriptions', 'sync', '--dry-run', '--json'], env);
    assert.equal(dry.code, 0, dry.stderr);
    const dryOut = JSON.parse(dry.stdout);
    assert.equal(dryOut.plan.create, 3);
    assert.equal(dryOut.result, null);
    assert.equal(writes(), w0, 'dry run sent no write');

    const first = await cli(['subscriptions', 'sync', '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).result.created, 3);
    assert.equal(writes(), w0 + 3);

    const before = emulator.stats.requests.length;
    const second = await cli(['subscriptions', 'sync', '--json'], env);
    assert.equal(second.code, 0, second.stderr);
    const out = JSON.parse(second.stdout);
    assert.equal(out.plan.keep, 3);
    assert.equal(out.plan.create + out.plan.recreate + out.plan.delete, 0);
    const helixRequests = emulator.stats.requests.slice(before).filter((r) => r.path.includes('/eventsub/'));
    assert.ok(helixRequests.every((r) => r.method === 'GET'), 'only GETs');
    const owned = emulator.subscriptions(emulator.clients[0]!.clientId).length;
    assert.equal(helixRequests.length, Math.max(1, Math.ceil(owned / 2)), 'exactly the list pages (page size 2)');

    const list = await cli(['subscriptions', 'list', '--type', 'channel.update', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout);
    assert.equal(listed.data.length, 1);
    assert.equal(listed.data[0].version, '2');
    assert.deepEqual(listed.data[0].condition, { broadcaster_user_id: '1001' });

    const human = await cli(['subscriptions', 'list'], env);
    assert.match(human.stdout, /stream\.online v1\s+broadcaster_user_id=1001/);
  });

  test('create adopts an existing twin (409); delete by id; delete --status needs --yes', async (t) => {
    const { emulator, newState, envFor, cli } = await rig(t);
    const env = envFor(newState());
    const args = ['subscriptions', 'create', '--type', 'channel.raid', '--version', '1', '--condition', 'to_broadcaster_user_id=2002', '--json'];
    const created = await cli(args, env);
    assert.equal(created.code, 0, created.stderr);
    const first = JSON.parse(created.stdout);
    assert.equal(first.adopted, false);
    const again = await cli(args, env);
    assert.equal(again.code, 0, again.stderr);
    const second = JSON.parse(again.stdout);
    assert.equal(second.adopted, true);
    assert.equal(second.subscription.id, first.subscription.id);

    emulator.setSubscriptionStatus(first.subscription.id, 'user_removed');
    const unconfirmed = await cli(['subscriptions', 'delete', '--status', 'user_removed'], env);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stdout, /run again with --yes/);
    assert.equal(emulator.subscriptions().filter((s) => s.id === first.subscription.id).length, 1);
    const confirmed = await cli(['subscriptions', 'delete', '--status', 'user_removed', '--yes', '--json'], env);
    assert.equal(confirmed.code, 0, confirmed.stderr);
    assert.deepEqual(JSON.parse(confirmed.stdout).deleted, [first.subscription.id]);
    const missing = await cli(['subscriptions', 'delete', first.subscription.id], env);
    assertOneLineError(missing, 1, 'SUBSCRIPTION_NOT_FOUND');
  });
});

describe('eventsubd CLI: tokens', () => {
  test('one mint is shared by later commands through a 0600 cache in a 0700 directory', async (t) => {
    const { emulator, secrets, newState, envFor, cli } = await rig(t);
    const state = join(newState(), 'state');
    const env = envFor(state);
    const mints = emulator.stats.mints;
    assert.equal((await cli(['subscriptions', 'list'], env)).code, 0);
    assert.equal((await cli(['subscriptions', 'list'], env)).code, 0);
    assert.equal(emulator.stats.mints, mints + 1, 'the second command reused the cached token');
    assert.equal(statSync(join(state, 'token.json')).mode & 0o777, 0o600);
    assert.equal(statSync(state).mode & 0o777, 0o700);
    secrets.add(cachedToken(state));
  });

  test('concurrent CLI processes on an empty cache mint exactly once', async (t) => {
    const { emulator, newState, envFor, cli } = await rig(t);
    const env = envFor(newState());
    const mints = emulator.stats.mints;
    const results = await Promise.all(Array.from({ length: 5 }, () => cli(['subscriptions', 'list', '--json'], env)));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.equal(emulator.stats.mints, mints + 1);
  });

  test('token status never prints the token; rotate mints, then revokes the old one', async (t) => {
    const { emulator, secrets, newState, envFor, cli } = await rig(t);
    const state = newState();
    const env = envFor(state);
    assert.equal((await cli(['subscriptions', 'list'], env)).code, 0);
    const old = cachedToken(state);
    secrets.add(old);
    const status = await cli(['token', 'status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout);
    assert.equal(s.state, 'ok');
    assert.match(s.fingerprint, /^sha256:[0-9a-f]{8}$/);
    const revocations = emulator.stats.revocations;
    const rotated = await cli(['token', 'rotate', '--json'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const fresh = cachedToken(state);
    secrets.add(fresh);
    assert.notEqual(fresh, old);
    assert.equal(emulator.stats.revocations, revocations + 1);
    const validate = await fetch(`${emulator.authUrl}/validate`, { headers: { Authorization: `OAuth ${old}` } });
    assert.equal(validate.status, 401, 'the old token is dead');
    const revoked = await cli(['token', 'revoke'], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.throws(() => statSync(join(state, 'token.json')), /ENOENT/);
  });

  test('a supplied user token is refused with exit 77 and zero Helix requests', async (t) => {
    const { emulator, secrets, newState, envFor, cli } = await rig(t);
    const userToken = emulator.registerUserToken({ userId: '4242', login: 'someone', scopes: ['channel:read:subscriptions'] });
    secrets.add(userToken);
    const before = emulator.stats.helix.total;
    const res = await cli(['subscriptions', 'list'], envFor(newState(), { TWITCH_ACCESS_TOKEN: userToken, TWITCH_CLIENT_SECRET: '' }));
    assertOneLineError(res, 77, 'USER_TOKEN_REFUSED');
    assert.equal(emulator.stats.helix.total, before, 'no Helix request left the process');
  });

  test("another client's app token is refused with exit 77 and zero Helix requests", async (t) => {
    const { emulator, secrets, newState, envFor, cli } = await rig(t);
    const other = emulator.addClient();
    secrets.add(other.clientSecret);
    const mint = await fetch(`${emulator.authUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: other.clientId, client_secret: other.clientSecret, grant_type: 'client_credentials' }),
    });
    const foreign = ((await mint.json()) as { access_token: string }).access_token;
    secrets.add(foreign);
    const before = emulator.stats.helix.total;
    const res = await cli(['subscriptions', 'list'], envFor(newState(), { TWITCH_ACCESS_TOKEN: foreign, TWITCH_CLIENT_SECRET: '' }));
    assertOneLineError(res, 77, 'TOKEN_CLIENT_MISMATCH');
    assert.equal(emulator.stats.helix.total, before);
  });

  test('a cached user token is discarded and replaced by a fresh app token', async (t) => {
    const { emulator, secrets, newState, envFor, cli } = await rig(t);
    const state = newState();
    const env = envFor(state);
    assert.equal((await cli(['subscriptions', 'list'], env)).code, 0);
    const cache = JSON.parse(readFileSync(join(state, 'token.json'), 'utf8'));
    const userToken = emulator.registerUserToken({ userId: '777' });
    secrets.add(userToken);
    writeFileSync(join(state, 'token.json'), JSON.stringify({ ...cache, access_token: userToken }), { mode: 0o600 });
    const res = await cli(['subscriptions', 'list'], env);
    assert.equal(res.code, 0, res.stderr);
    const replaced = cachedToken(state);
    secrets.add(replaced);
    assert.notEqual(replaced, userToken);
    assert.match(res.stderr, /USER_TOKEN_REFUSED/, 'the discard is logged with its code');
  });

  test('wrong client secret: TWITCH_AUTH_FAILED, exit 77', async (t) => {
    const { secrets, newState, envFor, cli } = await rig(t);
    const res = await cli(['subscriptions', 'list'], envFor(newState(), { TWITCH_CLIENT_SECRET: 'definitely-wrong-secret' }));
    secrets.add('definitely-wrong-secret');
    assertOneLineError(res, 77, 'TWITCH_AUTH_FAILED');
  });
});
