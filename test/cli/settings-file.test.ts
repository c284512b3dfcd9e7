/**
 * Issue 13: the settings-file flag works on Node 20. Node 20 parses `--env-file` itself, even after the script
 * name, and exits 9 before eventsubd runs when the file is missing (https://github.com/nodejs/node/issues/54232),
 * so the flag is `--settings-file`; `--env-file` stays as a deprecated alias. The built CLI in a child process.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers/cli.js';

function settingsFile(): { dir: string; file: string; cleanup: () => void } {
  const d = tempDir();
  const file = join(d.path, 'eventsubd.env');
  writeFileSync(file, 'TWITCH_CLIENT_ID=from-the-settings-file\nEVENTSUBD_LOG_LEVEL=warn\n');
  return { dir: d.path, file, cleanup: d.cleanup };
}

test('--settings-file naming a missing file: one line naming the flag and the path, CONFIG_INVALID, exit 78', async (t) => {
  const { dir, cleanup } = settingsFile();
  t.after(cleanup);
  const missing = join(dir, 'nope.env');
  for (const args of [['--settings-file', missing], [`--settings-file=${missing}`]]) {
    const res = await runCli(['config', 'check', ...args], { cwd: dir });
    assert.equal(res.code, 78, res.stderr);
    assert.equal(res.stderr, `eventsubd: CONFIG_INVALID: --settings-file: cannot read ${missing}: no such file\n`);
    assert.equal(res.stdout, '');
  }
});

test('--settings-file naming a present file: the settings are read from it, and the process environment beats it', async (t) => {
  const { dir, file, cleanup } = settingsFile();
  t.after(cleanup);
  const fromFile = await runCli(['config', 'check', '--settings-file', file], { cwd: dir, env: { TWITCH_CLIENT_SECRET: 'a-client-secret-0123' } });
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /^TWITCH_CLIENT_ID +from-the-settings-file$/m);
  assert.match(fromFile.stdout, /^EVENTSUBD_LOG_LEVEL +warn$/m);
  const overridden = await runCli(['config', 'check', '--settings-file', file], {
    cwd: dir,
    env: { TWITCH_CLIENT_SECRET: 'a-client-secret-0123', TWITCH_CLIENT_ID: 'from-the-environment' },
  });
  assert.match(overridden.stdout, /^TWITCH_CLIENT_ID +from-the-environment$/m);
});

test('--env-file (the former name) still reads a present file, with a deprecation warning naming --settings-file', async (t) => {
  const { dir, file, cleanup } = settingsFile();
  t.after(cleanup);
  const res = await runCli(['config', 'check', '--env-file', file], { cwd: dir, env: { TWITCH_CLIENT_SECRET: 'a-client-secret-0123' } });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^TWITCH_CLIENT_ID +from-the-settings-file$/m);
  assert.match(res.stderr, /^eventsubd: warning: --env-file is deprecated .*: use --settings-file$/m);
  const both = await runCli(['config', 'check', '--env-file', file, '--settings-file', file], { cwd: dir });
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^eventsubd: USAGE_ERROR: --settings-file and --env-file name the same file: pass only --settings-file\n$/);
});

test('help lists --settings-file, globally and after a command', async () => {
  const global = await runCli(['--help']);
  assert.match(global.stdout, /--settings-file PATH +read settings from PATH/);
  const command = await runCli(['subscriptions', 'sync', '--help']);
  assert.match(command.stdout, /--settings-file PATH +read settings from PATH/);
});
