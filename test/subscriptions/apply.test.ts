import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, TokenRefusedError } from '../../src/lib/errors.js';
import { applyPlan } from '../../src/subscriptions/apply.js';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import { planSync } from '../../src/subscriptions/plan.js';
import { flushMicrotasks } from '../helpers/fake-clock.js';
import { CALLBACK, FakeEventSubApi, SECRET, sub } from './fake-api.js';

function want(id: string, type = 'stream.online'): DesiredSubscription {
  return {
    type,
    version: '1',
    condition: { broadcaster_user_id: id },
    transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
  };
}

const wants = (n: number): DesiredSubscription[] => Array.from({ length: n }, (_, i) => want(String(1000 + i)));
const prune = { callbackUrl: CALLBACK, prune: true };

describe('applyPlan()', () => {
  it('sends every delete (pruned, duplicate, recreate half) before any create', async () => {
    const broken = sub({ id: 'broken', condition: { broadcaster_user_id: '1' }, status: 'notification_failures_exceeded' });
    const stray = sub({ id: 'stray', type: 'stream.offline', condition: { broadcaster_user_id: '2' } });
    const dupA = sub({ id: 'dupA', condition: { broadcaster_user_id: '3' }, created_at: '2026-01-01T00:00:00Z' });
    const dupB = sub({ id: 'dupB', condition: { broadcaster_user_id: '3' }, created_at: '2026-01-02T00:00:00Z' });
    const api = new FakeEventSubApi([broken, stray, dupA, dupB]);
    const plan = planSync([want('1'), want('3'), want('4')], api.subs, prune);

    const result = await applyPlan(plan, api, { concurrency: 8 });

    assert.deepEqual(api.calls, [
      'delete dupB',
      'delete stray',
      'delete broken',
      'create stream.online {"broadcaster_user_id":"1"}',
      'create stream.online {"broadcaster_user_id":"4"}',
    ]);
    assert.equal(result.deleted, 2);
    assert.equal(result.recreated, 1);
    assert.deepEqual(result.created.map((s) => s.condition.broadcaster_user_id), ['4']);
    assert.deepEqual(result.failed, []);
  });

  it('builds the create body from the desired entry with the webhook callback and secret', async () => {
    const api = new FakeEventSubApi();
    await applyPlan(planSync([want('7')], [], prune), api);
    assert.deepEqual(api.bodies, [
      {
        type: 'stream.online',
        version: '1',
        condition: { broadcaster_user_id: '7' },
        transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
      },
    ]);
  });

  it('collects a per-item failure and carries on with the other items', async () => {
    const api = new FakeEventSubApi([], {
      failCreate: (b) =>
        b.condition.broadcaster_user_id === '1001'
          ? new AppError('SUBSCRIPTION_LIMIT', 'POST /eventsub/subscriptions failed: 429 limit')
          : undefined,
    });
    const result = await applyPlan(planSync(wants(3), [], prune), api, { concurrency: 1 });
    assert.equal(api.creates, 3);
    assert.equal(result.created.length, 2);
    assert.deepEqual(result.failed, [
      {
        action: 'create',
        key: 'stream.online v1 broadcaster_user_id=1001',
        code: 'SUBSCRIPTION_LIMIT',
        message: 'POST /eventsub/subscriptions failed: 429 limit',
      },
    ]);
  });

  it('rethrows a fatal token error and starts no further request', async () => {
    const api = new FakeEventSubApi([], {
      failCreate: (b) =>
        b.condition.broadcaster_user_id === '1001'
          ? new TokenRefusedError('USER_TOKEN_REFUSED', 'The token is a user token')
          : undefined,
    });
    await assert.rejects(applyPlan(planSync(wants(5), [], prune), api, { concurrency: 1 }), {
      code: 'USER_TOKEN_REFUSED',
    });
    assert.equal(api.creates, 2, 'the third to fifth creates were never sent');
  });

  it('aborts the requests in flight when a fatal error arrives', async () => {
    const api = new FakeEventSubApi([], {
      hold: true,
      failDelete: () => new AppError('TOKEN_UNAVAILABLE', 'No app token could be obtained'),
    });
    const plan = planSync(wants(6), [sub({ id: 'x', type: 'stream.offline' })], prune);
    // The delete phase holds too: release it so the failing delete runs.
    const pending = applyPlan(plan, api, { concurrency: 4 });
    await flushMicrotasks();
    api.release();
    await assert.rejects(pending, { code: 'TOKEN_UNAVAILABLE' });
    assert.equal(api.creates, 0, 'no create after a fatal delete');

    const api2 = new FakeEventSubApi([], {
      hold: true,
      failCreate: (b) =>
        b.condition.broadcaster_user_id === '1000' ? new AppError('TWITCH_AUTH_FAILED', 'rejected') : undefined,
    });
    const pending2 = applyPlan(planSync(wants(10), [], prune), api2, { concurrency: 4 });
    await flushMicrotasks();
    assert.equal(api2.inFlight, 4);
    api2.release(); // 1000 fails fatally; 1001-1003 are released too but the signal is already aborted
    await assert.rejects(pending2, { code: 'TWITCH_AUTH_FAILED' });
    assert.equal(api2.creates, 4, 'nothing beyond the first four was sent');
  });

  it('rethrows ABORTED when the caller aborts, and sends nothing more', async () => {
    const api = new FakeEventSubApi([], { hold: true });
    const controller = new AbortController();
    const pending = applyPlan(planSync(wants(5), [], prune), api, { concurrency: 2, signal: controller.signal });
    await flushMicrotasks();
    controller.abort();
    await assert.rejects(pending, { code: 'ABORTED' });
    assert.equal(api.creates, 2);
  });

  it('counts a delete answered 404 as done, and recreates after it', async () => {
    const gone = sub({ id: 'gone', type: 'stream.offline' });
    const goneBroken = sub({ id: 'gone-broken', status: 'webhook_callback_verification_failed' });
    const api = new FakeEventSubApi([]); // neither exists any more: both deletes draw a 404
    const plan = planSync([want('12345')], [gone, goneBroken], prune);
    const result = await applyPlan(plan, api);
    assert.equal(result.deleted, 1);
    assert.equal(result.recreated, 1);
    assert.deepEqual(result.failed, []);
    assert.equal(api.creates, 1);
  });

  it('skips the create half of a recreate whose delete failed, and reports it once', async () => {
    const broken = sub({ id: 'b1', status: 'notification_failures_exceeded' });
    const api = new FakeEventSubApi([broken], {
      failDelete: () => new AppError('TWITCH_HTTP_ERROR', 'DELETE /eventsub/subscriptions failed: 500'),
    });
    const progress: [number, number][] = [];
    const result = await applyPlan(planSync([want('12345')], api.subs, prune), api, {
      onProgress: (done, total) => progress.push([done, total]),
    });
    assert.equal(api.creates, 0);
    assert.equal(result.recreated, 0);
    assert.deepEqual(result.failed.map((f) => [f.action, f.id, f.code]), [['recreate', 'b1', 'TWITCH_HTTP_ERROR']]);
    assert.deepEqual(progress, [
      [1, 2],
      [2, 2],
    ]);
  });

  it('reports a create that met a 409 as adopted, not created', async () => {
    const twin = sub({ id: 'twin', condition: { broadcaster_user_id: '55' } });
    const api = new FakeEventSubApi([twin]);
    // A plan made before the twin appeared (another instance created it meanwhile).
    const result = await applyPlan(planSync([want('55')], [], prune), api);
    assert.deepEqual(result.adopted.map((s) => s.id), ['twin']);
    assert.deepEqual(result.created, []);
  });

  it('never has more requests in flight than the concurrency bound', async () => {
    const api = new FakeEventSubApi(
      Array.from({ length: 12 }, (_, i) => sub({ type: 'stream.offline', condition: { broadcaster_user_id: String(i) } })),
      { yieldEachCall: true },
    );
    const progress: number[] = [];
    const result = await applyPlan(planSync(wants(25), api.subs, prune), api, {
      concurrency: 3,
      onProgress: (done) => progress.push(done),
    });
    assert.equal(api.maxInFlight, 3);
    assert.equal(result.deleted, 12);
    assert.equal(result.created.length, 25);
    assert.deepEqual(progress, Array.from({ length: 37 }, (_, i) => i + 1));
  });
});
