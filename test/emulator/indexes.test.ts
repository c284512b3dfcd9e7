import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WireSubscription } from '../../src/emulator/index.js';
import { mulberry32 } from '../helpers/prng.js';
import { helix, mint, SECRET, setup, webhookBody } from './helpers.js';

const LIVE = new Set(['enabled', 'webhook_callback_verification_pending']);
const STATUSES = ['enabled', 'authorization_revoked', 'webhook_callback_verification_failed', 'notification_failures_exceeded', 'webhook_callback_verification_pending'];
const NO_LIMIT = { limit: 1_000_000, windowMs: 60_000 };

/** The live cost as the docs define it (contract 5.6), recomputed from a snapshot. */
function recomputedCost(subs: WireSubscription[]): number {
  return subs.filter((s) => LIVE.has(s.status)).reduce((sum, s) => sum + s.cost, 0);
}

/** What a create must answer, decided from a snapshot alone (contract 5.2, 5.6). */
function expectedCreate(subs: WireSubscription[], want: { type: string; user: string; callback: string; cost: number }, max: number): number {
  const twins = subs.filter((s) => LIVE.has(s.status) && s.type === want.type && s.condition.broadcaster_user_id === want.user);
  if (twins.some((s) => s.transport.callback === want.callback)) return 409;
  if (twins.length >= 3) return 429;
  return recomputedCost(subs) + want.cost > max ? 403 : 202;
}

for (const seed of [20261125, 7]) {
  test(`emulator total_cost, total and the twin rules match a recompute after every step of a random create/delete/revoke sequence (seed ${seed})`, async (t) => {
    const max = 25;
    const { emu, client } = await setup(t, { bucket: NO_LIMIT, maxTotalCost: max });
    const token = await mint(emu, client);
    emu.registerUserToken({ userId: '1' });
    const rng = mulberry32(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;
    const statuses: Record<number, number> = {};
    for (let step = 0; step < 300; step++) {
      const at = `seed ${seed} step ${step}`;
      const before = emu.subscriptions();
      const roll = rng();
      if (roll < 0.55) {
        const type = pick(['stream.online', 'channel.update']);
        const want = { type, user: pick(['1', '2', '3', '4', '5', '6']), callback: `https://events.example.com/cb${pick([1, 2, 3, 4])}`, cost: 0 };
        want.cost = want.user === '1' ? 0 : 1;
        const body = webhookBody({
          type,
          version: type === 'stream.online' ? '1' : '2',
          condition: { broadcaster_user_id: want.user },
          transport: { method: 'webhook', callback: want.callback, secret: SECRET },
        });
        const res = await helix(emu, { method: 'POST', token, clientId: client.clientId, body });
        assert.equal(res.status, expectedCreate(before, want, max), at);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status === 202) {
          assert.equal(res.json.total, before.length + 1, at);
          assert.equal(res.json.total_cost, recomputedCost(before) + want.cost, at);
        }
      } else if (roll < 0.75 && before.length > 0) {
        const res = await helix(emu, { method: 'DELETE', token, clientId: client.clientId, query: `id=${pick(before).id}` });
        assert.equal(res.status, 204, at);
      } else if (before.length > 0) {
        emu.setSubscriptionStatus(pick(before).id, pick(STATUSES));
      }
      const now = emu.subscriptions();
      const list = await helix(emu, { token, clientId: client.clientId, query: 'status=enabled' });
      assert.equal(list.json.total, now.length, at);
      assert.equal(list.json.total_cost, recomputedCost(now), at);
    }
    // the sequence really went through every branch of the create rules
    for (const status of [202, 403, 409, 429]) assert.ok((statuses[status] ?? 0) > 0, `seed ${seed}: no ${status} in ${JSON.stringify(statuses)}`);
  });
}

test('emulator create accepts a twin again once its original is deleted or revoked, and a 4th once one of 3 is deleted', async (t) => {
  const { emu, client } = await setup(t);
  const token = await mint(emu, client);
  const post = (n = 0) =>
    helix(emu, {
      method: 'POST',
      token,
      clientId: client.clientId,
      body: webhookBody({ transport: { method: 'webhook', callback: `https://events.example.com/cb${n}`, secret: SECRET } }),
    });
  const del = (id: string) => helix(emu, { method: 'DELETE', token, clientId: client.clientId, query: `id=${id}` });

  const first = await post();
  assert.equal(first.status, 202);
  assert.equal((await post()).status, 409);
  assert.equal((await del(first.json.data[0].id)).status, 204);
  const again = await post();
  assert.equal(again.status, 202);
  assert.equal(again.json.total, 1);
  assert.equal(again.json.total_cost, 1);
  assert.equal((await post()).status, 409);

  emu.setSubscriptionStatus(again.json.data[0].id, 'authorization_revoked');
  const third = await post();
  assert.equal(third.status, 202);
  assert.equal(third.json.total, 2);
  assert.equal(third.json.total_cost, 1);

  assert.equal((await post(1)).status, 202);
  assert.equal((await post(2)).status, 202);
  assert.equal((await post(3)).status, 429);
  assert.equal((await del(third.json.data[0].id)).status, 204);
  const fourth = await post(3);
  assert.equal(fourth.status, 202);
  assert.equal(fourth.json.total, 4);
  assert.equal(fourth.json.total_cost, 3);
  // reviving the revoked one makes it a live twin again: the key is now full and its callback conflicts
  emu.setSubscriptionStatus(again.json.data[0].id, 'enabled');
  assert.equal((await post()).status, 409);
  assert.equal((await post(4)).status, 429);
});
