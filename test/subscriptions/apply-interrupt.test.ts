/**
 * Issue 13: an apply stopped by its signal (Ctrl-C) says what it did and what it did not, with progress by kind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplyInterruptedError, applyPlan, type ApplyProgress } from '../../src/subscriptions/apply.js';
import { planSync } from '../../src/subscriptions/plan.js';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import { untilTurn } from '../helpers/wait.js';
import { CALLBACK, CONDUIT, FakeEventSubApi, OWN, SECRET, sub } from './fake-api.js';

const want = (id: string): DesiredSubscription => ({
  type: 'stream.online',
  version: '1',
  condition: { broadcaster_user_id: id },
  transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
});

function rig(): { api: FakeEventSubApi; run: Promise<unknown>; controller: AbortController; progress: ApplyProgress[] } {
  const broken = sub({ id: 'broken', condition: { broadcaster_user_id: '1' }, status: 'notification_failures_exceeded' });
  const stray = sub({ id: 'stray', type: 'stream.offline', condition: { broadcaster_user_id: '2' } });
  const api = new FakeEventSubApi([broken, stray], { hold: true });
  const plan = planSync([want('1'), want('3'), want('4'), want('5')], api.subs, { ownership: OWN, prune: true });
  const controller = new AbortController();
  const progress: ApplyProgress[] = [];
  const run = applyPlan(plan, api, { concurrency: 1, signal: controller.signal, onProgress: (_d, _t, p) => progress.push(p) }).then(
    () => assert.fail('the apply was not interrupted'),
    (err: unknown) => err,
  );
  return { api, run, controller, progress };
}

/** Lets the `n`th write go, once it is held (concurrency 1: one write at a time). */
async function release(api: FakeEventSubApi, n: number): Promise<void> {
  await untilTurn(() => api.inFlight === 1 && api.writes === n, `write ${n} held`);
  api.release();
}

test('applyPlan() interrupted before any write: every step of the plan is remaining, a recreate listed once', async () => {
  const { api, run, controller } = rig();
  await untilTurn(() => api.inFlight === 1, 'the first delete in flight');
  controller.abort(new Error('received SIGINT'));
  const err = await run;
  assert.ok(err instanceof ApplyInterruptedError);
  assert.equal(err.code, 'ABORTED');
  assert.deepEqual(err.partial.removed, []);
  assert.deepEqual(
    err.remaining.map((r) => `${r.action} ${r.key}`),
    ['delete stream.offline v1 broadcaster_user_id=2', 'recreate stream.online v1 broadcaster_user_id=1', 'create stream.online v1 broadcaster_user_id=3', 'create stream.online v1 broadcaster_user_id=4', 'create stream.online v1 broadcaster_user_id=5'],
  );
});

test('applyPlan() interrupted among the creates: the done deletes and recreate in partial, the rest remaining; progress by kind', async () => {
  const { api, run, controller, progress } = rig();
  for (const n of [1, 2, 3]) await release(api, n);
  await untilTurn(() => api.inFlight === 1 && api.writes === 4, 'the second create in flight');
  controller.abort(new Error('received SIGINT'));
  const err = await run;
  assert.ok(err instanceof ApplyInterruptedError);
  assert.equal(err.partial.deleted, 1);
  assert.equal(err.partial.recreated, 1);
  assert.deepEqual(err.partial.removed.map((s) => s.id).sort(), ['broken', 'stray']);
  assert.deepEqual(err.remaining.map((r) => `${r.action} ${r.key}`), [
    'create stream.online v1 broadcaster_user_id=3',
    'create stream.online v1 broadcaster_user_id=4',
    'create stream.online v1 broadcaster_user_id=5',
  ]);
  assert.deepEqual(progress.at(-1), { deleted: 2, deletes: 2, created: 1, creates: 4 });
});

test('applyPlan() interrupted among the creates of a migration: the old subscriptions are still there and listed as remaining migrations', async () => {
  const hook1 = sub({ id: 'hook1', condition: { broadcaster_user_id: '1' } });
  const hook2 = sub({ id: 'hook2', condition: { broadcaster_user_id: '2' } });
  const api = new FakeEventSubApi([hook1, hook2], { hold: true });
  const onConduit = (id: string): DesiredSubscription => ({ ...want(id), transport: { method: 'conduit', conduit_id: CONDUIT } });
  const plan = planSync([onConduit('1'), onConduit('2')], api.subs, { ownership: { callbackUrl: CALLBACK, conduitIds: [CONDUIT] }, prune: false });
  const controller = new AbortController();
  const run = applyPlan(plan, api, { concurrency: 1, signal: controller.signal }).then(
    () => assert.fail('the apply was not interrupted'),
    (err: unknown) => err,
  );
  await release(api, 1);
  await untilTurn(() => api.inFlight === 1 && api.writes === 2, 'the second create in flight');
  controller.abort(new Error('received SIGINT'));
  const err = await run;
  assert.ok(err instanceof ApplyInterruptedError);
  assert.deepEqual(err.partial.created.map((s) => s.condition.broadcaster_user_id), ['1']);
  assert.equal(err.partial.migrated, 0);
  assert.deepEqual(err.remaining.map((r) => `${r.action} ${r.key} ${r.id ?? ''}`), [
    'create stream.online v1 broadcaster_user_id=2 ',
    'migrate stream.online v1 broadcaster_user_id=1 hook1',
    'migrate stream.online v1 broadcaster_user_id=2 hook2',
  ]);
  assert.deepEqual(api.subs.map((s) => s.id).filter((id) => id.startsWith('hook')), ['hook1', 'hook2'], 'no old one deleted');
});
