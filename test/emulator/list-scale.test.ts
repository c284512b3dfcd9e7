import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Emulator, EmulatorClient } from '../../src/emulator/index.js';
import { mulberry32 } from '../helpers/prng.js';
import { helix, mint, SECRET, setup, webhookBody } from './helpers.js';

const N = 2_000;

interface Fixture {
  emu: Emulator;
  client: EmulatorClient;
  token: string;
  /** Creation index of every subscription ever created (ids never reappear). */
  order: Map<string, number>;
  create(i: number): Promise<string>;
}

/**
 * An emulator holding N subscriptions with distinct conditions: channel.update, stream.online and
 * channel.follow (moderator mod0 or mod1) in turn; every 7th revoked.
 */
async function fixture(t: Parameters<typeof setup>[0]): Promise<Fixture> {
  const { emu, client } = await setup(t, { bucket: { limit: 1_000_000, windowMs: 60_000 } });
  const token = await mint(emu, client);
  // channel.follow needs its moderator's grant (moderator:read:followers).
  for (const mod of ['mod0', 'mod1']) emu.registerUserToken({ userId: mod, scopes: ['moderator:read:followers'] });
  const order = new Map<string, number>();
  const create = async (i: number): Promise<string> => {
    const [type, version] = TYPES[i % 3]!;
    const body = webhookBody({
      type,
      version,
      condition: { broadcaster_user_id: String(i), ...(type === 'channel.follow' ? { moderator_user_id: `mod${i % 2}` } : {}) },
      transport: { method: 'webhook', callback: `https://events.example.com/cb${i}`, secret: SECRET },
    });
    const res = await helix(emu, { method: 'POST', token, clientId: client.clientId, body });
    assert.equal(res.status, 202, `create ${i}`);
    const id = res.json.data[0].id as string;
    order.set(id, order.size);
    return id;
  };
  for (let i = 0; i < N; i += 8) await Promise.all(Array.from({ length: 8 }, (_, k) => create(i + k)));
  emu.subscriptions().forEach((s, i) => i % 7 === 0 && emu.setSubscriptionStatus(s.id, 'authorization_revoked'));
  return { emu, client, token, order, create };
}

const TYPES = [['channel.update', '2'], ['stream.online', '1'], ['channel.follow', '2']] as const;
const QUERIES = ['', 'status=enabled', 'status=authorization_revoked', 'type=channel.update', 'user_id=mod1'];
const LIVE = new Set(['enabled', 'webhook_callback_verification_pending']);

type Listed = { id: string; status: string; type: string; cost: number; condition: Record<string, string> };

/** Contract 5.3: the one filter given, `user_id` matching any user ID field of the condition. */
function matcher(query: string): (s: Listed) => boolean {
  const [name, value] = query ? query.split('=') : [];
  return (s) =>
    name === 'status'
      ? s.status === value
      : name === 'type'
        ? s.type === value
        : name === 'user_id'
          ? Object.entries(s.condition).some(([field, v]) => field.endsWith('user_id') && v === value)
          : true;
}

test(`emulator list pagination over ${N} subscriptions with deletions (and creates) between pages returns each survivor once, in order`, async (t) => {
  const f = await fixture(t);
  const rng = mulberry32(2026);
  let created = N;
  for (const query of QUERIES) {
    const matches = matcher(query);
    const atStart = new Set(f.emu.subscriptions().filter(matches).map((s) => s.id));
    const deleted = new Set<string>();
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const q = [query, after ? `after=${encodeURIComponent(after)}` : ''].filter(Boolean).join('&');
      const res = await helix(f.emu, { token: f.token, clientId: f.client.clientId, query: q });
      assert.equal(res.status, 200, query);
      pages += 1;
      const page = res.json.data as Listed[];
      assert.ok(page.length <= 100, query);
      for (const s of page) {
        assert.ok(matches(s), `${query}: ${s.id} does not match`);
        assert.equal(deleted.has(s.id), false, `${query}: ${s.id} listed after its deletion`);
      }
      seen.push(...page.map((s) => s.id));
      after = res.json.pagination.cursor;
      assert.equal(res.json.total, f.emu.subscriptions().length, query);
      // between pages: delete the cursor's entry, the next match after it, and random (matching) ones
      const live = f.emu.subscriptions();
      const ahead = live.filter((s) => matches(s) && (f.order.get(s.id) ?? -1) > (f.order.get(seen.at(-1) ?? '') ?? -1));
      const anyOf = (subs: Listed[]) => subs[Math.floor(rng() * subs.length)]?.id;
      const victims = [page.at(-1)?.id, ahead[0]?.id, anyOf(ahead), anyOf(live), anyOf(live)];
      for (const id of new Set(victims)) {
        if (id === undefined) continue;
        const del = await helix(f.emu, { method: 'DELETE', token: f.token, clientId: f.client.clientId, query: `id=${id}` });
        assert.equal(del.status, 204);
        deleted.add(id);
      }
      // a subscription created mid-listing is newer than any cursor: the unfiltered listing must reach it
      if (query === '' && after) atStart.add(await f.create(created++));
    } while (after);
    assert.equal(new Set(seen).size, seen.length, `${query}: a subscription was listed twice`);
    const order = seen.map((id) => f.order.get(id) ?? -1);
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `${query}: not oldest first`);
    const survivors = [...atStart].filter((id) => !deleted.has(id));
    const listed = new Set(seen);
    assert.deepEqual(survivors.filter((id) => !listed.has(id)), [], `${query}: survivors missing`);
    assert.ok(seen.length >= survivors.length && survivors.length > 0, query);
    assert.ok(pages >= Math.floor(survivors.length / 100), `${query}: ${pages} pages`);
  }
});

test('emulator list subscription_id finds one subscription after thousands, not after the cursor past it, and not once deleted', async (t) => {
  const f = await fixture(t);
  const subs = f.emu.subscriptions();
  const target = subs[1500]!;
  const q = (extra = '') => helix(f.emu, { token: f.token, clientId: f.client.clientId, query: `subscription_id=${target.id}${extra}` });
  assert.deepEqual((await q()).json.data.map((s: { id: string }) => s.id), [target.id]);
  const all = await helix(f.emu, { token: f.token, clientId: f.client.clientId });
  assert.equal(all.json.total, N);
  assert.equal(all.json.total_cost, subs.filter((s) => LIVE.has(s.status)).reduce((sum, s) => sum + s.cost, 0));
  assert.ok(all.json.total_cost > 1000 && all.json.total_cost < N);
  // walk to a cursor past the target: the target is before it, so the filtered page is empty
  let after = '';
  for (let i = 0; i < 16; i++) {
    const page = await helix(f.emu, { token: f.token, clientId: f.client.clientId, ...(after ? { query: `after=${encodeURIComponent(after)}` } : {}) });
    after = page.json.pagination.cursor;
  }
  assert.deepEqual((await q(`&after=${encodeURIComponent(after)}`)).json.data, []);
  assert.equal((await helix(f.emu, { method: 'DELETE', token: f.token, clientId: f.client.clientId, query: `id=${target.id}` })).status, 204);
  const gone = await q();
  assert.deepEqual(gone.json.data, []);
  assert.deepEqual(gone.json.pagination, {});
  assert.equal(gone.json.total, N - 1);
});
