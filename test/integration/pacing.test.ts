/**
 * Issue 2, "Done when" 5: a 40-subscription sync against a 10-point bucket draws zero 429s and takes about
 * as long as the bucket allows: at least (requests − limit) / refill rate, at most 1.2 times that. One
 * FakeClock (autoAdvance) drives both the pacer's sleeps and the emulator's refill, so no real time passes.
 *
 * The stack's client models Twitch's documented one-minute window (contract 4), and `buildTwitchStack` has no
 * option to change it; the second test builds a client with a 1 s window to pace against a 1 s bucket.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { syncSubscriptions } from '../../src/subscriptions/sync.js';
import { HelixEventSubClient } from '../../src/twitch/helix.js';
import type { EventSubApi } from '../../src/twitch/types.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { CALLBACK, desired, helixTally, startRig, type Rig } from './helpers.js';

const LIMIT = 10;
const WANTED = 40;

async function pacedSync(t: TestContext, windowMs: number, api: (rig: Rig) => EventSubApi): Promise<void> {
  const clock = new FakeClock(undefined, { autoAdvance: true });
  const rig = await startRig(t, { clock, emulator: { bucket: { limit: LIMIT, windowMs } } });
  await rig.stack.tokens.getToken();
  const t0 = clock.now();

  const want = Array.from({ length: WANTED }, (_, i) => desired(String(1000 + i)));
  const outcome = await syncSubscriptions({ api: api(rig), desired: want, callbackUrl: CALLBACK, prune: true, dryRun: false });

  const elapsed = clock.now() - t0;
  assert.equal(outcome.result?.created.length, WANTED);
  assert.deepEqual(outcome.result?.failed, []);
  assert.equal(rig.emu.subscriptions().length, WANTED);
  assert.equal(rig.emu.stats.helix.rateLimited, 0, 'the pacer never let the bucket run dry');
  assert.deepEqual(rig.emu.stats.helix.byStatus, { '200': outcome.listPages, '202': WANTED });
  const bound = ((WANTED + outcome.listPages - LIMIT) / LIMIT) * windowMs;
  assert.ok(elapsed >= bound, `elapsed ${elapsed} ms is at least the bucket's bound ${bound} ms`);
  assert.ok(elapsed <= 1.2 * bound, `elapsed ${elapsed} ms is at most 1.2 × the bound ${bound} ms`);
}

describe('syncSubscriptions() through the Helix client against a 10-point emulator bucket', () => {
  it("the stack's client paces 40 creates against Twitch's one-minute window with zero 429s, within 1.2 × the bound", async (t) => {
    await pacedSync(t, 60_000, (rig) => rig.stack.helix);
  });

  it('a client configured with a 1 s window paces 40 creates against a 1 s bucket with zero 429s, within 1.2 × the bound', async (t) => {
    await pacedSync(t, 1_000, ({ config, stack, clock, agent }) =>
      new HelixEventSubClient({
        apiUrl: config.apiUrl,
        clientId: config.clientId,
        tokens: stack.tokens,
        clock,
        dispatcher: agent,
        windowMs: 1_000,
      }),
    );
  });

  it('waits until Ratelimit-Reset after another process emptied the bucket (429, Remaining 0), then succeeds', async (t) => {
    const clock = new FakeClock(undefined, { autoAdvance: true });
    const { emu, stack, client } = await startRig(t, { clock, emulator: { bucket: { limit: LIMIT, windowMs: 60_000 } } });
    await stack.helix.list({});
    // A second process with the same client ID (the CLI beside the daemon) spends the other 9 points.
    const token = (await stack.tokens.getToken()).reveal();
    for (let i = 0; i < LIMIT - 1; i++) {
      const res = await request(`${emu.apiUrl}/eventsub/subscriptions`, { headers: { authorization: `Bearer ${token}`, 'client-id': client.clientId } });
      await res.body.text();
    }
    const t0 = clock.now();

    const listed = await stack.helix.list({});

    assert.equal(listed.pages, 1);
    assert.equal(emu.stats.helix.rateLimited, 1, 'one empty-bucket 429, then no more');
    assert.deepEqual(helixTally(emu), { 'GET 200': LIMIT + 1, 'GET 429': 1 });
    const waited = clock.now() - t0;
    assert.ok(waited >= 60_000 && waited <= 61_000, `waited ${waited} ms: until the reported reset plus a small margin`);
  });
});
