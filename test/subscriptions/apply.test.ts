import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, TokenRefusedError } from '../../src/lib/errors.js';
import { applyPlan, type ApplyProgress } from '../../src/subscriptions/apply.js';
import type { DesiredSubscription, Ownership } from '../../src/twitch/subscription.js';
import type { Subscription } from '../../src/twitch/wire.js';
import { planSync } from '../../src/subscriptions/plan.js';
import { flushMicrotasks } from '../helpers/fake-clock.js';
import { CALLBACK, CONDUIT, FakeEventSubApi, OLD_CONDUIT, OWN, SECRET, sub } from './fake-api.js';

function want(id: string, type = 'stream.online'): DesiredSubscription {
  return {
    type,
    version: '1',
    condition: { broadcaster_user_id: id },
    transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
  };
}

const wants = (n: number): DesiredSubscription[] => Array.from({ length: n }, (_, i) => want(String(1000 + i)));
const prune = { ownership: OWN, prune: true };

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

describe('applyPlan() migrating between transports', () => {
  const onConduit = (user: string, conduitId = CONDUIT): DesiredSubscription => ({
    ...want(user),
    transport: { method: 'conduit', conduit_id: conduitId },
  });
  const conduitSub = (id: string, user: string, conduitId = CONDUIT): Subscription =>
    sub({ id, condition: { broadcaster_user_id: user }, transport: { method: 'conduit', conduit_id: conduitId } });
  const CONDUIT_MODE: Ownership = { callbackUrl: CALLBACK, conduitIds: [CONDUIT, OLD_CONDUIT] };

  it('webhook → conduit: other deletes first, then the conduit twins, then the old webhooks (no gap)', async () => {
    const hook1 = sub({ id: 'hook1', condition: { broadcaster_user_id: '1' } });
    const hook2 = sub({ id: 'hook2', condition: { broadcaster_user_id: '2' } });
    const stray = sub({ id: 'stray', type: 'stream.offline', condition: { broadcaster_user_id: '3' } });
    const api = new FakeEventSubApi([hook1, hook2, stray]);
    const plan = planSync([onConduit('1'), onConduit('2')], api.subs, { ownership: CONDUIT_MODE, prune: true });
    const progress: ApplyProgress[] = [];

    const result = await applyPlan(plan, api, { concurrency: 1, onProgress: (_d, _t, p) => progress.push(p) });

    assert.deepEqual(api.calls, [
      'delete stray',
      'create stream.online {"broadcaster_user_id":"1"}',
      'create stream.online {"broadcaster_user_id":"2"}',
      'delete hook1',
      'delete hook2',
    ]);
    assert.deepEqual(api.bodies.map((b) => b.transport), [
      { method: 'conduit', conduit_id: CONDUIT },
      { method: 'conduit', conduit_id: CONDUIT },
    ]);
    assert.deepEqual([result.created.length, result.migrated, result.deleted, result.failed], [2, 2, 1, []]);
    assert.deepEqual(result.removed.map((s) => s.id).sort(), ['hook1', 'hook2', 'stray']);
    assert.deepEqual(api.subs.map((s) => s.transport), [
      { method: 'conduit', conduit_id: CONDUIT },
      { method: 'conduit', conduit_id: CONDUIT },
    ]);
    assert.deepEqual(progress.at(-1), { deleted: 3, deletes: 3, created: 2, creates: 2 });
  });

  it('a failed create keeps the old subscription: its migration delete is never sent', async () => {
    const hook1 = sub({ id: 'hook1', condition: { broadcaster_user_id: '1' } });
    const hook2 = sub({ id: 'hook2', condition: { broadcaster_user_id: '2' } });
    const api = new FakeEventSubApi([hook1, hook2], {
      failCreate: (b) => (b.condition.broadcaster_user_id === '1' ? new AppError('TWITCH_HTTP_ERROR', 'POST /eventsub/subscriptions failed: 500') : undefined),
    });
    const plan = planSync([onConduit('1'), onConduit('2')], api.subs, { ownership: CONDUIT_MODE, prune: true });
    const progress: [number, number][] = [];
    const result = await applyPlan(plan, api, { concurrency: 4, onProgress: (done, total) => progress.push([done, total]) });
    assert.ok(!api.calls.includes('delete hook1'), 'the old webhook of a failed create stays');
    assert.ok(api.calls.indexOf('delete hook2') > api.calls.indexOf('create stream.online {"broadcaster_user_id":"2"}'));
    assert.deepEqual(api.subs.map((s) => s.id).sort(), ['hook1', 'new-1']);
    assert.equal(result.migrated, 1);
    assert.deepEqual(result.failed.map((f) => [f.action, f.key]), [['create', 'stream.online v1 broadcaster_user_id=1']]);
    assert.deepEqual(progress.at(-1), [4, 4], 'the skipped migration counts as done');
  });

  it('conduit → webhook: creates the webhook twin (callback and secret), then deletes the conduit one', async () => {
    const old = conduitSub('old', '1');
    const api = new FakeEventSubApi([old]);
    const plan = planSync([want('1')], api.subs, { ownership: { callbackUrl: CALLBACK, conduitIds: [CONDUIT] }, prune: false });
    const result = await applyPlan(plan, api);
    assert.deepEqual(api.calls, ['create stream.online {"broadcaster_user_id":"1"}', 'delete old']);
    assert.deepEqual(api.bodies[0]?.transport, { method: 'webhook', callback: CALLBACK, secret: SECRET });
    assert.equal(result.migrated, 1);
  });

  it('a twin adopted on a 409, or kept by the plan, lets the migration go ahead', async () => {
    const hook = sub({ id: 'hook', condition: { broadcaster_user_id: '1' } });
    const kept = conduitSub('kept', '2');
    const hook2 = sub({ id: 'hook2', condition: { broadcaster_user_id: '2' } });
    const plan = planSync([onConduit('1'), onConduit('2')], [hook, kept, hook2], { ownership: CONDUIT_MODE, prune: false });
    // The conduit twin of 1 appeared after the listing (another run): the create meets a 409.
    const api = new FakeEventSubApi([hook, kept, hook2, conduitSub('appeared', '1')]);
    const result = await applyPlan(plan, api);
    assert.deepEqual(result.adopted.map((s) => s.id), ['appeared']);
    assert.equal(result.migrated, 2);
    assert.deepEqual(api.subs.map((s) => s.id).sort(), ['appeared', 'kept']);
  });

  it("a replaced conduit's subscriptions move to the new conduit; a blocked twin keeps the old one", async () => {
    const old1 = conduitSub('old1', '1', OLD_CONDUIT);
    const old2 = conduitSub('old2', '2', OLD_CONDUIT);
    const revoked = { ...conduitSub('revoked', '2'), status: 'authorization_revoked' };
    const api = new FakeEventSubApi([old1, old2, revoked]);
    const plan = planSync([onConduit('1'), onConduit('2')], api.subs, { ownership: CONDUIT_MODE, prune: true });
    const result = await applyPlan(plan, api);
    assert.deepEqual(api.calls, ['create stream.online {"broadcaster_user_id":"1"}', 'delete old1']);
    assert.deepEqual([result.migrated, result.failed], [1, []]);
  });

  it('a migration delete that fails is reported as a failed migrate, and the old one stays', async () => {
    const hook = sub({ id: 'hook', condition: { broadcaster_user_id: '1' } });
    const api = new FakeEventSubApi([hook], { failDelete: () => new AppError('TWITCH_HTTP_ERROR', 'DELETE /eventsub/subscriptions failed: 500') });
    const result = await applyPlan(planSync([onConduit('1')], api.subs, { ownership: CONDUIT_MODE, prune: false }), api);
    assert.deepEqual(result.failed.map((f) => [f.action, f.id, f.code]), [['migrate', 'hook', 'TWITCH_HTTP_ERROR']]);
    assert.equal(result.migrated, 0);
    assert.equal(api.subs.length, 2);
  });
});
