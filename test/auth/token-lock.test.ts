import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { TokenCache } from '../../src/auth/token-cache.js';
import { lockHolder, tryLockFile } from '../../src/lib/file-lock.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { deferred, untilSleeping } from '../helpers/wait.js';
import { captureLogs, tempDir } from './fakes.js';

test('TokenCache.withLock() excludes a second holder in the same process until the first releases', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const a = new TokenCache({ stateDir: dir, clock, pid: 1001 });
  const b = new TokenCache({ stateDir: dir, clock, pid: 1002 });
  const events: string[] = [];
  const entered = deferred();
  const gate = deferred();
  const first = a.withLock(async () => {
    events.push('a in');
    entered.resolve();
    await gate.promise;
    events.push('a out');
    return 'a';
  });
  await entered.promise;
  const second = b.withLock(async () => {
    events.push('b in');
    return 'b';
  });
  // b finds the lock taken and sleeps before its next try, three times over.
  for (let tries = 1; tries <= 3; tries++) {
    await untilSleeping(clock, () => clock.sleeps.length === tries, `b's try ${tries} to fail`);
    if (tries < 3) await clock.advance(50);
  }
  assert.deepEqual(events, ['a in'], 'b must wait while a holds the lock');
  assert.equal(await readFile(join(dir, 'token.lock'), 'utf8'), '1001\n');
  assert.equal(await lockHolder(join(dir, 'token.lock')), '1001');
  gate.resolve();
  assert.equal(await first, 'a');
  await clock.advance(50); // b's next try: the lock is free now
  assert.deepEqual(await Promise.all([first, second]), ['a', 'b']);
  assert.deepEqual(events, ['a in', 'a out', 'b in']);
  assert.equal(await lockHolder(join(dir, 'token.lock')), undefined);
});

test('TokenCache.withLock() releases the lock when the function throws', async (t) => {
  const dir = await tempDir(t);
  const cache = new TokenCache({ stateDir: dir, clock: new FakeClock() });
  await assert.rejects(
    cache.withLock(async () => {
      throw new Error('inside');
    }),
    /inside/,
  );
  assert.equal(await lockHolder(join(dir, 'token.lock')), undefined);
  assert.equal(await cache.withLock(async () => 7), 7);
});

test('TokenCache.withLock() waits for a live holder, polling every 50 ms, then goes on without the lock after 30 s', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock(undefined, { autoAdvance: true });
  const logs = captureLogs();
  const cache = new TokenCache({ stateDir: dir, clock, logger: logs.logger });
  const other = await tryLockFile(join(dir, 'token.lock'), '4242\n');
  assert.ok(other);
  t.after(() => other.release());
  const start = clock.now();
  let enteredAt = 0;
  await cache.withLock(async () => {
    enteredAt = clock.now();
  });
  assert.equal(enteredAt - start, 30_000);
  assert.ok(clock.sleeps.every((ms) => ms === 50));
  assert.ok(logs.records().some((r) => r.msg === 'Another process has held the token lock too long; going on without it'));
  assert.equal(await lockHolder(join(dir, 'token.lock')), '4242', 'the other holder keeps its lock');
});

test('TokenCache.withLock() stops waiting with ABORTED when its signal aborts', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const cache = new TokenCache({ stateDir: dir, clock });
  const other = await tryLockFile(join(dir, 'token.lock'));
  assert.ok(other);
  t.after(() => other.release());
  const ac = new AbortController();
  const waiting = cache.withLock(async () => 'never', ac.signal);
  await untilSleeping(clock, () => clock.pending === 1, 'the wait for the lock');
  ac.abort();
  await assert.rejects(waiting, { code: 'ABORTED' });
});
