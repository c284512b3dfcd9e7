import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOwned, targetOf, type DesiredSubscription, type Ownership } from '../../src/twitch/subscription.js';
import type { Subscription } from '../../src/twitch/wire.js';
import { formatPlan, planIsEmpty, planSummary, planSync } from '../../src/subscriptions/plan.js';
import { CALLBACK, CONDUIT, OLD_CONDUIT, OWN, OTHER_CALLBACK, SECRET, sub } from './fake-api.js';

function want(
  type = 'stream.online',
  condition: Record<string, string> = { broadcaster_user_id: '12345' },
  version = '1',
): DesiredSubscription {
  return { type, version, condition, transport: { method: 'webhook', callback: CALLBACK, secret: SECRET } };
}

const opts = { ownership: OWN, prune: false };

describe('planSync()', () => {
  it('creates a desired subscription that has no owned twin', () => {
    const d = want();
    const plan = planSync([d], [], opts);
    assert.deepEqual(plan.create, [d]);
    assert.deepEqual(planSummary(plan), { create: 1, recreate: 0, migrate: 0, delete: 0, keep: 0, blocked: 0, unmanaged: 0 });
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
      const plan = planSync([want()], [existing], { ownership: OWN, prune: true });
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
    const plan = planSync([want()], [foreign, ws, conduit], { ownership: OWN, prune: true });
    assert.equal(plan.create.length, 1, 'the foreign twin does not satisfy the desired entry');
    assert.deepEqual(plan.delete, []);
    assert.deepEqual(plan.unmanaged, []);
  });

  it('prunes owned undeclared subscriptions only when prune is on', () => {
    const stray = sub({ type: 'stream.offline' });
    const on = planSync([], [stray], { ownership: OWN, prune: true });
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
      { ownership: OWN, prune: true },
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
      { ownership: OWN, prune: true, maxTotalCost: 10_000 },
    );
    // current 3 (foreign counts too) − 1 pruned + 1 create; the recreate retakes its own cost.
    assert.deepEqual(plan.cost, { current: 3, projected: 3, max: 10_000 });
    const withTotal = planSync([], [stray], { ownership: OWN, prune: true, totalCost: 42 });
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
      { ownership: OWN, prune: true, maxTotalCost: 10_000 },
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

describe('planSync() with conduit targets', () => {
  const onConduit = (id = CONDUIT): DesiredSubscription['transport'] => ({ method: 'conduit', conduit_id: id });
  const wantOn = (transport: DesiredSubscription['transport'], user = '12345'): DesiredSubscription => ({
    type: 'stream.online',
    version: '1',
    condition: { broadcaster_user_id: user },
    transport,
  });
  const conduitSub = (id: string, init: Partial<Subscription> = {}): Subscription =>
    sub({ transport: { method: 'conduit', conduit_id: id }, ...init });
  /** Conduit mode after a switch: our conduit, the one it replaced, and the webhooks of before. */
  const CONDUIT_MODE: Ownership = { callbackUrl: CALLBACK, conduitIds: [CONDUIT, OLD_CONDUIT] };

  it('keeps a twin on the conduit and creates what is missing there; a webhook twin does not satisfy a conduit entry', () => {
    const kept = conduitSub(CONDUIT);
    const a = wantOn(onConduit());
    const b = wantOn(onConduit(), '777');
    const plan = planSync([a, b], [kept], { ownership: { conduitIds: [CONDUIT] }, prune: true });
    assert.deepEqual(plan.keep, [{ desired: a, existing: kept }]);
    assert.deepEqual(plan.create, [b]);
    assert.deepEqual(plan.migrate, []);
  });

  it('migrates an owned webhook twin to the conduit, even with prune off, and creates the conduit twin', () => {
    const hook = sub({ id: 'hook' });
    const d = wantOn(onConduit());
    const plan = planSync([d], [hook], { ownership: CONDUIT_MODE, prune: false });
    assert.deepEqual(plan.create, [d]);
    assert.deepEqual(plan.migrate, [{ desired: d, existing: hook }]);
    assert.deepEqual(plan.delete, []);
    assert.deepEqual(plan.unmanaged, []);
    assert.ok(!planIsEmpty(plan));
  });

  it('migrates the old webhook when the conduit twin already exists (an apply cut short), without creating again', () => {
    const hook = sub({ id: 'hook' });
    const twin = conduitSub(CONDUIT, { id: 'twin' });
    const d = wantOn(onConduit());
    const plan = planSync([d], [hook, twin], { ownership: CONDUIT_MODE, prune: false });
    assert.deepEqual(plan.create, []);
    assert.deepEqual(plan.keep, [{ desired: d, existing: twin }]);
    assert.deepEqual(plan.migrate, [{ desired: d, existing: hook }]);
  });

  it('migrates back from the recorded conduit to webhooks (webhook mode owns the recorded conduits)', () => {
    const old = conduitSub(CONDUIT, { id: 'old' });
    const d = want();
    const plan = planSync([d], [old], { ownership: { callbackUrl: CALLBACK, conduitIds: [CONDUIT] }, prune: false });
    assert.deepEqual(plan.create, [d]);
    assert.deepEqual(plan.migrate, [{ desired: d, existing: old }]);
  });

  it("migrates a replaced conduit's declared subscriptions and prunes its undeclared leftovers (only with prune)", () => {
    const declared = conduitSub(OLD_CONDUIT, { id: 'old-declared' });
    const leftover = conduitSub(OLD_CONDUIT, { id: 'old-leftover', type: 'stream.offline' });
    const d = wantOn(onConduit());
    const on = planSync([d], [declared, leftover], { ownership: CONDUIT_MODE, prune: true });
    assert.deepEqual(on.migrate, [{ desired: d, existing: declared }]);
    assert.deepEqual(on.delete, [{ existing: leftover, reason: 'pruned' }]);
    const off = planSync([d], [declared, leftover], { ownership: CONDUIT_MODE, prune: false });
    assert.deepEqual(off.migrate, [{ desired: d, existing: declared }]);
    assert.deepEqual(off.unmanaged, [leftover]);
  });

  it('never touches a foreign conduit, a foreign callback or a WebSocket subscription', () => {
    const foreign = [
      conduitSub('someone-elses-conduit'),
      sub({ callback: OTHER_CALLBACK }),
      sub({ transport: { method: 'websocket', session_id: 'abc' } }),
    ];
    const plan = planSync([wantOn(onConduit())], foreign, { ownership: CONDUIT_MODE, prune: true });
    assert.equal(plan.create.length, 1);
    assert.deepEqual([plan.migrate, plan.delete, plan.unmanaged], [[], [], []]);
    // Without EVENTSUB_CALLBACK_URL, conduit mode does not own any webhook at all.
    const noHook = planSync([wantOn(onConduit())], [sub({ id: 'hook' })], { ownership: { conduitIds: [CONDUIT] }, prune: true });
    assert.deepEqual([noHook.migrate, noHook.delete], [[], []]);
  });

  it("owns the desired entries' own target even when the ownership does not name it", () => {
    const twin = conduitSub(CONDUIT, { id: 'twin' });
    const stray = conduitSub(CONDUIT, { id: 'stray', type: 'stream.offline' });
    const plan = planSync([wantOn(onConduit())], [twin, stray], { ownership: { conduitIds: [] }, prune: true });
    assert.equal(plan.keep[0]?.existing.id, 'twin');
    assert.deepEqual(plan.delete, [{ existing: stray, reason: 'pruned' }]);
  });

  it('frees the cost of migrations, except one whose twin is blocked (apply keeps that one)', () => {
    const hook = sub({ id: 'hook', cost: 1 });
    const blockedHook = sub({ id: 'hook2', condition: { broadcaster_user_id: '9' }, cost: 1 });
    const revoked = conduitSub(CONDUIT, { id: 'revoked', condition: { broadcaster_user_id: '9' }, status: 'authorization_revoked', cost: 1 });
    const plan = planSync([wantOn(onConduit()), wantOn(onConduit(), '9')], [hook, blockedHook, revoked], { ownership: CONDUIT_MODE, prune: true });
    assert.deepEqual(plan.migrate.map((m) => m.existing.id), ['hook', 'hook2']);
    assert.deepEqual(plan.blocked.map((b) => b.existing.id), ['revoked']);
    // 3 now − 1 (hook migrated) + 1 create; hook2 stays while its twin is blocked.
    assert.deepEqual(plan.cost, { current: 3, projected: 3, max: undefined });
  });

  it('formatPlan() shows a migration with both targets and counts it in the summary, without the secret', () => {
    const hook = sub({ id: 'hook' });
    const lines = formatPlan(planSync([wantOn(onConduit())], [hook], { ownership: CONDUIT_MODE, prune: false }));
    assert.deepEqual(lines, [
      '+ create stream.online v1 broadcaster_user_id=12345',
      `> migrate stream.online v1 broadcaster_user_id=12345 (webhook -> conduit ${CONDUIT}, id hook)`,
      '= keep 0 unchanged',
      'cost: 1 now, at most 1 after apply',
      'plan: 1 to create, 0 to recreate, 1 to migrate, 0 to delete, 0 to keep, 0 blocked, 0 unmanaged',
    ]);
    assert.equal(planSummary(planSync([wantOn(onConduit())], [hook], { ownership: CONDUIT_MODE, prune: false })).migrate, 1);
    assert.ok(!lines.join('\n').includes(SECRET));
  });
});

describe('targetOf() and isOwned()', () => {
  it('key a webhook by its callback, a conduit as conduit:<id>; own only our callback and our conduits', () => {
    const own: Ownership = { callbackUrl: CALLBACK, conduitIds: [CONDUIT] };
    const hook = { transport: { method: 'webhook', callback: CALLBACK } };
    const conduit = { transport: { method: 'conduit', conduit_id: CONDUIT } };
    assert.equal(targetOf(hook), CALLBACK);
    assert.equal(targetOf(conduit), `conduit:${CONDUIT}`);
    assert.ok(isOwned(hook, own) && isOwned(conduit, own));
    assert.ok(!isOwned({ transport: { method: 'webhook', callback: OTHER_CALLBACK } }, own));
    assert.ok(!isOwned({ transport: { method: 'conduit', conduit_id: OLD_CONDUIT } }, own));
    assert.ok(!isOwned({ transport: { method: 'websocket', session_id: 's' } }, own));
    assert.ok(!isOwned(hook, { conduitIds: [CONDUIT] }), 'no callback set: no webhook is ours');
    assert.ok(!isOwned({ transport: { method: 'webhook', callback: '' } }, { callbackUrl: '', conduitIds: [] }));
  });
});
