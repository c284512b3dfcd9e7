/**
 * Issue #11.1: the daemon's view of the shared token follows the cache. When another process (the CLI's
 * `token rotate` or `token revoke`) changes token.json, the running token manager takes the new token at
 * once: `status()` never shows a revoked token as `ok`.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { TokenCache } from '../../src/auth/token-cache.js';
import { TokenManager } from '../../src/auth/token-manager.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs, CLIENT_ID, FakeOAuth, tempDir } from './fakes.js';

async function twoProcesses(t: TestContext) {
  const clock = new FakeClock();
  const oauth = new FakeOAuth(clock);
  const dir = await tempDir(t);
  const logs = captureLogs();
  /** A process of its own on the same state directory: its own cache object and token manager. */
  const process = () => {
    const cache = new TokenCache({ stateDir: dir, clock, logger: logs.logger });
    const m = new TokenManager({ clientId: CLIENT_ID, oauth, cache, clock, logger: logs.logger, canMint: true, random: () => 0 });
    t.after(() => m.close());
    return { m };
  };
  // The daemon runs its manager (start: loop and cache watch); the CLI only calls it.
  return { oauth, logs, daemon: process(), cli: process() };
}

/** Resolves at the manager's next token change. */
const nextSwap = (m: TokenManager): Promise<void> =>
  new Promise((resolve) => {
    const off = m.onSwap(() => {
      off();
      resolve();
    });
  });

test('TokenManager takes the token another process rotated into the shared cache, at once', async (t) => {
  const { daemon, cli, oauth, logs } = await twoProcesses(t);
  await daemon.m.start();
  const before = daemon.m.status();
  assert.equal(before.state, 'ok');
  const swapped = nextSwap(daemon.m);
  const rotated = await cli.m.rotate(); // mints, writes token.json, revokes the previous token
  assert.equal(rotated.previous, before.fingerprint);
  await swapped;
  const after = daemon.m.status();
  assert.equal(after.state, 'ok');
  assert.equal(after.fingerprint, rotated.current, 'the daemon shows the new token, not the revoked one');
  assert.equal(oauth.mintCalls, 2, 'the daemon adopted the CLI\'s token: no mint of its own');
  assert.ok(logs.records().some((r) => r.msg === 'Another process changed the shared token cache; taking its token'));
});

test('TokenManager replaces a token another process revoked (cache removed) without waiting for a 401', async (t) => {
  const { daemon, cli, oauth } = await twoProcesses(t);
  await daemon.m.start();
  const before = daemon.m.status().fingerprint;
  const swapped = nextSwap(daemon.m);
  assert.equal(await cli.m.revoke(), before);
  await swapped;
  const after = daemon.m.status();
  assert.equal(after.state, 'ok');
  assert.notEqual(after.fingerprint, before);
  assert.deepEqual(oauth.revoked.length, 1);
});
