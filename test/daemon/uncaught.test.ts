/**
 * Issue #11.2: an error nothing catches (a bug) is logged once with its code, and the daemon stops as on
 * SIGTERM: what was acknowledged stays in the journal, and it exits 1 by itself (no handle left open).
 * The error is raised by a preloaded fixture at SIGUSR2 (test/daemon/fixtures/throw-later.mjs).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, ROOT } from '../helpers/cli.js';
import { readJournal, useFixture } from './harness.js';
import { send } from './messages.js';

for (const kind of ['exception', 'rejection'] as const) {
  test(`daemon: an uncaught ${kind} is logged once with its code, the daemon stops gracefully and exits 1`, async (t) => {
    const { f } = await useFixture(t, { subscriptions: [] });
    const child = spawn(process.execPath, ['--import', join(ROOT, 'test/daemon/fixtures/throw-later.mjs'), BIN, 'run'], {
      cwd: ROOT,
      env: { ...f.env(), EVENTSUBD_TEST_THROW: kind },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    await new Promise<void>((resolve) =>
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (stderr.includes('"msg":"eventsubd is ready"')) resolve();
      }),
    );
    const acked = await send(f);
    assert.equal(acked.status, 204);
    child.kill('SIGUSR2');
    const code = await exited;
    const lines = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const crash = lines.filter((l) => l.msg === 'An error nothing caught; stopping gracefully (exit 1)');
    assert.equal(crash.length, 1, stderr);
    assert.equal((crash[0]!.error as { code: string }).code, 'INTERNAL_ERROR');
    assert.ok(lines.some((l) => l.msg === 'Stopped; subscriptions are left in place'), 'it went through the graceful stop');
    assert.ok(!stderr.includes('still open after the command returned'), `no handle was left open: ${stderr}`);
    assert.equal(code, 1);
    assert.deepEqual(readJournal(f.stateDir).map((r) => r.message_id), [acked.messageId]);
  });
}
