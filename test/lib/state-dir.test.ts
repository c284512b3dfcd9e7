import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { readFileNoFollow, secureStateDir } from '../../src/lib/state-dir.js';
import { captureLogs } from '../auth/fakes.js';

async function root(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'eventsubd-statedir-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
const mode = (p: string): number => statSync(p).mode & 0o777;
const uid = process.getuid?.();

test('secureStateDir() tightens a 0777 state directory, a 0755 journal directory and a 0644 token.json, and says so', async (t) => {
  const dir = join(await root(t), 'state');
  mkdirSync(join(dir, 'journal'), { recursive: true });
  chmodSync(dir, 0o777);
  chmodSync(join(dir, 'journal'), 0o755);
  writeFileSync(join(dir, 'token.json'), '{}', { mode: 0o644 });
  chmodSync(join(dir, 'token.json'), 0o644);
  writeFileSync(join(dir, 'journal', '00000000000000000001.jsonl'), '', { mode: 0o600 });
  const logs = captureLogs();
  await secureStateDir(dir, { uid, logger: logs.logger });
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(join(dir, 'journal')), 0o700);
  assert.equal(mode(join(dir, 'token.json')), 0o600);
  assert.equal(mode(join(dir, 'journal', '00000000000000000001.jsonl')), 0o600);
  const warned = logs.records().filter((r) => r.msg === 'Tightened the mode of a state file that others could read or write');
  assert.deepEqual(
    new Set(warned.map((r) => `${String(r.path)} ${String(r.from)}->${String(r.to)}`)),
    new Set([`${dir} 0777->0700`, `${join(dir, 'journal')} 0755->0700`, `${join(dir, 'token.json')} 0644->0600`]),
  );
});

test('secureStateDir() creates a missing state directory 0700 and accepts a state directory that is itself a link', async (t) => {
  const base = await root(t);
  await secureStateDir(join(base, 'new', 'state'), { uid, logger: captureLogs().logger });
  assert.equal(mode(join(base, 'new', 'state')), 0o700);
  // systemd's DynamicUser= makes /var/lib/<name> a link to /var/lib/private/<name>.
  mkdirSync(join(base, 'private'), { mode: 0o700 });
  symlinkSync(join(base, 'private'), join(base, 'linked'));
  await secureStateDir(join(base, 'linked'), { uid, logger: captureLogs().logger });
});

test('secureStateDir() refuses a symlink inside, naming it, and leaves its target alone', async (t) => {
  const base = await root(t);
  const dir = join(base, 'state');
  mkdirSync(join(dir, 'journal'), { recursive: true, mode: 0o700 });
  const target = join(base, 'precious.txt');
  writeFileSync(target, 'not a journal', { mode: 0o644 });
  const link = join(dir, 'journal', '00000000000000000001.jsonl');
  symlinkSync(target, link);
  await assert.rejects(secureStateDir(dir, { uid, logger: captureLogs().logger }), {
    code: 'STATE_DIR_UNSAFE',
    message: `${link} is a symbolic link: eventsubd does not follow links inside its state directory; remove it`,
  });
  assert.equal(readFileSync(target, 'utf8'), 'not a journal');
  assert.equal(mode(target), 0o644);
});

test('secureStateDir() refuses a FIFO, a state "directory" that is a file, and a file another user owns', async (t) => {
  const base = await root(t);
  const dir = join(base, 'state');
  mkdirSync(dir, { mode: 0o700 });
  execFileSync('mkfifo', [join(dir, 'token.json')]);
  await assert.rejects(secureStateDir(dir, { uid, logger: captureLogs().logger }), {
    code: 'STATE_DIR_UNSAFE',
    message: /token\.json is not a regular file or a directory/,
  });
  writeFileSync(join(base, 'file'), '');
  await assert.rejects(secureStateDir(join(base, 'file'), { uid, logger: captureLogs().logger }), {
    code: 'STATE_DIR_INVALID',
    message: `The state directory ${join(base, 'file')} (EVENTSUBD_STATE_DIR) is not a directory: remove that file, or set EVENTSUBD_STATE_DIR to another directory`,
  });
  const other = join(base, 'other');
  mkdirSync(other, { mode: 0o700 });
  writeFileSync(join(other, 'token.json'), '{}', { mode: 0o600 });
  // As root the file can be given away; otherwise pretend this process is another user.
  if (uid === 0) chownSync(join(other, 'token.json'), 65534, 65534);
  const asUid = uid === 0 ? 0 : (uid ?? 0) + 1;
  await assert.rejects(secureStateDir(other, { uid: asUid, logger: captureLogs().logger }), {
    code: 'STATE_DIR_UNSAFE',
    message: /belongs to uid \d+, not to this process \(uid \d+\): chown it, or use another EVENTSUBD_STATE_DIR/,
  });
});

test('readFileNoFollow() reads a regular file, refuses a link (ELOOP) and a FIFO without blocking', async (t) => {
  const base = await root(t);
  writeFileSync(join(base, 'a'), 'text');
  assert.equal(await readFileNoFollow(join(base, 'a')), 'text');
  symlinkSync(join(base, 'a'), join(base, 'link'));
  await assert.rejects(readFileNoFollow(join(base, 'link')), { code: 'ELOOP' });
  execFileSync('mkfifo', [join(base, 'fifo')]);
  await assert.rejects(readFileNoFollow(join(base, 'fifo')), /not a regular file/);
});
