/**
 * Issue #6, item 3: bad settings and hostile subscriptions files. Each case must give exactly one stderr line
 * and exit 78 for `config check`, `subscriptions sync` and `run`, and not one request may reach the emulator.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEmulator } from '../../src/emulator/index.js';
import { SETTING_NAMES } from '../../src/config/settings.js';
import { emulatorSettings, runCli, tempDir } from '../helpers/cli.js';

interface Case {
  name: string;
  env?: Record<string, string>;
  /** Contents of the subscriptions file. */
  file?: string | Buffer;
  ext?: string;
  /**
   * Makes the case hostile before its runs: `state` is its EVENTSUBD_STATE_DIR, `scratch` a directory beside
   * it. Returns settings to add, and a check made after the runs (a failure line, or undefined).
   */
  prepare?: (state: string, scratch: string) => { env?: Record<string, string>; check?: () => string | undefined };
  /** The one stderr line must match this (issue #13: the message names what to fix). */
  expect?: RegExp;
}

const entry = (i: number): string => `  - type: stream.online\n    version: "1"\n    condition: { broadcaster_user_id: "${i}" }\n`;

/** A billion-laughs document: 9 levels of 9 aliases each (9^9 nodes if expanded without a bound). */
function yamlBomb(): string {
  let s = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let l = 1; l < 9; l++) {
    const prev = String.fromCharCode(96 + l);
    const cur = String.fromCharCode(97 + l);
    s += `${cur}: &${cur} [${Array(9).fill('*' + prev).join(',')}]\n`;
  }
  return s + 'subscriptions: *i\n';
}

const CASES: Case[] = [
  { name: 'EVENTSUBD_PRUNE not a boolean', env: { EVENTSUBD_PRUNE: 'yes please' } },
  { name: 'EVENTSUBD_LISTEN port out of range', env: { EVENTSUBD_LISTEN: '127.0.0.1:70000' } },
  { name: 'EVENTSUBD_JOURNAL_MAX_BYTES below 1 MiB', env: { EVENTSUBD_JOURNAL_MAX_BYTES: '1000' } },
  // Issue #14: conduit mode's settings.
  { name: 'EVENTSUBD_CONDUIT_SHARDS=0', env: { EVENTSUBD_TRANSPORT: 'conduit', EVENTSUBD_CONDUIT_SHARDS: '0' }, expect: /EVENTSUBD_CONDUIT_SHARDS must be a whole number from 1 to 20000/ },
  { name: 'EVENTSUBD_CONDUIT_SHARDS over the limit', env: { EVENTSUBD_TRANSPORT: 'conduit', EVENTSUBD_CONDUIT_SHARDS: '20001' }, expect: /EVENTSUBD_CONDUIT_SHARDS must be a whole number from 1 to 20000/ },
  { name: 'EVENTSUBD_TRANSPORT websocket', env: { EVENTSUBD_TRANSPORT: 'websocket' }, expect: /EVENTSUBD_TRANSPORT must be webhook or conduit/ },
  { name: 'EVENTSUB_CALLBACK_URL http to a public Twitch', env: { TWITCH_API_URL: 'https://api.twitch.tv/helix', EVENTSUB_CALLBACK_URL: 'http://x.example/cb' } },
  {
    name: 'three bad values, all reported',
    env: { EVENTSUBD_PRUNE: 'maybe', EVENTSUBD_JOURNAL_FSYNC: 'never', EVENTSUBD_LOG_LEVEL: 'loud' },
    expect: /^eventsubd: CONFIG_INVALID: Settings: 3 problems: EVENTSUBD_PRUNE must be true or false; EVENTSUBD_JOURNAL_FSYNC must be group or each; EVENTSUBD_LOG_LEVEL must be one of /,
  },
  { name: 'version of the wrong type (a list)', file: 'subscriptions:\n  - type: stream.online\n    version: [1]\n    condition: { broadcaster_user_id: "1" }\n' },
  { name: 'unknown key', file: 'subscriptions:\n  - type: stream.online\n    version: "1"\n    condition: { broadcaster_user_id: "1" }\n    colour: red\n' },
  { name: 'websocket transport', file: 'subscriptions:\n  - type: stream.online\n    version: "1"\n    condition: { broadcaster_user_id: "1" }\n    transport: { method: websocket }\n' },
  { name: '6 MiB file', file: 'subscriptions:\n' + entry(1) + '#' + 'x'.repeat(6 * 1024 * 1024) + '\n' },
  { name: '20,000 entries', file: 'subscriptions:\n' + Array.from({ length: 20_000 }, (_, i) => entry(i)).join('') },
  { name: 'YAML alias bomb', file: yamlBomb() },
  // Issue #13: entries checked against the catalogue, with the nearest valid name.
  {
    name: 'unknown type',
    file: 'subscriptions:\n  - type: channel.folow\n    version: "2"\n    condition: { broadcaster_user_id: "1", moderator_user_id: "1" }\n',
    expect: /^eventsubd: CONFIG_INVALID: \S+subs-\d+\.yaml:2: subscriptions\[0\]\.type: "channel\.folow" is not an EventSub subscription type: did you mean "channel\.follow"\?$/,
  },
  {
    name: 'unknown version',
    file: 'subscriptions:\n  - type: channel.follow\n    version: "1"\n    condition: { broadcaster_user_id: "1", moderator_user_id: "1" }\n',
    expect: /subs-\d+\.yaml:2: subscriptions\[0\]\.version: channel\.follow has no version "1": use "2"$/,
  },
  {
    name: 'unknown condition field',
    file: 'subscriptions:\n  - type: channel.follow\n    version: "2"\n    condition: { broadcaster_id: "1", moderator_user_id: "1" }\n',
    expect: /subscriptions\[0\]\.condition\.broadcaster_id: channel\.follow version 2 has no condition field "broadcaster_id": did you mean "broadcaster_user_id"\?$/,
  },
  {
    name: 'three catalogue mistakes at once',
    file: 'subscriptions:\n  - { type: channel.folow, version: "2", condition: { broadcaster_user_id: "1" } }\n  - { type: channel.follow, version: "1", condition: { broadcaster_user_id: "1" } }\n  - { type: stream.online, version: "1", condition: { broadcaster_id: "1" } }\n',
    expect: /subs-\d+\.yaml: 3 problems: line 2: .*channel\.follow.*; line 3: .*use "2"; line 4: .*did you mean "broadcaster_user_id"\?$/,
  },
  { name: 'not UTF-8 / binary', file: Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x81]) },
];

/** Runs each (case, command) and returns a line per run that is not "exit 78 with one short stderr line". */
async function runCases(cases: readonly Case[], commands: readonly string[][], timeoutMs: number): Promise<{ failures: string[]; runs: number; requests: number }> {
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
  const dir = tempDir('eventsubd-badcfg-');
  try {
    const client = emulator.clients[0]!;
    const jobs: Array<() => Promise<string | undefined>> = [];
    const checks: Array<() => string | undefined> = [];
    cases.forEach((c, i) => {
      const file = join(dir.path, `subs-${i}.yaml`);
      writeFileSync(file, c.file ?? 'subscriptions:\n' + entry(1));
      const scratch = join(dir.path, `scratch-${i}`);
      mkdirSync(scratch);
      const hostile = c.prepare?.(join(dir.path, `state-${i}`), scratch) ?? {};
      if (hostile.check) checks.push(hostile.check);
      const env = {
        TWITCH_CLIENT_ID: client.clientId,
        TWITCH_CLIENT_SECRET: client.clientSecret,
        TWITCH_AUTH_URL: emulator.authUrl,
        TWITCH_API_URL: emulator.apiUrl,
        EVENTSUB_SECRET: 'bad-settings-secret-0123',
        EVENTSUB_CALLBACK_URL: 'http://127.0.0.1:1/twitch/eventsub',
        EVENTSUBD_LISTEN: '127.0.0.1:0',
        EVENTSUBD_STATE_DIR: join(dir.path, `state-${i}`),
        EVENTSUBD_SUBSCRIPTIONS: file,
        ...c.env,
        ...hostile.env,
      };
      for (const args of commands) {
        jobs.push(async () => {
          const r = await runCli(args, { env, timeoutMs });
          const lines = r.stderr.split('\n').filter((l) => l.trim().length > 0);
          if (r.code === 78 && lines.length === 1 && r.stderr.length < 2_000 && (!c.expect || c.expect.test(lines[0]!))) return undefined;
          return `${c.name} / ${args.join(' ')}: exit ${r.code}, ${lines.length} stderr lines: ${lines.at(-1)?.slice(0, 200)}`;
        });
      }
    });
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 3 }, async () => {
        while (next < jobs.length) {
          const f = await jobs[next++]!();
          if (f) failures.push(f);
        }
      }),
    );
    for (const check of checks) {
      const f = check();
      if (f) failures.push(f);
    }
    return { failures, runs: jobs.length, requests: emulator.stats.requests.length };
  } finally {
    await emulator.close();
    dir.cleanup();
  }
}

const ENV_CASES = CASES.filter((c) => c.env);
const FILE_CASES = CASES.filter((c) => c.file !== undefined);

test(`bad settings: ${ENV_CASES.length} bad env values give one stderr line and exit 78 for config check, subscriptions sync and run; ${FILE_CASES.length} hostile subscriptions files do for config check and subscriptions sync; no request reaches Twitch`, async (t) => {
  const a = await runCases(ENV_CASES, [['config', 'check'], ['subscriptions', 'sync'], ['run']], 20_000);
  const b = await runCases(FILE_CASES, [['config', 'check'], ['subscriptions', 'sync']], 20_000);
  t.diagnostic(`${a.runs + b.runs} runs; failures ${a.failures.length + b.failures.length}; emulator requests ${a.requests + b.requests}`);
  assert.deepEqual([...a.failures, ...b.failures], []);
  assert.equal(a.requests + b.requests, 0, 'no request reached the emulator');
});

// `run` validates the subscriptions file before it binds or calls Twitch (this test found it did not).
test(
  'bad settings: run refuses a hostile subscriptions file at start with one stderr line and exit 78, before any request to Twitch',
  async (t) => {
    const names = ['unknown key', 'websocket transport', 'YAML alias bomb', 'unknown type', 'unknown version', 'unknown condition field'];
    const c = await runCases(FILE_CASES.filter((x) => names.includes(x.name)), [['run']], 8_000);
    t.diagnostic(`${c.runs} runs; failures ${c.failures.length}; emulator requests ${c.requests}`);
    for (const f of c.failures) t.diagnostic(f);
    assert.deepEqual(c.failures, []);
    assert.equal(c.requests, 0, 'no request reached the emulator');
  },
);

/** A port held by the hostile-state test, for the EADDRINUSE case. */
let held: number | undefined;
const heldPort = (): number => held ?? assert.fail('no port held');

/**
 * Issue #10.4 and #10.7: a state directory or a secret file that cannot be trusted stops `run` at start.
 * Issue #13: so do a state directory that cannot be used and a listen address in use, naming the setting.
 */
const HOSTILE_STATE: Case[] = [
  {
    name: 'a journal segment that is a symbolic link',
    prepare: (state, scratch) => {
      mkdirSync(join(state, 'journal'), { recursive: true, mode: 0o700 });
      const victim = join(scratch, 'victim.txt');
      writeFileSync(victim, 'keep me\n');
      symlinkSync(victim, join(state, 'journal', '00000000000000000001.jsonl'));
      return { check: () => (readFileSync(victim, 'utf8') === 'keep me\n' ? undefined : 'the symlink\'s target was changed') };
    },
  },
  {
    name: 'token.json that is a FIFO',
    prepare: (state) => {
      mkdirSync(state, { recursive: true, mode: 0o700 });
      execFileSync('mkfifo', [join(state, 'token.json')]);
      return {};
    },
  },
  {
    name: 'EVENTSUBD_STATE_DIR that is a file',
    prepare: (state) => (writeFileSync(state, 'not a directory'), {}),
    expect: /^eventsubd: STATE_DIR_INVALID: The state directory \S+ \(EVENTSUBD_STATE_DIR\) is not a directory: /,
  },
  {
    name: 'EVENTSUBD_STATE_DIR below a file',
    prepare: (_state, scratch) => {
      writeFileSync(join(scratch, 'file'), 'not a directory');
      return { env: { EVENTSUBD_STATE_DIR: join(scratch, 'file', 'state') } };
    },
    expect: /^eventsubd: STATE_DIR_INVALID: The state directory \S+ \(EVENTSUBD_STATE_DIR\) does not exist and cannot be created: a part of its path is a file, not a directory \(ENOTDIR\)/,
  },
  {
    name: 'EVENTSUBD_STATE_DIR a link to nothing',
    prepare: (state, scratch) => (symlinkSync(join(scratch, 'gone'), state), {}),
    expect: /^eventsubd: STATE_DIR_INVALID: The state directory \S+ \(EVENTSUBD_STATE_DIR\) is a symbolic link to \S+gone, which does not exist/,
  },
  {
    name: 'EVENTSUBD_LISTEN in use',
    prepare: () => ({ env: { EVENTSUBD_LISTEN: `127.0.0.1:${heldPort()}` } }),
    expect: /^eventsubd: LISTEN_FAILED: Cannot listen on 127\.0\.0\.1:\d+ \(EVENTSUBD_LISTEN\): the address is already in use \(EADDRINUSE\)/,
  },
  {
    name: 'EVENTSUB_SECRET_FILE that is a FIFO',
    prepare: (_state, scratch) => {
      execFileSync('mkfifo', [join(scratch, 'secret')]);
      return { env: { EVENTSUB_SECRET: '', EVENTSUB_SECRET_FILE: join(scratch, 'secret') } };
    },
  },
];

test(`hostile state: ${HOSTILE_STATE.length} untrustworthy or unusable state directories, secret files and listen addresses stop run with one stderr line and exit 78, and nothing is written through a link`, async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  held = (holder.address() as AddressInfo).port;
  const c = await runCases(HOSTILE_STATE, [['run']], 8_000);
  t.diagnostic(`${c.runs} runs; failures ${c.failures.length}; emulator requests ${c.requests}`);
  for (const f of c.failures) t.diagnostic(f);
  assert.deepEqual(c.failures, []);
  assert.equal(c.requests, 0, 'no request reached the emulator');
});

// Issue #13: a misspelt setting name is ignored with a warning that names the nearest setting, never fatal;
// `config check` shows every setting, secrets only as set / not set.
test('config check warns once per misspelt setting name (environment and .env), exits 0, and shows every setting without a secret', async (t) => {
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
  const dir = tempDir('eventsubd-unknown-');
  t.after(async () => {
    await emulator.close();
    dir.cleanup();
  });
  writeFileSync(join(dir.path, '.env'), 'EVENTSUBD_FORWRD_URL=http://127.0.0.1:3000/hook\n');
  const env = {
    ...emulatorSettings(emulator),
    EVENTSUB_SECRET: 'unknown-names-secret-0123',
    EVENTSUBD_STREAM_TOKEN: 'stream-token-not-printed-0123',
    EVENTSUBD_STATE_DIR: join(dir.path, 'state'),
    EVENTSUBD_LISTN: '127.0.0.1:9999',
    TWITCH_OAUTH_TOKEN: 'another tool, not warned about',
  };
  const r = await runCli(['config', 'check'], { env, cwd: dir.path });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stderr.split('\n').filter((l) => l.length > 0).sort(), [
    'eventsubd: warning: EVENTSUBD_FORWRD_URL is not a setting of eventsubd and is ignored: did you mean EVENTSUBD_FORWARD_URL?',
    'eventsubd: warning: EVENTSUBD_LISTN is not a setting of eventsubd and is ignored: did you mean EVENTSUBD_LISTEN?',
  ]);
  for (const name of SETTING_NAMES) assert.match(r.stdout, new RegExp(`^${name} +\\S`, 'm'), `${name} is shown`);
  assert.match(r.stdout, /^EVENTSUBD_LISTEN +127\.0\.0\.1:8080$/m, 'the misspelt setting is not used');
  assert.match(r.stdout, /^TWITCH_CLIENT_SECRET +set$/m);
  assert.match(r.stdout, /^EVENTSUBD_STREAM_TOKEN +set$/m);
  assert.match(r.stdout, /^Configuration OK\.$/m);
  for (const secret of [emulator.clients[0]!.clientSecret, env.EVENTSUB_SECRET, env.EVENTSUBD_STREAM_TOKEN]) {
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'no secret is printed');
  }
});

test('unusable state directory: subscriptions sync and token status name EVENTSUBD_STATE_DIR and exit 78 before any request to Twitch', async (t) => {
  const c = await runCases(HOSTILE_STATE.filter((x) => x.name.startsWith('EVENTSUBD_STATE_DIR')), [['subscriptions', 'sync'], ['token', 'status']], 8_000);
  t.diagnostic(`${c.runs} runs; failures ${c.failures.length}; emulator requests ${c.requests}`);
  for (const f of c.failures) t.diagnostic(f);
  assert.deepEqual(c.failures, []);
  assert.equal(c.requests, 0, 'no request reached the emulator');
});

test('authorize refuses a subscriptions file the catalogue refuses like the other commands: one stderr line, exit 78, no request to Twitch', async (t) => {
  const names = ['unknown type', 'unknown version', 'unknown condition field', 'three catalogue mistakes at once'];
  const c = await runCases(FILE_CASES.filter((x) => names.includes(x.name)), [['authorize']], 8_000);
  t.diagnostic(`${c.runs} runs; failures ${c.failures.length}; emulator requests ${c.requests}`);
  for (const f of c.failures) t.diagnostic(f);
  assert.equal(c.runs, names.length);
  assert.deepEqual(c.failures, []);
  assert.equal(c.requests, 0, 'no request reached the emulator');
});
