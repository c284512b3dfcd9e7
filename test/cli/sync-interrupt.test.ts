/**
 * Issue 13: Ctrl-C during `subscriptions sync` stops it cleanly and says what was done and what was not, exit
 * 130. The built CLI in a child process against the emulator, whose creates are made to hang after the first
 * three (a latency fault); the test waits on the child's output, never on time.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEmulator } from '../../src/emulator/index.js';
import { BIN, emulatorSettings, tempDir } from '../helpers/cli.js';
import { writeStreamOnlineFile } from '../helpers/cli-in-process.js';
import { untilEmitted } from '../helpers/wait.js';

test('subscriptions sync: SIGINT during the apply prints what was created and what was not, and exits 130', async (t) => {
  const emulator = await startEmulator({});
  const dir = tempDir();
  t.after(async () => {
    await emulator.close();
    dir.cleanup();
  });
  const ids = Array.from({ length: 10 }, (_, i) => String(100 + i));
  const file = writeStreamOnlineFile(dir.path, ids);
  // Three creates answer at once; every later one hangs until the emulator closes.
  emulator.injectFault({ kind: 'latency', ms: 0, match: { method: 'POST' }, times: 3 });
  emulator.injectFault({ kind: 'latency', ms: 600_000, match: { method: 'POST' }, times: 100 });

  const child = spawn(process.execPath, [BIN, 'subscriptions', 'sync'], {
    cwd: dir.path,
    env: {
      PATH: process.env.PATH ?? '',
      ...emulatorSettings(emulator),
      EVENTSUB_SECRET: 'interrupt-test-secret-0123',
      EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
      EVENTSUBD_STATE_DIR: join(dir.path, 'state'),
      EVENTSUBD_SUBSCRIPTIONS: file,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

  const created = (): number => stderr.split('\n').filter((l) => l.includes('"msg":"Created subscription"')).length;
  await untilEmitted(child.stderr, 'data', () => created() === 3, 'three creates done');
  assert.match(stdout, /^plan: 10 to create, /m, 'the plan was printed before the apply');
  child.kill('SIGINT');
  assert.equal(await exited, 130, stderr);

  const after = stdout.slice(stdout.indexOf('Interrupted'));
  assert.match(after, /^Interrupted: 3 done, 7 not done\.$/m);
  const done = after.split('\n').filter((l) => l.startsWith('  done: created stream.online v1 broadcaster_user_id='));
  const notDone = after.split('\n').filter((l) => l.startsWith('  not done: create stream.online v1 broadcaster_user_id='));
  assert.equal(done.length, 3);
  assert.equal(notDone.length, 7);
  // Together they are the plan, each subscription once; and what Twitch has is what was reported done.
  const user = (l: string): string => /broadcaster_user_id=(\d+)/.exec(l)![1]!;
  assert.deepEqual([...done, ...notDone].map(user).sort(), ids);
  assert.deepEqual(emulator.subscriptions().map((s) => s.condition.broadcaster_user_id).sort(), done.map(user).sort());
  assert.match(after, /Run "eventsubd subscriptions sync" again to finish/);
  assert.doesNotMatch(stderr, /INTERNAL_ERROR|still open/);
});
