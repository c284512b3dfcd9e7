/**
 * `eventsubd emulate`, run in-process: the client from TWITCH_CLIENT_ID/TWITCH_CLIENT_SECRET (.env), the
 * --state file across a restart, and the errors of both.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { request } from 'undici';
import { tempDir } from '../helpers/cli.js';
import { startCli } from '../helpers/cli-in-process.js';
import { deferred, untilTurn } from '../helpers/wait.js';

const CLIENT_ID = 'envclient0123456789abcdefghijk';
const CLIENT_SECRET = 'env-secret-0123456789abcdefghij';

interface Running {
  out: () => string;
  err: () => string;
  /** Stops the emulator (as SIGTERM would) and resolves its exit code. */
  stop: () => Promise<number>;
  done: Promise<number>;
}

function emulate(argv: string[], options: { env?: Record<string, string>; dotenv?: Record<string, string> } = {}): Running {
  const stopped = deferred();
  const run = startCli(['emulate', '--port', '0', ...argv], { ...options, stopped: stopped.promise });
  return {
    ...run,
    stop: async () => {
      stopped.resolve();
      return run.done;
    },
  };
}

async function started(t: TestContext, run: Running): Promise<string> {
  t.after(() => run.stop());
  let finished = false;
  void run.done.finally(() => (finished = true));
  await untilTurn(() => run.out().includes('TWITCH_API_URL=') || finished, 'the emulator to print its settings');
  assert.ok(!finished, `emulate ended early: ${run.err()}`);
  return /TWITCH_AUTH_URL=(\S+)/.exec(run.out())![1]!;
}

async function mint(authUrl: string, clientId: string, secret: string): Promise<{ status: number; token: string }> {
  const res = await request(`${authUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: clientId, client_secret: secret, grant_type: 'client_credentials' }).toString(),
  });
  const json = (await res.body.json()) as { access_token?: string };
  return { status: res.statusCode, token: json.access_token ?? '' };
}

test('emulate takes TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET from .env and does not print the secret', async (t) => {
  const run = emulate([], { dotenv: { TWITCH_CLIENT_ID: CLIENT_ID, TWITCH_CLIENT_SECRET: CLIENT_SECRET } });
  const authUrl = await started(t, run);
  assert.match(run.out(), new RegExp(`TWITCH_CLIENT_ID=${CLIENT_ID}`));
  assert.match(run.out(), /^TWITCH_EVENTSUB_WS_URL=ws:\/\/127\.0\.0\.1:\d+\/ws$/m, 'conduit mode: the EventSub WebSocket URL');
  assert.ok(!run.out().includes(CLIENT_SECRET), 'a secret the user already has is not echoed');
  assert.equal((await mint(authUrl, CLIENT_ID, CLIENT_SECRET)).status, 200);
  assert.equal(await run.stop(), 0);
});

test('emulate reads the client secret as run does: from the systemd credential (the service\'s own settings)', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  writeFileSync(join(dir.path, 'twitch_client_secret'), `${CLIENT_SECRET}\n`, { mode: 0o600 });
  const run = emulate([], { env: { TWITCH_CLIENT_ID: CLIENT_ID, TWITCH_CLIENT_SECRET: '', CREDENTIALS_DIRECTORY: dir.path } });
  const authUrl = await started(t, run);
  assert.equal((await mint(authUrl, CLIENT_ID, CLIENT_SECRET)).status, 200);
  assert.equal(await run.stop(), 0);
});

test('emulate flags win over the settings', async (t) => {
  const run = emulate(['--client-id', 'flagclient', '--client-secret', 'flag-secret-0123'], { env: { TWITCH_CLIENT_ID: CLIENT_ID, TWITCH_CLIENT_SECRET: CLIENT_SECRET } });
  const authUrl = await started(t, run);
  assert.equal((await mint(authUrl, 'flagclient', 'flag-secret-0123')).status, 200);
  assert.equal((await mint(authUrl, CLIENT_ID, CLIENT_SECRET)).status, 400, 'the settings client is not registered');
});

test('emulate with TWITCH_CLIENT_ID but no TWITCH_CLIENT_SECRET: CONFIG_INVALID naming it, exit 78', async () => {
  const run = emulate([], { env: { TWITCH_CLIENT_ID: CLIENT_ID } });
  assert.equal(await run.done, 78);
  assert.match(run.err(), /^eventsubd: CONFIG_INVALID: emulate takes TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET together.*TWITCH_CLIENT_SECRET is not set/);
});

test('emulate --state keeps the client and its tokens across a restart', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'emulator-state.json');
  const first = emulate(['--state', file]);
  const authUrl = await started(t, first);
  const clientId = /TWITCH_CLIENT_ID=(\S+)/.exec(first.out())![1]!;
  const secret = /TWITCH_CLIENT_SECRET=(\S+)/.exec(first.out())![1]!;
  const { token } = await mint(authUrl, clientId, secret);
  assert.equal(await first.stop(), 0);

  const second = emulate(['--state', file]);
  const authUrl2 = await started(t, second);
  assert.match(second.out(), new RegExp(`TWITCH_CLIENT_ID=${clientId}`), 'the same client after the restart');
  const res = await request(`${authUrl2}/validate`, { headers: { authorization: `OAuth ${token}` } });
  await res.body.dump();
  assert.equal(res.statusCode, 200, 'a token minted before the restart still validates');
  assert.equal(await second.stop(), 0);
});

test('emulate --state with a corrupt file or a missing directory: CONFIG_INVALID naming --state, exit 78', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'state.json');
  writeFileSync(file, 'not json');
  const corrupt = emulate(['--state', file]);
  assert.equal(await corrupt.done, 78);
  assert.match(corrupt.err(), /^eventsubd: CONFIG_INVALID: --state: .*state\.json is corrupt/);
  const missing = emulate(['--state', join(dir.path, 'no', 'such', 'state.json')]);
  assert.equal(await missing.done, 78);
  assert.match(missing.err(), /^eventsubd: CONFIG_INVALID: --state: the directory of .* does not exist/);
});

test('emulate with EVENTSUBD_LOG_LEVEL=debug logs each request on stderr, without the query that holds the secret', async (t) => {
  const run = emulate([], { env: { EVENTSUBD_LOG_LEVEL: 'debug', TWITCH_CLIENT_ID: CLIENT_ID, TWITCH_CLIENT_SECRET: CLIENT_SECRET } });
  const authUrl = await started(t, run);
  const query = new URLSearchParams({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, grant_type: 'client_credentials' });
  const res = await request(`${authUrl.replace(/\/oauth2$/, '/auth')}/token?${query.toString()}`, { method: 'POST' });
  const { access_token: token } = (await res.body.json()) as { access_token: string };
  await untilTurn(() => run.err().includes('emulator request'), 'the request line');
  const line = run.err().split('\n').find((l) => l.includes('emulator request'))!;
  const record = JSON.parse(line) as Record<string, unknown>;
  assert.equal(record.level, 'debug');
  assert.equal(record.path, '/auth/token');
  assert.equal(record.status, 200);
  assert.equal(typeof record.ms, 'number');
  assert.ok(!run.err().includes(CLIENT_SECRET) && !run.err().includes(token), 'neither the secret nor the token is logged');
});
