/**
 * `eventsubd users lookup`: logins to the numeric ids conditions need, through the CLI runner against the emulator's
 * Get Users (app token).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { emulatorSettings, tempDir } from '../helpers/cli.js';
import { cliInProcess } from '../helpers/cli-in-process.js';

async function rig(t: TestContext): Promise<{ emulator: Emulator; lookup: (...args: string[]) => ReturnType<typeof cliInProcess> }> {
  const emulator = await startEmulator({});
  const dir = tempDir();
  t.after(async () => {
    await emulator.close();
    dir.cleanup();
  });
  emulator.registerUser({ id: '12345', login: 'demo_streamer', display_name: 'Demo_Streamer' });
  emulator.registerUser({ id: '4242', login: 'bot_account' });
  emulator.registerUser({ id: '808', login: 'kaze_jp', display_name: '風' });
  const env = { ...emulatorSettings(emulator), EVENTSUBD_STATE_DIR: join(dir.path, 'state') };
  return { emulator, lookup: (...args) => cliInProcess(['users', 'lookup', ...args], env) };
}

test('users lookup prints each login with its id, in the order asked, any case and @ accepted', async (t) => {
  const { lookup } = await rig(t);
  const run = await lookup('Bot_Account', '@demo_streamer', 'kaze_jp');
  assert.equal(run.code, 0, run.err);
  assert.deepEqual(run.out.trim().split('\n'), ['bot_account 4242', 'demo_streamer 12345', 'kaze_jp 808 (風)'], 'a display name only when it is more than the login in another case');
  const json = await lookup('demo_streamer', '--json');
  assert.equal(json.code, 0, json.err);
  assert.deepEqual(JSON.parse(json.out), { users: [{ id: '12345', login: 'demo_streamer', display_name: 'Demo_Streamer', broadcaster_type: '' }], missing: [] });
});

test('users lookup of an unknown login prints the others, then USER_NOT_FOUND naming it, exit 1', async (t) => {
  const { lookup } = await rig(t);
  const run = await lookup('demo_streamer', 'nobody_here');
  assert.equal(run.code, 1);
  assert.equal(run.out.trim(), 'demo_streamer 12345');
  assert.equal(run.err.trim().split('\n').at(-1), 'eventsubd: USER_NOT_FOUND: Twitch knows no user with the login nobody_here');
  const json = await lookup('nobody_here', '--json');
  assert.deepEqual(JSON.parse(json.out), { users: [], missing: ['nobody_here'] });
});

test('users lookup refuses what cannot be a login before asking Twitch (exit 2), and needs a login', async (t) => {
  const { emulator, lookup } = await rig(t);
  const before = { mints: emulator.stats.mints, helix: emulator.stats.helix.total };
  const bad = await lookup('demo streamer', 'ok_name', 'x'.repeat(26));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^eventsubd: USAGE_ERROR: Not a Twitch login .*"demo streamer", "x{26}"\n$/);
  assert.deepEqual({ mints: emulator.stats.mints, helix: emulator.stats.helix.total }, before, "nothing was sent to Twitch");
  const none = await lookup();
  assert.equal(none.code, 2);
  assert.match(none.err, /USAGE_ERROR/);
});
