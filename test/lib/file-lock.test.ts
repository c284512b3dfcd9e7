import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { lockHolder, tryLockFile, waitForLockFile } from '../../src/lib/file-lock.js';
import { FakeClock } from '../helpers/fake-clock.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'eventsubd-lock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A child process that takes the lock at `path` (the source module, through tsx) and reports LOCKED or BUSY. */
function lockingChild(path: string): { pid: number; state: Promise<string>; exited: Promise<unknown>; kill(): void } {
  const module = pathToFileURL(join(process.cwd(), 'src/lib/file-lock.ts')).href;
  const code = `import { tryLockFile } from ${JSON.stringify(module)};
const held = await tryLockFile(process.argv[1], process.pid + '\\n');
process.stdout.write(held ? 'LOCKED\\n' : 'BUSY\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const state = new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { pid: child.pid!, state, exited, kill: () => child.kill('SIGKILL') };
}

test('tryLockFile() gives the lock to one open file at a time, and again once released', async (t) => {
  const path = join(await tempDir(t), 'x.lock');
  const first = await tryLockFile(path, '111\n');
  assert.ok(first);
  assert.equal(await tryLockFile(path), undefined, 'a second open of the file, even in this process, is refused');
  assert.equal(readFileSync(path, 'utf8'), '111\n');
  assert.equal(await lockHolder(path), '111');
  await first.release();
  await first.release();
  assert.equal(await lockHolder(path), undefined);
  const second = await tryLockFile(path);
  assert.ok(second);
  await second.release();
});

test('tryLockFile() takes a lock at once after its holder was killed with SIGKILL, and not while it lives', async (t) => {
  const path = join(await tempDir(t), 'daemon.pid');
  const child = lockingChild(path);
  t.after(() => child.kill());
  assert.equal(await child.state, 'LOCKED');
  assert.equal(await tryLockFile(path), undefined);
  assert.equal(await lockHolder(path), String(child.pid));
  child.kill();
  await child.exited;
  // The file still names the dead holder; the kernel dropped the lock with the process.
  assert.equal(readFileSync(path, 'utf8'), `${child.pid}\n`);
  const held = await tryLockFile(path, 'me\n');
  assert.ok(held, 'the lock of a killed holder is free at once');
  await held.release();
});

test('tryLockFile() ignores a file that names a live, unrelated process (pid 1, a reused pid)', async (t) => {
  const path = join(await tempDir(t), 'daemon.pid');
  writeFileSync(path, '1\n');
  const held = await tryLockFile(path, `${process.pid}\n`);
  assert.ok(held);
  assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n`);
  await held.release();
});

test('tryLockFile() refuses a symlink or a non-regular file at the lock path and leaves the target alone', async (t) => {
  const dir = await tempDir(t);
  const target = join(dir, 'precious');
  writeFileSync(target, 'keep me');
  symlinkSync(target, join(dir, 'a.lock'));
  await assert.rejects(tryLockFile(join(dir, 'a.lock'), '1\n'), { code: 'STATE_DIR_UNUSABLE', message: /a\.lock: it is a symbolic link/ });
  assert.equal(readFileSync(target, 'utf8'), 'keep me');
  mkdirSync(join(dir, 'b.lock'));
  await assert.rejects(tryLockFile(join(dir, 'b.lock')), { code: 'STATE_DIR_UNUSABLE' });
  execFileSync('mkfifo', [join(dir, 'c.lock')]);
  await assert.rejects(tryLockFile(join(dir, 'c.lock')), { code: 'STATE_DIR_UNUSABLE', message: /not a regular file/ });
});

test('waitForLockFile() polls while the lock is held, gives up after maxWaitMs, and stops on abort', async (t) => {
  const path = join(await tempDir(t), 'token.lock');
  const held = await tryLockFile(path);
  assert.ok(held);
  const clock = new FakeClock(undefined, { autoAdvance: true });
  const start = clock.now();
  assert.equal(await waitForLockFile(path, { clock, pollMs: 50, maxWaitMs: 1_000 }), undefined);
  assert.equal(clock.now() - start, 1_000);
  assert.ok(clock.sleeps.every((ms) => ms === 50));
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(waitForLockFile(path, { clock, pollMs: 50, signal: ac.signal }), { code: 'ABORTED' });
  const waiting = waitForLockFile(path, { clock: new FakeClock(undefined, { autoAdvance: true }), pollMs: 50, holder: 'w\n' });
  await held.release();
  const got = await waiting;
  assert.ok(got);
  assert.equal(readFileSync(path, 'utf8'), 'w\n');
  await got.release();
});
