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
import type { AppError } from '../../src/lib/errors.js';
import { secureStateDir } from '../../src/lib/state-dir.js';
import { captureLogs } from '../auth/fakes.js';
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

// Issue #13: a state directory that cannot be used names EVENTSUBD_STATE_DIR, says what is wrong, exit 78.
const logger = captureLogs().logger;

test('daemon start refuses a state directory below a file with STATE_DIR_INVALID (exit 78) naming EVENTSUBD_STATE_DIR', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'eventsubd-notdir-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  writeFileSync(join(base, 'file'), 'a file');
  const state = join(base, 'file', 'state');
  await assert.rejects(startInProcessDaemon(t, { EVENTSUBD_STATE_DIR: state }), (err: AppError) => {
    assert.equal(err.code, 'STATE_DIR_INVALID');
    assert.equal(err.exitCode, 78);
    assert.equal(
      err.message,
      `The state directory ${state} (EVENTSUBD_STATE_DIR) does not exist and cannot be created: a part of its path is a file, not a directory (ENOTDIR): create it, or set EVENTSUBD_STATE_DIR to another directory`,
    );
    return true;
  });
});

test('secureStateDir() names a state directory that is a link to nothing, and one that is a file', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'eventsubd-dangling-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  symlinkSync(join(base, 'gone'), join(base, 'state'));
  await assert.rejects(secureStateDir(join(base, 'state'), { uid: process.getuid?.(), logger }), {
    code: 'STATE_DIR_INVALID',
    message: `The state directory ${join(base, 'state')} (EVENTSUBD_STATE_DIR) is a symbolic link to ${join(base, 'gone')}, which does not exist: create the target, or set EVENTSUBD_STATE_DIR to another directory`,
  });
  writeFileSync(join(base, 'file'), '');
  await assert.rejects(secureStateDir(join(base, 'file'), { uid: process.getuid?.(), logger }), {
    code: 'STATE_DIR_INVALID',
    message: /^The state directory .*file \(EVENTSUBD_STATE_DIR\) is not a directory: /,
  });
});

test('secureStateDir() refuses a state directory this process cannot write, and one on a read-only file system', async (t) => {
  // The test may run as root, which writes anywhere: the permission check is given the errno instead.
  const base = mkdtempSync(join(tmpdir(), 'eventsubd-readonly-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const failing = (code: string) => async (): Promise<void> => {
    throw Object.assign(new Error(code), { code });
  };
  await assert.rejects(secureStateDir(base, { uid: process.getuid?.(), logger, access: failing('EACCES') }), (err: AppError) => {
    assert.equal(err.code, 'STATE_DIR_INVALID');
    assert.equal(err.exitCode, 78);
    assert.match(err.message, /^The state directory .* \(EVENTSUBD_STATE_DIR\) is not writable by this process( \(uid \d+\))? \(EACCES\): fix its permissions, or set EVENTSUBD_STATE_DIR to another directory$/);
    return true;
  });
  await assert.rejects(secureStateDir(base, { uid: process.getuid?.(), logger, access: failing('EROFS') }), {
    code: 'STATE_DIR_INVALID',
    message: /\(EVENTSUBD_STATE_DIR\) is on a read-only file system \(EROFS\): /,
  });
  await secureStateDir(base, { uid: process.getuid?.(), logger });
});
