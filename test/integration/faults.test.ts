/**
 * Issue 2, "Done when" 6 and 8: creates survive a lost response (409 → adoption), a 5xx and a reset
 * connection without ever leaving a duplicate; the 3-per-condition 429 is reported as SUBSCRIPTION_LIMIT
 * at once, never retried nor mistaken for an empty bucket. The FakeClock auto-advances through backoffs.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { AppError } from '../../src/lib/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { body, CALLBACK, FOREIGN_CALLBACK, helixTally, startRig, type Rig } from './helpers.js';

const POST_SUBSCRIPTIONS = { method: 'POST', pathPrefix: '/helix/eventsub/subscriptions' };

async function rig(t: TestContext): Promise<Rig> {
  const r = await startRig(t, { clock: new FakeClock(undefined, { autoAdvance: true }) });
  await r.stack.tokens.getToken();
  return r;
}

describe('HelixEventSubClient.create() against emulator faults', () => {
  it('adopts the subscription it created when the 202 was lost (drop-response → retry → 409 → adoption)', async (t) => {
    const { emu, stack } = await rig(t);
    emu.injectFault({ kind: 'drop-response', match: POST_SUBSCRIPTIONS });

    const result = await stack.helix.create(body('777'));

    assert.equal(result.adopted, true);
    const held = emu.subscriptions();
    assert.equal(held.length, 1, 'exactly one such subscription exists');
    assert.equal(result.subscription.id, held[0]!.id, 'the adopted one is the one the lost request created');
    assert.equal(result.subscription.transport.method === 'webhook' && result.subscription.transport.callback, CALLBACK);
    assert.deepEqual(helixTally(emu), { 'POST 0': 1, 'POST 409': 1, 'GET 200': 1 }, 'lost answer, retry, one lookup');
    assert.equal(emu.stats.helix.rateLimited, 0);
  });

  it('after a lost 202, finds the twin to adopt on a later page of the type listing', async (t) => {
    const r = await startRig(t, { clock: new FakeClock(undefined, { autoAdvance: true }), emulator: { pageSize: 4 } });
    for (let i = 0; i < 10; i++) await r.stack.helix.create(body(String(800 + i)));
    await r.stack.helix.create(body('900', { type: 'stream.offline' }));
    r.emu.resetStats();
    r.emu.injectFault({ kind: 'drop-response', match: POST_SUBSCRIPTIONS });

    const result = await r.stack.helix.create(body('810'));

    assert.equal(result.adopted, true);
    assert.equal(result.subscription.condition.broadcaster_user_id, '810');
    assert.equal(r.emu.subscriptions().filter((s) => s.condition.broadcaster_user_id === '810').length, 1);
    assert.deepEqual(helixTally(r.emu), { 'POST 0': 1, 'POST 409': 1, 'GET 200': 3 }, '11 stream.online subscriptions: pages of 4, 4, 3');
  });

  it('retries a 503 on create and succeeds with one subscription', async (t) => {
    const { emu, stack } = await rig(t);
    emu.injectFault({ kind: 'status', status: 503, match: POST_SUBSCRIPTIONS });

    const result = await stack.helix.create(body('778'));

    assert.equal(result.adopted, false);
    assert.deepEqual(emu.subscriptions().map((s) => s.id), [result.subscription.id]);
    assert.deepEqual(helixTally(emu), { 'POST 503': 1, 'POST 202': 1 });
  });

  it('retries several 5xx in a row (500, 502, 504) and succeeds with one subscription', async (t) => {
    const { emu, stack } = await rig(t);
    for (const status of [500, 502, 504]) emu.injectFault({ kind: 'status', status, match: POST_SUBSCRIPTIONS });

    const result = await stack.helix.create(body('779'));

    assert.equal(result.adopted, false);
    assert.equal(emu.subscriptions().length, 1);
    assert.deepEqual(helixTally(emu), { 'POST 500': 1, 'POST 502': 1, 'POST 504': 1, 'POST 202': 1 });
  });

  it('retries a reset connection on create and succeeds with one subscription', async (t) => {
    const { emu, stack } = await rig(t);
    emu.injectFault({ kind: 'reset', match: POST_SUBSCRIPTIONS });

    const result = await stack.helix.create(body('780'));

    assert.equal(result.adopted, false, 'nothing was created by the reset request: a plain create follows');
    assert.deepEqual(emu.subscriptions().map((s) => s.id), [result.subscription.id]);
    assert.deepEqual(helixTally(emu), { 'POST 0': 1, 'POST 202': 1 });
  });

  it('rejects the 4th subscription of one type and condition with SUBSCRIPTION_LIMIT after a single request', async (t) => {
    const { emu, stack } = await rig(t);
    const callbacks = [CALLBACK, FOREIGN_CALLBACK, 'https://third.example.com/eventsub'];
    for (const callback of callbacks) await stack.helix.create(body('781', { callback }));
    assert.equal(emu.subscriptions().length, 3);
    emu.resetStats();

    await assert.rejects(stack.helix.create(body('781', { callback: 'https://fourth.example.com/eventsub' })), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'SUBSCRIPTION_LIMIT');
      assert.match(err.message, /maximum subscriptions with type and condition exceeded/);
      return true;
    });
    assert.deepEqual(helixTally(emu), { 'POST 429': 1 }, 'no retry, no waiting for Ratelimit-Reset');
    assert.equal(emu.stats.helix.rateLimited, 0, 'the bucket was not empty: not a rate limit');
    assert.equal(emu.subscriptions().length, 3);
    const other = await stack.helix.create(body('782'));
    assert.equal(other.adopted, false, 'other conditions can still be created');
  });
});
