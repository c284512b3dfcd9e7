/**
 * HelixEventSubClient's conduit calls (twitch-contract section 6) against the real emulator: create, list, update,
 * delete, shards (every page, status filter), shard assignment with per-shard errors, 404 → CONDUIT_NOT_FOUND, the
 * 5-conduit limit told apart from an empty bucket, and the request path shared with subscriptions (user token
 * refused before any request, one re-mint on 401, answers parsed).
 */
import assert from 'node:assert/strict';
import { wsClient } from '../emulator/ws-helpers.js';
import { describe, it, type TestContext } from 'node:test';
import type { Emulator } from '../../src/emulator/index.js';
import { AppError } from '../../src/lib/errors.js';
import { HelixEventSubClient, type HelixCallInfo } from '../../src/twitch/helix.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startRig } from '../integration/helpers.js';

const CONDUITS = '/helix/eventsub/conduits';
const SHARDS = '/helix/eventsub/conduits/shards';
const MISSING = '00000000-0000-4000-8000-000000000000';

function hasCode(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/** Opens a WebSocket on the emulator's /ws and resolves with the session id of its welcome. */
async function openSession(t: TestContext, emu: Emulator): Promise<string> {
  return (await wsClient(t, emu)).id;
}

describe('HelixEventSubClient conduits against the emulator', () => {
  it('creates, lists, updates the shard count of and deletes a conduit, each call reported to onCall', async (t) => {
    const calls: HelixCallInfo[] = [];
    const { stack, config, clock, agent } = await startRig(t);
    // The rig's token manager, with a client of our own that reports its calls.
    const helix = new HelixEventSubClient({ apiUrl: config.apiUrl, clientId: config.clientId, tokens: stack.tokens, clock, dispatcher: agent, onCall: (c) => calls.push(c) });

    assert.deepEqual(await helix.listConduits(), []);
    const created = await helix.createConduit(3);
    assert.equal(created.shard_count, 3);
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await helix.listConduits(), [{ id: created.id, shard_count: 3 }]);
    assert.deepEqual(await helix.updateConduit(created.id, 5), { id: created.id, shard_count: 5 });
    assert.equal((await helix.listShards(created.id)).length, 5);
    await helix.deleteConduit(created.id);
    assert.deepEqual(await helix.listConduits(), []);

    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path} ${c.status}`),
      [`GET ${CONDUITS} 200`, `POST ${CONDUITS} 200`, `GET ${CONDUITS} 200`, `PATCH ${CONDUITS} 200`, `GET ${SHARDS} 200`, `DELETE ${CONDUITS} 204`, `GET ${CONDUITS} 200`],
    );
  });

  it('listShards() reads every page and filters by status', async (t) => {
    const { emu, stack } = await startRig(t);
    const conduit = await stack.helix.createConduit(250);
    const sessionId = await openSession(t, emu);
    await stack.helix.updateShards(conduit.id, [{ id: '249', sessionId }]);
    emu.resetStats();

    const shards = await stack.helix.listShards(conduit.id);
    assert.deepEqual(shards.map((s) => s.id), Array.from({ length: 250 }, (_, i) => String(i)), 'all 250, in order, none twice');
    assert.equal(emu.stats.helix.byMethod.GET, 3, '100 shards a page: three pages');
    const enabled = await stack.helix.listShards(conduit.id, { status: 'enabled' });
    assert.deepEqual(enabled.map((s) => [s.id, s.status, s.transport?.session_id]), [['249', 'enabled', sessionId]]);
  });

  it('updateShards() assigns a connected session and returns a refused shard in errors, not as a throw', async (t) => {
    const { emu, stack } = await startRig(t);
    const conduit = await stack.helix.createConduit(2);
    const sessionId = await openSession(t, emu);

    const result = await stack.helix.updateShards(conduit.id, [
      { id: '0', sessionId },
      { id: '1', sessionId: 'no-such-session' },
      { id: '7', sessionId },
    ]);
    assert.deepEqual(result.data.map((s) => [s.id, s.status, s.transport?.method, s.transport?.session_id]), [['0', 'enabled', 'websocket', sessionId]]);
    assert.equal(typeof result.data[0]?.transport?.connected_at, 'string');
    assert.deepEqual(
      result.errors.map((e) => [e.id, e.message, e.code]),
      [
        ['1', 'The websocket session is not connected', 'invalid_parameter'],
        ['7', "The shard id is outside the conduit's range", 'invalid_parameter'],
      ],
    );
    const byId = new Map((await stack.helix.listShards(conduit.id)).map((s) => [s.id, s.status]));
    assert.equal(byId.get('0'), 'enabled');
    assert.notEqual(byId.get('1'), 'enabled');
  });

  it('a conduit Twitch does not know is CONDUIT_NOT_FOUND for update, delete, listShards and updateShards', async (t) => {
    const { stack } = await startRig(t);
    const notFound = hasCode('CONDUIT_NOT_FOUND', new RegExp(`no conduit ${MISSING}.*404`));
    await assert.rejects(stack.helix.updateConduit(MISSING, 2), notFound);
    await assert.rejects(stack.helix.deleteConduit(MISSING), notFound);
    await assert.rejects(stack.helix.listShards(MISSING), notFound);
    await assert.rejects(stack.helix.updateShards(MISSING, [{ id: '0', sessionId: 'x' }]), notFound);
  });

  it('a sixth conduit is CONDUIT_LIMIT_REACHED, saying 5 per client and how to delete one; nothing is retried', async (t) => {
    const { emu, stack } = await startRig(t);
    for (let i = 0; i < 5; i += 1) await stack.helix.createConduit(1);
    emu.resetStats();
    await assert.rejects(
      stack.helix.createConduit(1),
      hasCode('CONDUIT_LIMIT_REACHED', /5 conduits per client ID.*DELETE \/helix\/eventsub\/conduits\?id=ID.*EVENTSUBD_CONDUIT_ID/),
    );
    assert.equal(emu.stats.helix.total, 1, 'a 429 with points left is not waited out');
    assert.equal(emu.stats.helix.rateLimited, 0);
    assert.equal((await stack.helix.listConduits()).length, 5);
  });

  it('a 429 with an empty bucket on create is waited out, not taken for the conduit limit', async (t) => {
    const { emu, stack } = await startRig(t, { clock: new FakeClock(undefined, { autoAdvance: true }) });
    emu.injectFault({ kind: 'status', status: 429, match: { method: 'POST', pathPrefix: CONDUITS } });
    const conduit = await stack.helix.createConduit(1);
    assert.equal(conduit.shard_count, 1);
    assert.deepEqual(emu.stats.helix.byStatus, { '429': 1, '200': 1 });
  });

  it('a user token is refused before any conduit request leaves (USER_TOKEN_REFUSED)', async (t) => {
    const { emu, stack } = await startRig(t, {
      settings: (e, client) => ({ TWITCH_ACCESS_TOKEN: e.registerUserToken({ clientId: client.clientId, userId: '4242' }) }),
    });
    await assert.rejects(stack.helix.listConduits(), hasCode('USER_TOKEN_REFUSED'));
    await assert.rejects(stack.helix.createConduit(1), hasCode('USER_TOKEN_REFUSED'));
    await assert.rejects(stack.helix.updateShards(MISSING, [{ id: '0', sessionId: 'x' }]), hasCode('USER_TOKEN_REFUSED'));
    assert.equal(emu.stats.helix.total, 0, 'no Helix request was sent');
  });

  it('a 401 on a conduit call re-mints once and retries with the new token', async (t) => {
    const { emu, stack } = await startRig(t);
    await stack.helix.listConduits();
    const mints = emu.stats.mints;
    emu.expireAllTokens();
    const conduit = await stack.helix.createConduit(2);
    assert.equal(conduit.shard_count, 2);
    assert.equal(emu.stats.mints, mints + 1, 'exactly one re-mint');
    assert.deepEqual((await stack.helix.listConduits()).map((c) => c.id), [conduit.id]);
  });

  it('an answer that is not the documented shape is TWITCH_BAD_RESPONSE', async (t) => {
    const { emu, stack } = await startRig(t);
    emu.injectFault({ kind: 'status', status: 200, body: { data: [{ id: 42, shard_count: 'many' }] }, match: { method: 'GET', pathPrefix: CONDUITS } });
    await assert.rejects(stack.helix.listConduits(), hasCode('TWITCH_BAD_RESPONSE', /GET \/helix\/eventsub\/conduits answered 200/));
    emu.injectFault({ kind: 'status', status: 200, body: { data: [] }, match: { method: 'POST', pathPrefix: CONDUITS } });
    await assert.rejects(stack.helix.createConduit(1), hasCode('TWITCH_BAD_RESPONSE'));
    emu.injectFault({ kind: 'status', status: 202, body: { data: [{ id: '0' }] }, match: { method: 'PATCH', pathPrefix: SHARDS } });
    await assert.rejects(stack.helix.updateShards(MISSING, [{ id: '0', sessionId: 'x' }]), hasCode('TWITCH_BAD_RESPONSE'));
  });
});
