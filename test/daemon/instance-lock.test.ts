/**
 * One daemon per state directory (src/daemon/instance-lock.ts). In-process: a second lock is refused with
 * STATE_DIR_LOCKED, a daemon.pid naming a live unrelated process does not block. With real processes: several
 * `eventsubd run` started at the same instant on one state directory, many times: exactly one runs each time.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { acquireInstanceLock } from '../../src/daemon/instance-lock.js';
import { BIN, ROOT, tempDir } from '../helpers/cli.js';

test('acquireInstanceLock() refuses a second holder with STATE_DIR_LOCKED naming its pid, and frees at release', async (t) => {
  const dir = tempDir('eventsubd-instance-');
  t.after(() => dir.cleanup());
  const first = await acquireInstanceLock(dir.path, { pid: 4321 });
  await assert.rejects(acquireInstanceLock(dir.path, { pid: 99 }), {
    code: 'STATE_DIR_LOCKED',
    message: `Another eventsubd (pid 4321) is running on ${dir.path}: stop it first, or give this one its own EVENTSUBD_STATE_DIR`,
  });
  await first.release();
  const second = await acquireInstanceLock(dir.path, { pid: 99 });
  assert.equal(readFileSync(join(dir.path, 'daemon.pid'), 'utf8'), '99\n');
  await second.release();
});

test('acquireInstanceLock() takes a state directory whose daemon.pid names a live unrelated process', async (t) => {
  const dir = tempDir('eventsubd-instance-');
  t.after(() => dir.cleanup());
  // pid 1 after a reboot, or this test runner's own parent: alive, but not holding the lock.
  for (const pid of [1, process.ppid]) {
    writeFileSync(join(dir.path, 'daemon.pid'), `${pid}\n`);
    const lock = await acquireInstanceLock(dir.path, { pid: process.pid });
    assert.equal(readFileSync(join(dir.path, 'daemon.pid'), 'utf8'), `${process.pid}\n`);
    await lock.release();
  }
});

interface Racer {
  ready: Promise<boolean>;
  exited: Promise<number | null>;
  stderr: () => string;
  stop(): void;
}

/** `eventsubd run` on `stateDir`; `ready` resolves true at its "ready" log line, false if it exits first. */
function racer(stateDir: string): Racer {
  const child = spawn(process.execPath, [BIN, 'run'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      TWITCH_CLIENT_ID: 'raceclient',
      TWITCH_CLIENT_SECRET: 'racesecret',
      // Nothing listens there: the Twitch side reports an outage, which does not hold the receiver back.
      TWITCH_AUTH_URL: 'http://127.0.0.1:9/oauth2',
      TWITCH_API_URL: 'http://127.0.0.1:9/helix',
      EVENTSUBD_STATE_DIR: stateDir,
      EVENTSUBD_LISTEN: '127.0.0.1:0',
      EVENTSUBD_STREAM_PATH: 'off',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<boolean>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('"msg":"eventsubd is ready"')) resolve(true);
    });
    void exited.then(() => resolve(false));
  });
  return { ready, exited, stderr: () => stderr, stop: () => child.kill('SIGTERM') };
}

const ROUNDS = Number(process.env.EVENTSUBD_RACE_ROUNDS ?? 12);
const RACERS = 3;

test(`instance lock: ${RACERS} daemons started at the same instant on one state directory, ${ROUNDS} times: exactly one runs each time`, async (t) => {
  const dir = tempDir('eventsubd-race-');
  t.after(() => dir.cleanup());
  for (let round = 0; round < ROUNDS; round++) {
    const stateDir = join(dir.path, `round-${round}`);
    const racers = Array.from({ length: RACERS }, () => racer(stateDir));
    t.after(() => racers.forEach((r) => r.stop()));
    const ready = await Promise.all(racers.map((r) => r.ready));
    const winners = racers.filter((_, i) => ready[i]);
    assert.equal(winners.length, 1, `round ${round}: ${winners.length} daemons became ready`);
    for (const loser of racers.filter((_, i) => !ready[i])) {
      assert.equal(await loser.exited, 1, loser.stderr());
      assert.match(loser.stderr(), /STATE_DIR_LOCKED/);
    }
    winners[0]!.stop();
    assert.equal(await winners[0]!.exited, 0, winners[0]!.stderr());
  }
  t.diagnostic(`${ROUNDS} rounds of ${RACERS} daemons: one ready each round, ${ROUNDS * (RACERS - 1)} exits with STATE_DIR_LOCKED`);
});
