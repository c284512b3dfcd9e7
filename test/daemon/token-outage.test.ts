/**
 * Receiving needs no token (SPEC.md "The receiver", /readyz): with Twitch's token endpoint down, the daemon
 * is ready, accepts and journals deliveries, and reports the outage in /status; once the endpoint is back it
 * mints a token and syncs by itself, without a restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpGet, readJournal, status, useFixture, waitEnabled, waitFor } from './harness.js';
import { send } from './messages.js';

test('daemon token outage: ready and receiving while the token endpoint fails; mints and syncs once it is back', async (t) => {
  const { f, start } = await useFixture(t);
  f.emulator.injectFault({ kind: 'status', status: 503, match: { pathPrefix: '/oauth2/token' }, times: 1000 });
  const d = await start();

  assert.equal((await httpGet(f, '/readyz')).status, 200);
  const res = await send(f);
  assert.equal(res.status, 204);
  assert.deepEqual(readJournal(f.stateDir).map((r) => r.message_id), [res.messageId]);

  const down = await waitFor('the failed mint to be reported', async () => {
    const s = await status(f);
    return s.token.error ? s : false;
  });
  assert.equal(down.token.state, 'missing');
  assert.match(down.token.error!.code, /^[A-Z][A-Z_]+$/);
  assert.equal(down.token.expires_at, null);
  assert.equal(f.emulator.stats.mints, 0);
  // It keeps trying (with backoff) and keeps receiving: outlast a few attempts before the endpoint comes back.
  const failedMints = (): number => f.emulator.stats.requests.filter((r) => r.path === '/oauth2/token' && r.status === 503).length;
  // The sync too: its first run fails for want of a token, so the one after the outage must be a retry.
  const still = await waitFor(
    'the first sync to fail',
    async () => {
      const s = await status(f);
      return s.sync.result === 'error' ? s : false;
    },
    { timeoutMs: 8_000, intervalMs: 100 },
  );
  assert.ok(failedMints() >= 3, `failed mints: ${failedMints()}`);
  assert.equal(still.sync.error?.code, 'TOKEN_UNAVAILABLE');
  assert.equal(still.token.state, 'missing');
  assert.equal(f.emulator.stats.mints, 0);
  assert.equal(f.emulator.stats.helix.total, 0, 'no Helix call without a token');
  assert.equal((await httpGet(f, '/readyz')).status, 200);
  const second = await send(f);
  assert.equal(second.status, 204);

  t.diagnostic(`token error while down: ${down.token.error!.code}; sync: ${still.sync.result ?? 'pending'} ${still.sync.error?.code ?? ''}`);
  f.emulator.clearFaults();
  const cleared = Date.now();
  const healed = await waitFor(
    'a token and a successful sync',
    async () => {
      const s = await status(f);
      return s.token.state === 'ok' && s.sync.result === 'ok' ? s : false;
    },
    { timeoutMs: 15_000, intervalMs: 100 },
  );
  t.diagnostic(`healed ${Date.now() - cleared} ms after the endpoint came back`);
  assert.equal(healed.token.error, null);
  assert.equal(f.emulator.stats.mints, 1);
  assert.equal(healed.sync.counts?.create, 2);
  await waitEnabled(f, 2);
  assert.deepEqual(readJournal(f.stateDir).map((r) => r.message_id), [res.messageId, second.messageId]);
  assert.ok(d.running, 'the outage did not stop the daemon');
  assert.equal(await d.stop('SIGTERM'), 0);
});
