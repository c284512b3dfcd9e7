/**
 * Issue #10.4: the daemon does not use a state directory as it finds it. Modes that let others in are
 * tightened at start (SPEC: 0600 files in a 0700 directory); links and foreign files stop it (exit 78, see
 * test/reliability/bad-settings.test.ts for the exit codes).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startInProcessDaemon } from './in-process.js';

const mode = (p: string): number => statSync(p).mode & 0o777;

test('daemon start tightens a 0777 state directory and a 0644 token.json, and logs it at warn', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'eventsubd-modes-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const state = join(base, 'state');
  mkdirSync(join(state, 'cursors'), { recursive: true });
  chmodSync(state, 0o777);
  writeFileSync(join(state, 'token.json'), 'not json', { mode: 0o644 });
  chmodSync(join(state, 'token.json'), 0o644);
  const { logs } = await startInProcessDaemon(t, { EVENTSUBD_STATE_DIR: state });
  assert.equal(mode(state), 0o700);
  assert.equal(mode(join(state, 'cursors')), 0o700);
  assert.equal(mode(join(state, 'token.json')), 0o600);
  assert.equal(logs.records().filter((r) => r.level === 'warn' && r.msg === 'Tightened the mode of a state file that others could read or write').length, 3);
});

test('daemon start refuses a state directory holding a link with STATE_DIR_UNSAFE, before it listens', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'eventsubd-links-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const state = join(base, 'state');
  mkdirSync(state, { mode: 0o700 });
  writeFileSync(join(base, 'elsewhere.json'), '{}');
  symlinkSync(join(base, 'elsewhere.json'), join(state, 'token.json'));
  await assert.rejects(startInProcessDaemon(t, { EVENTSUBD_STATE_DIR: state }), {
    code: 'STATE_DIR_UNSAFE',
    message: `${join(state, 'token.json')} is a symbolic link: eventsubd does not follow links inside its state directory; remove it`,
  });
});
