/**
 * Issue 12: `eventsubd authorize` in-process (runCli) against the emulator, the test playing the browser: the
 * authorize URL the command prints is opened at the emulator, whose consent is set through its API, and the
 * redirect is followed to the command's listener. Each hostile case checks that nothing was recorded when
 * nothing should be, that every user token the emulator issued was revoked, and that no token value reached
 * stdout, stderr, the page or a file of the state directory.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { runCli, type CliProcess } from '../../src/cli/run.js';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { tryLockFile } from '../../src/lib/file-lock.js';
import { emulatorSettings, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { untilSleeping } from '../helpers/wait.js';
import { freePort } from '../daemon/harness.js';

const FOLLOW_FILE = `subscriptions:
  - type: channel.follow
    version: "2"
    condition: { broadcaster_user_id: "1000", moderator_user_id: "2000" }
  - type: stream.online
    version: "1"
    condition: { broadcaster_user_id: "1000" }
`;

interface Rig {
  emu: Emulator;
  clock: FakeClock;
  stateDir: string;
  redirect: string;
  env: Record<string, string>;
  agent: Agent;
  /** SIGHUPs the command sent, by pid. */
  hups: number[];
}

async function rig(t: TestContext, init: { host?: string; registered?: boolean; env?: Record<string, string> } = {}): Promise<Rig> {
  const clock = new FakeClock();
  const emu = await startEmulator({ clock });
  const dir = tempDir('eventsubd-authorize-');
  const agent = new Agent();
  t.after(async () => {
    await emu.close();
    await agent.close();
    dir.cleanup();
  });
  const port = await freePort();
  const redirect = `http://${init.host ?? 'localhost'}:${port}/callback`;
  if (init.registered !== false) emu.addRedirectUri(redirect);
  const stateDir = join(dir.path, 'state');
  const file = join(dir.path, 'subscriptions.yaml');
  writeFileSync(file, FOLLOW_FILE);
  const env = {
    ...emulatorSettings(emu),
    EVENTSUBD_STATE_DIR: stateDir,
    EVENTSUBD_SUBSCRIPTIONS: file,
    EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
    EVENTSUB_SECRET: 'authorize-test-secret-0123456789',
    TWITCH_REDIRECT_URL: redirect,
    ...init.env,
  };
  return { emu, clock, stateDir, redirect, env, agent, hups: [] };
}

interface Running {
  done: Promise<number>;
  out: () => string;
  err: () => string;
  /** Resolves with the first stderr line matching `re`. */
  line: (re: RegExp) => Promise<string>;
}

function start(r: Rig, argv: string[]): Running {
  let out = '';
  let err = '';
  const waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      const line = err.split('\n').find((l) => w.re.test(l));
      if (line === undefined) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  };
  const proc: CliProcess = {
    argv,
    env: r.env,
    stdout: { write: (s: string) => (out += s) },
    stderr: {
      write: (s: string) => {
        err += s;
        check();
      },
    },
    clock: r.clock,
    readEnvFile: () => undefined,
    version: '0.0.0-test',
    signal: new AbortController().signal,
    stopped: new Promise(() => {}),
    process: {
      pid: process.pid,
      signal: (pid) => {
        r.hups.push(pid);
        return true;
      },
      onHangup: () => () => {},
    },
    dispatcher: r.agent,
  };
  const done = runCli(proc);
  return {
    done,
    out: () => out,
    err: () => err,
    line: (re) =>
      Promise.race([
        new Promise<string>((resolve) => {
          waiters.push({ re, resolve });
          check();
        }),
        done.then((code) => {
          throw new Error(`the command exited ${code} before printing ${re}: ${err}`);
        }),
      ]),
  };
}

/** The authorize URL the command printed. */
async function authorizeUrl(run: Running): Promise<URL> {
  return new URL((await run.line(/\/oauth2\/authorize\?/)).trim());
}

async function get(r: Rig, url: string | URL): Promise<{ status: number; location?: string; text: string }> {
  const res = await request(url, { dispatcher: r.agent });
  const text = await res.body.text();
  return { status: res.statusCode, location: res.headers.location as string | undefined, text };
}

/** The browser: opens the authorize page at the emulator and follows its redirect to our listener. */
async function browse(r: Rig, url: URL): Promise<{ callback: string; status: number; text: string }> {
  const page = await get(r, url);
  assert.equal(page.status, 302, `the emulator's authorize page answered ${page.status}: ${page.text}`);
  const back = await get(r, page.location!);
  return { callback: page.location!, status: back.status, text: back.text };
}

/** Every user token value the emulator issued must be revoked and appear in none of `texts` nor the state files. */
function assertNoTokenLeft(r: Rig, texts: string[]): void {
  const tokens = r.emu.userTokens();
  for (const t of tokens) assert.equal(t.valid, false, `the user token of ${t.user_id} was revoked`);
  const files = existsSync(r.stateDir) ? readdirSync(r.stateDir).map((f) => readFileSync(join(r.stateDir, f), 'utf8')) : [];
  for (const t of tokens) {
    for (const text of [...texts, ...files]) assert.ok(!text.includes(t.token), 'a user token value leaked');
    assert.ok(!texts.join('').includes(`r${t.token}`), 'a refresh token leaked');
  }
}

const record = (r: Rig): { version: number; users: Record<string, { login: string; scopes: string[]; how: string; revoked_at: string | null }> } | undefined => {
  const path = join(r.stateDir, 'authorizations.json');
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
};

test('authorize: the moderator consents; the grant is recorded 0600 without a token, the user token is revoked, a running daemon is asked to sync', async (t) => {
  const r = await rig(t);
  await mkdirState(r);
  const daemonLock = await tryLockFile(join(r.stateDir, 'daemon.pid'), '424242\n');
  t.after(() => daemonLock?.release());
  r.emu.setConsent({ userId: '2000', login: 'mod_marigold' });
  const run = start(r, ['authorize']);
  const url = await authorizeUrl(run);
  assert.equal(url.searchParams.get('scope'), 'moderator:read:followers', 'what the declared follow needs, from its moderator');
  assert.equal(url.searchParams.get('redirect_uri'), r.redirect);
  assert.equal(url.searchParams.get('force_verify'), 'true');
  assert.match(url.searchParams.get('state')!, /^[0-9a-f]{32}$/, '128 random bits');
  assert.match(run.err(), /user 2000/, 'says who must sign in');

  // The redirect twice at once (Twitch's "leaving Twitch" page and browsers can call it twice): the same page, one exchange.
  const location = (await get(r, url)).location!;
  const [page, again] = await Promise.all([get(r, location), get(r, location)]);
  assert.equal(page.status, 200);
  assert.match(page.text, /mod_marigold authorized/);
  assert.match(page.text, /moderator:read:followers/);
  assert.deepEqual([again.status, again.text], [page.status, page.text]);
  assert.equal(r.emu.userTokens().length, 1, 'one code exchange');
  assert.equal(await run.done, 0, run.err());
  assert.match(run.out(), /Authorized mod_marigold \(2000\) by authorization_code: moderator:read:followers; the user token was revoked\./);
  assert.match(run.out(), /Asked the running daemon \(pid 424242\) to sync/);
  assert.deepEqual(r.hups, [424242]);

  await assert.rejects(get(r, location), /ECONNREFUSED/, 'the listener is gone once the command is done');

  const rec = record(r)!;
  assert.deepEqual(Object.keys(rec.users), ['2000']);
  assert.deepEqual([rec.users['2000']!.login, rec.users['2000']!.scopes, rec.users['2000']!.how, rec.users['2000']!.revoked_at], ['mod_marigold', ['moderator:read:followers'], 'authorization_code', null]);
  assert.equal(statSync(join(r.stateDir, 'authorizations.json')).mode & 0o777, 0o600);
  assert.deepEqual(r.emu.grants(), [{ user_id: '2000', login: 'mod_marigold', scopes: ['moderator:read:followers'] }], 'the grant outlives the revoked token');
  assertNoTokenLeft(r, [run.out(), run.err(), page.text]);

  // Nothing left to ask: no listener, exit 0.
  const nothing = start(r, ['authorize', '--json']);
  assert.equal(await nothing.done, 0);
  assert.deepEqual(JSON.parse(nothing.out()), { authorized: [], nothing_to_do: true });
});

test('authorize: a callback with a wrong or missing state gets 400 and nothing is exchanged; the real one still works', async (t) => {
  const r = await rig(t, { host: '127.0.0.1' });
  r.emu.setConsent({ userId: '2000', login: 'mod_marigold' });
  const run = start(r, ['authorize']);
  const url = await authorizeUrl(run);
  const state = url.searchParams.get('state')!;
  const forged = (await get(r, url)).location!;
  const code = new URL(forged).searchParams.get('code')!;
  for (const bad of [`state=${'0'.repeat(32)}&code=${code}`, `code=${code}`, `state=${state.slice(1)}&code=${code}`]) {
    const res = await get(r, `${r.redirect}?${bad}`);
    assert.equal(res.status, 400, bad);
    assert.match(res.text, /does not match/);
  }
  assert.equal((await get(r, `${r.redirect.replace('/callback', '/other')}?state=${state}&code=${code}`)).status, 404);
  assert.equal(record(r), undefined, 'nothing recorded');
  assert.equal(r.emu.userTokens().length, 0, 'nothing exchanged');
  // The code the forged callbacks carried is still good: the command used none of them.
  const res = await get(r, forged);
  assert.equal(res.status, 200);
  assert.equal(await run.done, 0);
  assertNoTokenLeft(r, [run.out(), run.err(), res.text]);
});

test('authorize: no callback within 10 minutes (an expired state) fails AUTHORIZATION_FAILED naming TWITCH_REDIRECT_URL, and the listener is gone', async (t) => {
  const r = await rig(t);
  const run = start(r, ['authorize']);
  const url = await authorizeUrl(run);
  await untilSleeping(r.clock, () => r.clock.pending > 0, 'the 10-minute wait');
  await r.clock.advance(10 * 60_000);
  assert.equal(await run.done, 1);
  assert.match(run.err(), /AUTHORIZATION_FAILED: No answer from Twitch at .* within 10 minutes: check that TWITCH_REDIRECT_URL is registered/);
  r.emu.setConsent({ userId: '2000' });
  const late = (await get(r, url)).location!;
  await assert.rejects(get(r, late), /ECONNREFUSED/, 'the expired state is answered by nobody');
  assert.equal(r.emu.userTokens().length, 0);
  assert.equal(record(r), undefined);
});

test('authorize: a denied consent gets a page that says so, exit 1 AUTHORIZATION_DENIED, nothing recorded', async (t) => {
  const r = await rig(t);
  r.emu.setConsent({ decision: 'deny' });
  const run = start(r, ['authorize', '--json']);
  const page = await browse(r, await authorizeUrl(run));
  assert.match(page.text, /Not authorized/);
  assert.equal(await run.done, 1);
  // stderr: the instructions for the person at the keyboard, then the error as one JSON object.
  assert.deepEqual(JSON.parse(run.err().trim().split('\n').at(-1)!), { error: { code: 'AUTHORIZATION_DENIED', message: "The user refused the authorization at Twitch's page" } });
  assert.equal(run.out(), '');
  assert.equal(record(r), undefined);
  assert.equal(r.emu.userTokens().length, 0);
});

test('authorize: a code issued to another client is refused by Twitch: exit 1, nothing recorded', async (t) => {
  const r = await rig(t);
  const other = r.emu.addClient({ redirectUris: [r.redirect] });
  r.emu.setConsent({ userId: '2000', clientId: other.clientId });
  const run = start(r, ['authorize']);
  const url = await authorizeUrl(run);
  const foreign = new URL(url);
  foreign.searchParams.set('client_id', other.clientId);
  const page = await browse(r, foreign);
  assert.match(page.text, /Not authorized/);
  assert.equal(await run.done, 1);
  assert.match(run.err(), /AUTHORIZATION_FAILED: Twitch refused the authorization code: 400 Invalid authorization code/);
  assert.equal(record(r), undefined);
  assert.equal(r.emu.userTokens(r.env.TWITCH_CLIENT_ID).length, 0);
});

test("authorize: a user token whose /validate names another client is refused (exit 77), revoked, and nothing is recorded", async (t) => {
  const r = await rig(t);
  r.emu.setConsent({ userId: '2000', login: 'mod_marigold' });
  r.emu.injectFault({
    kind: 'status',
    status: 200,
    body: { client_id: 'someoneelse0000000000000000000', login: 'mod_marigold', user_id: '2000', scopes: ['moderator:read:followers'], expires_in: 14000 },
    match: { method: 'GET', pathPrefix: '/oauth2/validate' },
    times: 1,
  });
  const run = start(r, ['authorize']);
  const page = await browse(r, await authorizeUrl(run));
  assert.match(page.text, /Not authorized/);
  assert.equal(await run.done, 77);
  assert.match(run.err(), /TOKEN_CLIENT_MISMATCH: The user token belongs to client someoneelse0000000000000000000, not to TWITCH_CLIENT_ID/);
  assert.equal(record(r), undefined);
  assert.equal(r.emu.userTokens().length, 1);
  assertNoTokenLeft(r, [run.out(), run.err(), page.text]);
});

test('authorize: a grant with fewer scopes than asked is recorded as given, and exit 1 names the missing scope', async (t) => {
  const r = await rig(t);
  r.emu.setConsent({ userId: '1000', login: 'streamer', scopes: ['bits:read'] });
  const run = start(r, ['authorize', '--scopes', 'bits:read,channel:read:subscriptions', '--user', '1000']);
  await browse(r, await authorizeUrl(run));
  assert.equal(await run.done, 1);
  assert.match(run.out(), /Still missing for 1000: channel:read:subscriptions/);
  assert.match(run.err(), /AUTHORIZATION_FAILED: Twitch does not show channel:read:subscriptions granted by 1000/);
  assert.deepEqual(record(r)!.users['1000']!.scopes, ['bits:read']);
  assertNoTokenLeft(r, [run.out(), run.err()]);
});

test('authorize: another user than the one asked for consents: exit 1 naming both', async (t) => {
  const r = await rig(t);
  r.emu.setConsent({ userId: '3000', login: 'wrong_account' });
  const run = start(r, ['authorize', '--user', '2000']);
  await browse(r, await authorizeUrl(run));
  assert.equal(await run.done, 1);
  assert.match(run.err(), /AUTHORIZATION_FAILED: wrong_account \(3000\) authorized, not the user asked for/);
  assertNoTokenLeft(r, [run.out(), run.err()]);
});

test('authorize --device: the code is shown, approved at the activation page, polled at Twitch\'s interval; the grant is recorded', async (t) => {
  const r = await rig(t, { env: { TWITCH_REDIRECT_URL: 'https://bot.example.com/twitch/callback' } });
  const run = start(r, ['authorize', '--device']);
  const line = await run.line(/enter the code/);
  const userCode = /the code ([A-Z0-9]+)/.exec(line)![1]!;
  assert.match(line, /activate\?.*device-code=/);
  await untilSleeping(r.clock, () => r.clock.pending > 0, 'the first poll wait');
  await r.clock.advance(5_000);
  await untilSleeping(r.clock, () => r.clock.pending > 0, 'the second poll wait (still pending)');
  r.emu.approveDevice(userCode, { userId: '2000', login: 'mod_marigold' });
  await r.clock.advance(5_000);
  assert.equal(await run.done, 0, run.err());
  assert.match(run.out(), /Authorized mod_marigold \(2000\) by device_code: moderator:read:followers/);
  assert.equal(record(r)!.users['2000']!.how, 'device_code');
  assertNoTokenLeft(r, [run.out(), run.err()]);
});

test('authorize --device: a code nobody answers expires: exit 1 AUTHORIZATION_FAILED; a denial: AUTHORIZATION_DENIED', async (t) => {
  const r = await rig(t);
  const run = start(r, ['authorize', '--device']);
  await run.line(/enter the code/);
  await untilSleeping(r.clock, () => r.clock.pending > 0, 'the first poll wait');
  await r.clock.advance(1_800_000);
  assert.equal(await run.done, 1);
  assert.match(run.err(), /AUTHORIZATION_FAILED: The code [A-Z0-9]+ expired after 1800 s without an answer: run eventsubd authorize --device again/);

  const denied = start(r, ['authorize', '--device']);
  const code = /the code ([A-Z0-9]+)/.exec(await denied.line(/enter the code/))![1]!;
  r.emu.approveDevice(code, 'deny');
  await untilSleeping(r.clock, () => r.clock.pending > 0, 'the poll wait');
  await r.clock.advance(5_000);
  assert.equal(await denied.done, 1);
  assert.match(denied.err(), /AUTHORIZATION_DENIED/);
  assert.equal(record(r), undefined);
});

test('authorize: the redirect port in use, or a redirect host that is not this machine, is a configuration error (exit 78) naming TWITCH_REDIRECT_URL', async (t) => {
  const r = await rig(t, { host: '127.0.0.1' });
  const port = Number(new URL(r.redirect).port);
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const busy = start(r, ['authorize']);
  assert.equal(await busy.done, 78);
  assert.match(busy.err(), /CONFIG_INVALID: Cannot listen on 127\.0\.0\.1:\d+ for TWITCH_REDIRECT_URL .*the port is in use/);

  r.env.TWITCH_REDIRECT_URL = 'https://bot.example.com/twitch/callback';
  const remote = start(r, ['authorize']);
  assert.equal(await remote.done, 78);
  assert.match(remote.err(), /TWITCH_REDIRECT_URL must be an http:\/\/ URL on this machine .* use --device/);
  assert.equal(r.emu.userTokens().length, 0);
});

test('authorize: TWITCH_REDIRECT_URL not registered for the app: Twitch redirects the error to the first registered URL; the command says what to fix after 10 minutes', async (t) => {
  const r = await rig(t, { registered: false });
  r.emu.setConsent({ userId: '2000' });
  const run = start(r, ['authorize']);
  const res = await get(r, await authorizeUrl(run));
  assert.equal(res.status, 302);
  assert.match(res.location!, /^http:\/\/localhost:3000\/\?error=redirect_mismatch/);
  await untilSleeping(r.clock, () => r.clock.pending > 0, 'the wait');
  await r.clock.advance(10 * 60_000);
  assert.equal(await run.done, 1);
  assert.match(run.err(), /registered as an OAuth Redirect URL of the app exactly/);
});

async function mkdirState(r: Rig): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(r.stateDir, { recursive: true, mode: 0o700 });
}

test('authorize: two users in turn, each with its own state; the first callback replayed to the second listener gets 400', async (t) => {
  const r = await rig(t);
  writeFileSync(
    r.env.EVENTSUBD_SUBSCRIPTIONS!,
    `${FOLLOW_FILE}  - type: channel.cheer\n    version: "1"\n    condition: { broadcaster_user_id: "1000" }\n`,
  );
  const run = start(r, ['authorize']);
  const firstUrl = await authorizeUrl(run);
  assert.equal(firstUrl.searchParams.get('scope'), 'bits:read', 'the broadcaster first (sorted by user id)');
  r.emu.setConsent({ userId: '1000', login: 'streamer' });
  const first = (await get(r, firstUrl)).location!;
  assert.equal((await get(r, first)).status, 200);

  const second = await run.line(/oauth2\/authorize\?.*moderator%3Aread%3Afollowers/);
  const secondUrl = new URL(second.trim());
  assert.notEqual(secondUrl.searchParams.get('state'), firstUrl.searchParams.get('state'));
  const replay = await get(r, first);
  assert.equal(replay.status, 400, 'a used state is not this run\'s');
  assert.equal(r.emu.userTokens().length, 1, 'the replay exchanged nothing');
  r.emu.setConsent({ userId: '2000', login: 'mod_marigold' });
  assert.equal((await browse(r, secondUrl)).status, 200);
  assert.equal(await run.done, 0, run.err());
  assert.deepEqual(Object.keys(record(r)!.users).sort(), ['1000', '2000']);
  assertNoTokenLeft(r, [run.out(), run.err(), replay.text]);
});
