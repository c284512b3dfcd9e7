import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import { formatPlan, planIsEmpty, planSummary, planSync } from '../../src/subscriptions/plan.js';
import { CALLBACK, OTHER_CALLBACK, SECRET, sub } from './fake-api.js';

function want(
  type = 'stream.online',
  condition: Record<string, string> = { broadcaster_user_id: '12345' },
  version = '1',
): DesiredSubscription {
  return { type, version, condition, transport: { method: 'webhook', callback: CALLBACK, secret: SECRET } };
}

const opts = { callbackUrl: CALLBACK, prune: false };

describe('planSync()', () => {
  it('creates a desired subscription that has no owned twin', () => {
    const d = want();
    const plan = planSync([d], [], opts);
    assert.deepEqual(plan.create, [d]);
    assert.deepEqual(planSummary(plan), { create: 1, recreate: 0, delete: 0, keep: 0, blocked: 0, unmanaged: 0 });
  });

  for (const status of ['enabled', 'webhook_callback_verification_pending']) {
    it(`keeps a subscription whose status is ${status}`, () => {
      const existing = sub({ status });
      const plan = planSync([want()], [existing], opts);
      assert.equal(plan.keep.length, 1);
      assert.equal(plan.keep[0]?.existing.id, existing.id);
      assert.ok(planIsEmpty(plan));
    });
  }

  for (const status of ['webhook_callback_verification_failed', 'notification_failures_exceeded']) {
    it(`recreates a subscription whose status is ${status}`, () => {
      const existing = sub({ status });
      const d = want();
      const plan = planSync([d], [existing], opts);
      assert.deepEqual(plan.recreate, [{ desired: d, existing }]);
      assert.equal(plan.create.length + plan.delete.length + plan.keep.length, 0);
    });
  }

  const blockedStatuses = [
    'authorization_revoked',
    'user_removed',
    'moderator_removed',
    'version_removed',
    'chat_user_banned',
    'beta_maintenance',
    'some_status_twitch_adds_later',
  ];
  for (const status of blockedStatuses) {
    it(`blocks (neither recreates nor deletes) a subscription whose status is ${status}`, () => {
      const existing = sub({ status });
      const plan = planSync([want()], [existing], { callbackUrl: CALLBACK, prune: true });
      assert.equal(plan.blocked.length, 1);
      assert.equal(plan.blocked[0]?.reason, status);
      assert.equal(plan.blocked[0]?.existing.id, existing.id);
      assert.ok(planIsEmpty(plan));
    });
  }

  it('never touches a subscription with a foreign callback, even with prune', () => {
    const foreign = sub({ callback: OTHER_CALLBACK });
    const ws = sub({ transport: { method: 'websocket', session_id: 'abc' } });
    const conduit = sub({ transport: { method: 'conduit', conduit_id: 'c1' } });
    const plan = planSync([want()], [foreign, ws, conduit], { callbackUrl: CALLBACK, prune: true });
    assert.equal(plan.create.length, 1, 'the foreign twin does not satisfy the desired entry');
    assert.deepEqual(plan.delete, []);
    assert.deepEqual(plan.unmanaged, []);
  });

  it('prunes owned undeclared subscriptions only when prune is on', () => {
    const stray = sub({ type: 'stream.offline' });
    const on = planSync([], [stray], { callbackUrl: CALLBACK, prune: true });
    assert.deepEqual(on.delete, [{ existing: stray, reason: 'pruned' }]);
    const off = planSync([], [stray], opts);
    assert.deepEqual(off.delete, []);
    assert.deepEqual(off.unmanaged, [stray]);
  });

  it('keeps the enabled one of several owned twins and deletes the rest as duplicates without prune', () => {
    const pending = sub({ status: 'webhook_callback_verification_pending', created_at: '2026-01-01T00:00:00Z' });
    const enabled = sub({ status: 'enabled', created_at: '2026-01-02T00:00:00Z' });
    const failed = sub({ status: 'notification_failures_exceeded', created_at: '2025-01-01T00:00:00Z' });
    const plan = planSync([want()], [pending, failed, enabled], opts);
    assert.equal(plan.keep[0]?.existing.id, enabled.id);
    assert.deepEqual(
      plan.delete.map((d) => [d.existing.id, d.reason]),
      [
        [pending.id, 'duplicate'],
        [failed.id, 'duplicate'],
      ],
    );
  });

  it('keeps the oldest of two enabled twins', () => {
    const newer = sub({ created_at: '2026-03-01T00:00:00Z' });
    const older = sub({ created_at: '2026-02-01T00:00:00Z' });
    const plan = planSync([want()], [newer, older], opts);
    assert.equal(plan.keep[0]?.existing.id, older.id);
    assert.deepEqual(plan.delete, [{ existing: newer, reason: 'duplicate' }]);
  });

  it('matches conditions whatever the key order, and tells versions apart', () => {
    const cond = { moderator_user_id: '2', broadcaster_user_id: '1' };
    const follow = sub({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1', moderator_user_id: '2' } });
    const oldVersion = sub({ type: 'channel.update', version: '1', condition: { broadcaster_user_id: '1' } });
    const plan = planSync(
      [want('channel.follow', cond, '2'), want('channel.update', { broadcaster_user_id: '1' }, '2')],
      [follow, oldVersion],
      { callbackUrl: CALLBACK, prune: true },
    );
    assert.equal(plan.keep[0]?.existing.id, follow.id);
    assert.deepEqual(plan.create.map((d) => `${d.type} v${d.version}`), ['channel.update v2']);
    assert.deepEqual(plan.delete, [{ existing: oldVersion, reason: 'pruned' }]);
  });

  it('computes current, projected (upper bound) and max cost', () => {
    const stray = sub({ type: 'stream.offline', cost: 1 });
    const broken = sub({ status: 'notification_failures_exceeded', cost: 1 });
    const kept = sub({ type: 'user.update', condition: { user_id: '9' }, cost: 0 });
    const foreign = sub({ callback: OTHER_CALLBACK, cost: 1 });
    const plan = planSync(
      [want(), want('user.update', { user_id: '9' }), want('channel.update', { broadcaster_user_id: '1' }, '2')],
      [stray, broken, kept, foreign],
      { callbackUrl: CALLBACK, prune: true, maxTotalCost: 10_000 },
    );
    // current 3 (foreign counts too) − 1 pruned + 1 create; the recreate retakes its own cost.
    assert.deepEqual(plan.cost, { current: 3, projected: 3, max: 10_000 });
    const withTotal = planSync([], [stray], { callbackUrl: CALLBACK, prune: true, totalCost: 42 });
    assert.deepEqual(withTotal.cost, { current: 42, projected: 41, max: undefined });
  });
});

describe('formatPlan()', () => {
  it('prints one line per change, a keep count, a cost line and a summary, without the secret', () => {
    const plan = planSync(
      [want(), want('stream.offline'), want('user.update', { user_id: '9' }), want('channel.update', { broadcaster_user_id: '1' }, '2')],
      [
        sub({ id: 'a1', status: 'notification_failures_exceeded' }),
        sub({ id: 'a2', type: 'channel.raid', condition: { to_broadcaster_user_id: '5' } }),
        sub({ id: 'a3', type: 'user.update', condition: { user_id: '9' }, status: 'authorization_revoked' }),
        sub({ id: 'a4', type: 'channel.update', version: '2', condition: { broadcaster_user_id: '1' } }),
      ],
      { callbackUrl: CALLBACK, prune: true, maxTotalCost: 10_000 },
    );
    const lines = formatPlan(plan);
    assert.deepEqual(lines, [
      '+ create stream.offline v1 broadcaster_user_id=12345',
      '~ recreate stream.online v1 broadcaster_user_id=12345 (was notification_failures_exceeded, id a1)',
      '- delete channel.raid v1 to_broadcaster_user_id=5 (pruned, id a2)',
      '! blocked user.update v1 user_id=9 (authorization_revoked, id a3)',
      '= keep 1 unchanged',
      'cost: 4 now, at most 4 after apply (max 10000)',
      'plan: 1 to create, 1 to recreate, 1 to delete, 1 to keep, 1 blocked, 0 unmanaged',
    ]);
    assert.ok(!lines.join('\n').includes(SECRET));
  });

  it('lists unmanaged subscriptions when prune is off', () => {
    const lines = formatPlan(planSync([], [sub({ id: 'u1', type: 'stream.offline' })], opts));
    assert.equal(lines[0], '? unmanaged stream.offline v1 broadcaster_user_id=12345 (not declared; prune is off, id u1)');
  });
});
