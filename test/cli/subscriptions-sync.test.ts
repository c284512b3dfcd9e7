/**
 * Issue 13, "Output a person can read" and "the daemon will prune it": `subscriptions sync` and `subscriptions
 * create` run in-process (the real runner and output) against the emulator, with a fake terminal on stderr.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { writeConduitRecord } from '../../src/conduit/conduit-store.js';
import { test, type TestContext } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { emulatorSettings, tempDir } from '../helpers/cli.js';
import { runCliInProcess, writeStreamOnlineFile, type InProcessRun } from '../helpers/cli-in-process.js';
import { screen } from '../helpers/terminal.js';
import { mintRaw } from '../integration/helpers.js';

const CALLBACK = 'https://events.example.com/twitch/eventsub';
const SECRET = 'sync-test-webhook-secret-0123';

type Run = InProcessRun;

interface Rig {
  emulator: Emulator;
  file: string;
  stateDir: string;
  cli(argv: string[], options?: { tty?: boolean; env?: Record<string, string> }): Promise<Run>;
}

async function rig(t: TestContext, declared: readonly string[]): Promise<Rig> {
  const emulator = await startEmulator({});
  const dir = tempDir();
  t.after(async () => {
    await emulator.close();
    dir.cleanup();
  });
  const file = writeStreamOnlineFile(dir.path, declared);
  const stateDir = join(dir.path, 'state');
  return {
    emulator,
    file,
    stateDir,
    cli: (argv, options = {}) =>
      runCliInProcess(argv, {
        env: {
          ...emulatorSettings(emulator),
          EVENTSUB_SECRET: SECRET,
          EVENTSUB_CALLBACK_URL: CALLBACK,
          EVENTSUBD_STATE_DIR: stateDir,
          EVENTSUBD_SUBSCRIPTIONS: file,
          ...options.env,
        },
        ...(options.tty === undefined ? {} : { tty: options.tty }),
      }),
  };
}

test('subscriptions sync on a terminal: prints the plan before applying it, a progress line, and log lines left whole', async (t) => {
  const r = await rig(t, ['1', '2', '3', '4', '5']);
  const res = await r.cli(['subscriptions', 'sync'], { tty: true });
  assert.equal(res.code, 0, res.err);
  const out = res.out.split('\n');
  assert.equal(out[0], '+ create stream.online v1 broadcaster_user_id=1');
  assert.ok(out.includes('plan: 5 to create, 0 to recreate, 0 to delete, 0 to keep, 0 blocked, 0 unmanaged'));
  assert.equal(out.filter((l) => l.startsWith('+ create')).length, 5, 'the plan is printed once');
  assert.ok(res.both.indexOf('plan: 5 to create') < res.both.indexOf('"Created subscription"'), 'the plan comes before the first create');
  assert.match(res.out, /Applied: 5 created, 0 adopted/);
  assert.ok(res.err.includes('\r\x1b[2Kcreated 5/5'), 'the progress line was drawn');
  // On the screen: every log line whole (valid JSON), and the progress line gone at the end.
  const lines = screen(res.err);
  assert.equal(lines.at(-1), '');
  for (const line of lines.slice(0, -1)) assert.doesNotThrow(() => JSON.parse(line), `a broken log line: ${JSON.stringify(line)}`);
  assert.equal(lines.filter((l) => l.includes('"Created subscription"')).length, 5);
  assert.equal(r.emulator.subscriptions().length, 5);
});

test('subscriptions sync off a terminal: no progress line, plain log lines', async (t) => {
  const r = await rig(t, ['1', '2']);
  const res = await r.cli(['subscriptions', 'sync'], { tty: false });
  assert.equal(res.code, 0, res.err);
  assert.ok(!res.err.includes('\r') && !res.err.includes('\x1b'), 'no control characters off a terminal');
  for (const line of res.err.trimEnd().split('\n')) JSON.parse(line);
});

test('subscriptions sync --dry-run shows what the daemon (EVENTSUBD_PRUNE) would also delete, in text and JSON', async (t) => {
  const r = await rig(t, ['1']);
  assert.equal((await r.cli(['subscriptions', 'create', '--type', 'stream.online', '--version', '1', '--condition', 'broadcaster_user_id=9'])).code, 0);
  const undeclared = r.emulator.subscriptions().find((s) => s.condition.broadcaster_user_id === '9')!;

  const text = await r.cli(['subscriptions', 'sync', '--dry-run']);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /\? unmanaged stream\.online v1 broadcaster_user_id=9/);
  assert.match(text.out, /the daemon \(EVENTSUBD_PRUNE=true\) would also delete 1 owned subscription the file does not declare:\n {2}- delete stream\.online v1 broadcaster_user_id=9 \(id [^)]+\)\n/);
  const json = JSON.parse((await r.cli(['subscriptions', 'sync', '--dry-run', '--json'])).out) as { daemon: unknown };
  assert.deepEqual(json.daemon, { prune: true, would_also_delete: [{ id: undeclared.id, subscription: 'stream.online v1 broadcaster_user_id=9' }] });

  const off = await r.cli(['subscriptions', 'sync', '--dry-run'], { env: { EVENTSUBD_PRUNE: 'false' } });
  assert.doesNotMatch(off.out, /the daemon/);
  const offJson = JSON.parse((await r.cli(['subscriptions', 'sync', '--dry-run', '--json'], { env: { EVENTSUBD_PRUNE: 'false' } })).out) as { daemon: unknown };
  assert.deepEqual(offJson.daemon, { prune: false, would_also_delete: [] });
  // With --prune the CLI deletes it itself: nothing "also" for the daemon.
  assert.doesNotMatch((await r.cli(['subscriptions', 'sync', '--dry-run', '--prune'])).out, /the daemon/);
  assert.equal(r.emulator.subscriptions().length, 1, 'dry runs changed nothing');
});

test('subscriptions create warns on stderr, before creating, of a subscription the daemon will prune; still creates it', async (t) => {
  const r = await rig(t, ['1']);
  const create = (id: string, env?: Record<string, string>): Promise<Run> =>
    r.cli(['subscriptions', 'create', '--type', 'stream.online', '--version', '1', '--condition', `broadcaster_user_id=${id}`], { ...(env ? { env } : {}) });
  const pruned = await create('9');
  assert.equal(pruned.code, 0, pruned.err);
  const first = pruned.err.split('\n')[0]!;
  assert.equal(
    first,
    `eventsubd: warning: the daemon will delete this subscription at its next sync: it is not declared in ${r.file} ` +
      '(EVENTSUBD_SUBSCRIPTIONS) and EVENTSUBD_PRUNE is true; declare it there, or set EVENTSUBD_PRUNE=false',
    'the warning comes first, before any log line of the create',
  );
  assert.match(pruned.out, /^Created stream\.online v1/);
  assert.equal(r.emulator.subscriptions().length, 1);

  for (const [id, env] of [['1', undefined], ['8', { EVENTSUBD_PRUNE: 'false' }]] as const) {
    const kept = await create(id, env);
    assert.equal(kept.code, 0, kept.err);
    assert.doesNotMatch(kept.err, /warning/, `no warning for ${id}`);
  }
});

/** Creates a conduit of the emulator's first client straight through Helix (as the daemon would); returns its id. */
async function createConduit(emulator: Emulator): Promise<string> {
  const client = emulator.clients[0]!;
  const token = await mintRaw(emulator, client);
  const res = await request(`${emulator.apiUrl}/eventsub/conduits`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'client-id': client.clientId, 'content-type': 'application/json' },
    body: JSON.stringify({ shard_count: 1 }),
  });
  const json = (await res.body.json()) as { data: { id: string }[] };
  assert.equal(res.statusCode, 200);
  return json.data[0]!.id;
}

const CONDUIT_MODE = { EVENTSUBD_TRANSPORT: 'conduit' };

test('subscriptions sync in conduit mode with no conduit yet: exit 78 naming EVENTSUBD_CONDUIT_ID, nothing sent', async (t) => {
  const r = await rig(t, ['1']);
  const res = await r.cli(['subscriptions', 'sync'], { env: CONDUIT_MODE });
  assert.equal(res.code, 78, res.err);
  assert.match(res.err, /No conduit yet: start `eventsubd run` once in conduit mode, it creates one, or set EVENTSUBD_CONDUIT_ID/);
  assert.equal(r.emulator.subscriptions().length, 0);
});

test('subscriptions sync in conduit mode uses the recorded conduit and migrates the webhooks to it; list shows the conduit', async (t) => {
  const r = await rig(t, ['1', '2']);
  assert.equal((await r.cli(['subscriptions', 'sync'])).code, 0, 'two webhooks first');
  const conduit = await createConduit(r.emulator);
  mkdirSync(r.stateDir, { recursive: true, mode: 0o700 });
  await writeConduitRecord(r.stateDir, { conduit_id: conduit, created_at: '2026-12-01T00:00:00.000Z', previous: [] });

  const dry = await r.cli(['subscriptions', 'sync', '--dry-run'], { env: CONDUIT_MODE });
  assert.equal(dry.code, 0, dry.err);
  assert.match(dry.out, new RegExp(`> migrate stream\\.online v1 broadcaster_user_id=1 \\(webhook -> conduit ${conduit}, id [^)]+\\)`));
  assert.ok(dry.out.includes('plan: 2 to create, 0 to recreate, 2 to migrate, 0 to delete, 0 to keep, 0 blocked, 0 unmanaged'), dry.out);

  const res = await r.cli(['subscriptions', 'sync', '--json'], { env: CONDUIT_MODE });
  assert.equal(res.code, 0, res.err);
  const json = JSON.parse(res.out) as { plan: Record<string, number>; result: Record<string, unknown> };
  assert.equal(json.plan.migrate, 2);
  assert.deepEqual([json.result.created, json.result.migrated, json.result.deleted], [2, 2, 0]);
  assert.deepEqual(r.emulator.subscriptions().map((s) => s.transport), [
    { method: 'conduit', conduit_id: conduit },
    { method: 'conduit', conduit_id: conduit },
  ]);

  const list = await r.cli(['subscriptions', 'list'], { env: CONDUIT_MODE });
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /COST\s+TRANSPORT\n/);
  assert.equal(list.out.split('\n').filter((l) => l.endsWith(`conduit ${conduit}`)).length, 2);
});

test('subscriptions create in conduit mode creates on EVENTSUBD_CONDUIT_ID', async (t) => {
  const r = await rig(t, ['1']);
  const conduit = await createConduit(r.emulator);
  const res = await r.cli(['subscriptions', 'create', '--type', 'stream.online', '--version', '1', '--condition', 'broadcaster_user_id=1', '--json'], {
    env: { ...CONDUIT_MODE, EVENTSUBD_CONDUIT_ID: conduit },
  });
  assert.equal(res.code, 0, res.err);
  assert.doesNotMatch(res.err, /warning/, 'declared: the daemon keeps it');
  assert.deepEqual((JSON.parse(res.out) as { subscription: { transport: unknown } }).subscription.transport, { method: 'conduit', conduit_id: conduit });
  assert.equal(r.emulator.subscriptions()[0]?.status, 'enabled');
});
