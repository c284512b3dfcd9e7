import assert from 'node:assert/strict';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { processIsAlive } from '../../src/auth/file-lock.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs, tempDir } from './fakes.js';

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 1));
}

test('TokenCache.withLock() excludes a second holder in the same process until the first releases', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock(undefined, { autoAdvance: true });
  const a = new TokenCache({ stateDir: dir, clock, pid: 1001, isAlive: () => true });
  const b = new TokenCache({ stateDir: dir, clock, pid: 1001, isAlive: () => true });
  const events: string[] = [];
  const gate = deferred();
  const first = a.withLock(async () => {
    events.push('a in');
    await gate.promise;
    events.push('a out');
    return 'a';
  });
  await ticks(3);
  const second = b.withLock(async () => {
    events.push('b in');
    return 'b';
  });
  await ticks(10);
  assert.deepEqual(events, ['a in'], 'b must wait while a holds the lock');
  const lock = JSON.parse(await readFile(join(dir, 'token.lock'), 'utf8')) as { pid: number; time: string };
  assert.equal(lock.pid, 1001);
  assert.ok(!Number.isNaN(Date.parse(lock.time)));
  gate.resolve();
  assert.deepEqual(await Promise.all([first, second]), ['a', 'b']);
  assert.deepEqual(events, ['a in', 'a out', 'b in']);
  assert.equal(await exists(join(dir, 'token.lock')), false);
});

test('TokenCache.withLock() releases the lock when the function throws', async (t) => {
  const dir = await tempDir(t);
  const cache = new TokenCache({ stateDir: dir, clock: new FakeClock(), pid: 1, isAlive: () => true });
  await assert.rejects(
    cache.withLock(async () => {
      throw new Error('inside');
    }),
    /inside/,
  );
  assert.equal(await exists(join(dir, 'token.lock')), false);
  assert.equal(await cache.withLock(async () => 7), 7);
});

test('TokenCache.withLock() breaks a lock whose holder is not running, at once', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const logs = captureLogs();
  const alive = new Set([1]);
  const cache = new TokenCache({ stateDir: dir, clock, pid: 1, isAlive: (pid) => alive.has(pid), logger: logs.logger });
  await writeFile(join(dir, 'token.lock'), JSON.stringify({ pid: 424242, time: new Date(clock.now()).toISOString() }));
  assert.equal(await cache.withLock(async () => 'got it'), 'got it');
  assert.equal(clock.sleeps.length, 0, 'no waiting for a dead holder');
  assert.ok(logs.records().some((r) => r.msg === 'Broke a stale token lock' && r.reason === 'holder is not running'));
});

test('TokenCache.withLock() breaks a lock older than 30 s even if its holder still runs', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const cache = new TokenCache({ stateDir: dir, clock, pid: 1, isAlive: () => true });
  await writeFile(join(dir, 'token.lock'), JSON.stringify({ pid: 2, time: new Date(clock.now() - 30_001).toISOString() }));
  assert.equal(await cache.withLock(async () => 'got it'), 'got it');
  assert.equal(clock.sleeps.length, 0);
});

test('TokenCache.withLock() waits for a fresh lock of a live holder, polling every 50 ms, until it turns stale', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock(undefined, { autoAdvance: true });
  const start = clock.now();
  const cache = new TokenCache({ stateDir: dir, clock, pid: 1, isAlive: () => true });
  await writeFile(join(dir, 'token.lock'), JSON.stringify({ pid: 2, time: new Date(start).toISOString() }));
  let enteredAt = 0;
  await cache.withLock(async () => {
    enteredAt = clock.now();
  });
  assert.ok(enteredAt - start > 30_000 && enteredAt - start <= 30_050, `entered after ${enteredAt - start} ms`);
  assert.ok(clock.sleeps.every((ms) => ms === 50));
});

test('TokenCache.withLock() stops waiting with ABORTED when its signal aborts', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const cache = new TokenCache({ stateDir: dir, clock, pid: 1, isAlive: () => true });
  await writeFile(join(dir, 'token.lock'), JSON.stringify({ pid: 2, time: new Date(clock.now()).toISOString() }));
  const ac = new AbortController();
  const waiting = cache.withLock(async () => 'never', ac.signal);
  await ticks(3);
  ac.abort();
  await assert.rejects(waiting, { code: 'ABORTED' });
});

test('processIsAlive() treats ESRCH as gone and EPERM as running', () => {
  const fail = (code: string) => () => {
    throw Object.assign(new Error(code), { code });
  };
  assert.equal(processIsAlive(() => true)(5), true);
  assert.equal(processIsAlive(fail('ESRCH'))(5), false);
  assert.equal(processIsAlive(fail('EPERM'))(5), true);
});
