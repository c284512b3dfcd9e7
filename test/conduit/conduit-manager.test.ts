/**
 * ConduitManager against the real emulator and a temporary state directory: the SPEC's rules for choosing the
 * conduit (create, adopt the recorded one, replace a lost one, never guess, never replace a configured one), the
 * shard count, shard assignment with Twitch's per-shard errors, and one replacement however many shards meet the 404.
 */
import assert from 'node:assert/strict';
import { wsClient } from '../emulator/ws-helpers.js';
import { describe, it, type TestContext } from 'node:test';
import { ConduitManager } from '../../src/conduit/conduit-manager.js';
import { readConduitRecord, writeConduitRecord } from '../../src/conduit/conduit-store.js';
import type { Emulator } from '../../src/emulator/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { AppError } from '../../src/lib/errors.js';
import { captureLogs } from '../auth/fakes.js';
import { untilTurn } from '../helpers/wait.js';
import { startRig, type Rig } from '../integration/helpers.js';

const CONDUITS = '/helix/eventsub/conduits';
const GONE = '11111111-1111-4111-8111-111111111111';

function hasCode(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/** The rig, and a manager over it (a new one per call: a daemon restart). */
async function setup(t: TestContext) {
  const rig = await startRig(t);
  const logs = captureLogs();
  const manager = (init: { configuredId?: string; shards?: number } = {}): ConduitManager =>
    new ConduitManager({
      api: rig.stack.helix,
      stateDir: rig.config.stateDir,
      configuredId: init.configuredId,
      shards: init.shards ?? 1,
      clock: rig.clock,
      logger: logs.logger,
    });
  const conduits = async (): Promise<[string, number][]> => (await rig.stack.helix.listConduits()).map((c) => [c.id, c.shard_count]);
  const shards = async (id: string): Promise<[string, string, string | undefined][]> =>
    (await rig.stack.helix.listShards(id)).map((s) => [s.id, s.status, s.transport?.session_id]);
  return { ...rig, logs, manager, conduits, shards };
}

/** Requests the emulator answered, as 'METHOD path status', e.g. 'POST /helix/eventsub/conduits 200'. */
function conduitCalls(emu: Emulator): string[] {
  return emu.stats.requests.filter((r) => r.path.startsWith(CONDUITS)).map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`);
}

/** Opens a WebSocket on the emulator's /ws and resolves with the session id of its welcome. */
async function openSession(t: TestContext, emu: Emulator): Promise<string> {
  return (await wsClient(t, emu)).id;
}

async function createConduits(rig: Rig, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) ids.push((await rig.stack.helix.createConduit(1)).id);
  return ids;
}

describe('ConduitManager.ensure()', () => {
  it('creates and records a conduit when there is no record and the client has none; a restart adopts it', async (t) => {
    const { emu, config, manager, conduits } = await setup(t);
    const first = manager({ shards: 3 });
    const id = await first.ensure();
    assert.equal(first.conduitId, id);
    assert.deepEqual(await conduits(), [[id, 3]]);
    const record = await readConduitRecord(config.stateDir);
    assert.deepEqual({ ...record, created_at: undefined }, { conduit_id: id, created_at: undefined, previous: [] });
    assert.equal(record?.created_at, '2026-11-24T10:00:00.000Z', 'the injected clock');
    assert.deepEqual(first.ownedIds(), [id]);

    emu.resetStats();
    const restarted = manager({ shards: 3 });
    assert.equal(await restarted.ensure(), id, 'the recorded conduit is adopted');
    assert.deepEqual(conduitCalls(emu), [`GET ${CONDUITS} 200`], 'one list, no create, no update');
  });

  it('sets shard_count to the shards held when it differs', async (t) => {
    const { emu, manager, conduits } = await setup(t);
    const id = await manager({ shards: 1 }).ensure();
    emu.resetStats();
    assert.equal(await manager({ shards: 4 }).ensure(), id);
    assert.deepEqual(conduitCalls(emu), [`GET ${CONDUITS} 200`, `PATCH ${CONDUITS} 200`]);
    assert.deepEqual((await conduits()).map(([, n]) => n), [4]);
  });

  it('without a record, a client that already has conduits is CONDUIT_AMBIGUOUS (exit 78) listing them; nothing is created', async (t) => {
    const rig = await setup(t);
    const ids = await createConduits(rig, 2);
    rig.emu.resetStats();
    const err = await rig.manager().ensure().catch((e: unknown) => e);
    hasCode('CONDUIT_AMBIGUOUS', /EVENTSUBD_CONDUIT_ID/)(err);
    assert.equal((err as AppError).exitCode, 78);
    for (const id of ids) assert.match((err as AppError).message, new RegExp(id));
    assert.deepEqual(conduitCalls(rig.emu), [`GET ${CONDUITS} 200`]);
    assert.equal(await readConduitRecord(rig.config.stateDir), undefined, 'no record is written');
  });

  it('a configured conduit is used as is (shard_count set, no record); one Twitch does not know is CONDUIT_NOT_FOUND, exit 78', async (t) => {
    const rig = await setup(t);
    const [mine, other] = await createConduits(rig, 2);
    const configured = rig.manager({ configuredId: other!, shards: 2 });
    assert.equal(await configured.ensure(), other);
    assert.deepEqual(await rig.conduits(), [[mine, 1], [other, 2]]);
    assert.equal(await readConduitRecord(rig.config.stateDir), undefined);

    const err = await rig.manager({ configuredId: GONE }).ensure().catch((e: unknown) => e);
    hasCode('CONDUIT_NOT_FOUND', new RegExp(`EVENTSUBD_CONDUIT_ID names conduit ${GONE}.*${mine}`))(err);
    assert.equal((err as AppError).exitCode, 78);
    assert.equal((await rig.conduits()).length, 2, 'nothing created');
  });

  it('a recorded conduit Twitch no longer has is replaced, recorded with the old id in previous, and logged at warn', async (t) => {
    const { config, manager, logs, conduits } = await setup(t);
    await writeConduitRecord(config.stateDir, { conduit_id: GONE, created_at: '2026-01-01T00:00:00.000Z', previous: ['older'] });
    const m = manager({ shards: 2 });
    const id = await m.ensure();
    assert.notEqual(id, GONE);
    assert.deepEqual(await conduits(), [[id, 2]]);
    const record = await readConduitRecord(config.stateDir);
    assert.deepEqual([record?.conduit_id, record?.previous], [id, ['older', GONE]]);
    assert.deepEqual(m.ownedIds().sort(), [id, GONE, 'older'].sort());
    const warn = logs.records().find((r) => r.level === 'warn');
    assert.equal(warn?.lostConduitId, GONE);
    assert.equal(warn?.conduitId, id);
  });

  it('a replacement that meets the 5-conduit limit is CONDUIT_LIMIT_REACHED', async (t) => {
    const rig = await setup(t);
    await writeConduitRecord(rig.config.stateDir, { conduit_id: GONE, created_at: '2026-01-01T00:00:00.000Z', previous: [] });
    await createConduits(rig, 5);
    await assert.rejects(rig.manager().ensure(), hasCode('CONDUIT_LIMIT_REACHED', /5 conduits per client ID/));
    assert.equal((await readConduitRecord(rig.config.stateDir))?.conduit_id, GONE, 'the record is left as it was');
  });
});

describe('ConduitManager.assignShard()', () => {
  it('assigns a session to its shard; a per-shard error is SHARD_ASSIGN_FAILED with Twitch\'s message', async (t) => {
    const { emu, manager, shards } = await setup(t);
    const m = manager({ shards: 2 });
    const id = await m.ensure();
    const sessionId = await openSession(t, emu);
    await m.assignShard('1', sessionId);
    assert.deepEqual(await shards(id), [['0', 'websocket_disconnected', undefined], ['1', 'enabled', sessionId]]);

    await assert.rejects(m.assignShard('0', 'no-such-session'), hasCode('SHARD_ASSIGN_FAILED', /shard 0 of conduit .*The websocket session is not connected \(invalid_parameter\)/));
    await assert.rejects(m.assignShard('5', sessionId), hasCode('SHARD_ASSIGN_FAILED', /outside the conduit's range/));
  });

  it('a conduit deleted behind our back is replaced once under 4 concurrent assignments, which all land on the new one', async (t) => {
    const { emu, stack, config, manager, logs, conduits, shards } = await setup(t);
    const m = manager({ shards: 4 });
    const old = await m.ensure();
    const replaced: [string, string][] = [];
    m.onReplaced((newId, oldId) => replaced.push([newId, oldId]));
    const sessions = await Promise.all([0, 1, 2, 3].map(() => openSession(t, emu)));
    await stack.helix.deleteConduit(old);
    emu.resetStats();

    await Promise.all(sessions.map((s, i) => m.assignShard(String(i), s)));

    const fresh = m.conduitId!;
    assert.notEqual(fresh, old);
    assert.deepEqual(replaced, [[fresh, old]], 'listeners told once');
    const calls = conduitCalls(emu);
    assert.equal(calls.filter((c) => c === `PATCH ${CONDUITS}/shards 404`).length, 4, 'every shard met the 404');
    assert.deepEqual(calls.filter((c) => c.startsWith('POST')), [`POST ${CONDUITS} 200`], 'one conduit created');
    assert.deepEqual(await conduits(), [[fresh, 4]]);
    assert.deepEqual(await shards(fresh), sessions.map((s, i) => [String(i), 'enabled', s]));
    const record = await readConduitRecord(config.stateDir);
    assert.deepEqual([record?.conduit_id, record?.previous], [fresh, [old]]);
    assert.deepEqual(m.ownedIds().sort(), [fresh, old].sort());
    assert.equal(logs.records().filter((r) => r.level === 'warn').length, 1);
  });

  it('a deletion found at once by a sync (ensure) and by shard assignments still makes one new conduit', async (t) => {
    const { emu, stack, manager, conduits } = await setup(t);
    const m = manager({ shards: 2 });
    const old = await m.ensure();
    const replaced: string[] = [];
    m.onReplaced((newId) => replaced.push(newId));
    const sessions = await Promise.all([0, 1].map(() => openSession(t, emu)));
    await stack.helix.deleteConduit(old);
    emu.resetStats();

    const [ensured] = await Promise.all([m.ensure(), ...sessions.map((s, i) => m.assignShard(String(i), s))]);

    assert.notEqual(ensured, old);
    assert.equal(m.conduitId, ensured);
    assert.deepEqual(conduitCalls(emu).filter((c) => c.startsWith('POST')), [`POST ${CONDUITS} 200`], 'one conduit created');
    assert.deepEqual(await conduits(), [[ensured, 2]]);
    assert.deepEqual(replaced, [ensured], 'listeners told once');
  });

  it('a configured conduit deleted while running is CONDUIT_NOT_FOUND: no new conduit is created', async (t) => {
    const rig = await setup(t);
    const [configured] = await createConduits(rig, 1);
    const m = rig.manager({ configuredId: configured! });
    await m.ensure();
    const sessionId = await openSession(t, rig.emu);
    await rig.stack.helix.deleteConduit(configured!);
    await assert.rejects(m.assignShard('0', sessionId), hasCode('CONDUIT_NOT_FOUND', /named by EVENTSUBD_CONDUIT_ID no longer exists.*does not replace/));
    assert.deepEqual(await rig.conduits(), []);
    assert.equal(m.conduitId, configured);
  });
});

describe('ConduitManager with several replicas (mayWrite)', () => {
  /** A follower of the rig's leader: the same record, never allowed to write; real time for its waits. */
  function follower(rig: Awaited<ReturnType<typeof setup>>, shards = 1) {
    const logs = captureLogs();
    const m = new ConduitManager({
      api: rig.stack.helix,
      stateDir: rig.config.stateDir,
      configuredId: undefined,
      shards,
      clock: systemClock,
      logger: logs.logger,
      mayWrite: () => false,
      followBackoff: { baseMs: 5, maxMs: 20 },
    });
    return { m, logs };
  }

  it('a follower calls no Helix and writes nothing: it waits for the record, then uses the leader\'s conduit; only the leader sets shard_count', async (t) => {
    const rig = await setup(t);
    const { m, logs } = follower(rig, 5);
    rig.emu.resetStats();
    const followed = m.ensure();
    await untilTurn(() => logs.records().some((r) => r.msg === 'Waiting for the leader to record the conduit to use'), 'the follower waiting');
    assert.deepEqual(conduitCalls(rig.emu), [], 'no Helix call while waiting');

    const id = await rig.manager({ shards: 3 }).ensure();
    assert.equal(await followed, id);
    assert.equal(m.conduitId, id);
    assert.deepEqual(conduitCalls(rig.emu), [`GET ${CONDUITS} 200`, `POST ${CONDUITS} 200`], 'the leader\'s calls only');
    assert.equal(await m.ensure(), id);
    assert.deepEqual(await rig.conduits(), [[id, 3]], 'the follower\'s 5 shards were not set');
  });

  it('a follower meeting the 404 waits for the leader\'s replacement and assigns onto it; another one moves by follow()', async (t) => {
    const rig = await setup(t);
    const leader = rig.manager({ shards: 2 });
    const old = await leader.ensure();
    const a = follower(rig);
    const b = follower(rig);
    assert.deepEqual([await a.m.ensure(), await b.m.ensure()], [old, old]);
    const moved: [string, string][] = [];
    a.m.onReplaced((n, o) => moved.push([n, o]));
    b.m.onReplaced((n, o) => moved.push([n, o]));
    const session = await openSession(t, rig.emu);
    await rig.stack.helix.deleteConduit(old);
    rig.emu.resetStats();

    const assigning = a.m.assignShard('1', session);
    await untilTurn(() => a.logs.records().some((r) => r.msg === 'Waiting for the leader to record the conduit to use'), 'the follower waiting for a replacement');
    assert.deepEqual(conduitCalls(rig.emu), [`PATCH ${CONDUITS}/shards 404`], 'the follower created nothing');
    assert.equal(await b.m.follow(), old, 'nothing recorded yet: b stays');

    const fresh = await leader.ensure();
    assert.notEqual(fresh, old);
    await assigning;
    assert.deepEqual(await rig.shards(fresh), [['0', 'websocket_disconnected', undefined], ['1', 'enabled', session]]);
    assert.equal(await b.m.follow(), fresh);
    assert.deepEqual(moved, [[fresh, old], [fresh, old]], 'each follower told once');
    assert.deepEqual(conduitCalls(rig.emu).filter((c) => c.startsWith('POST')), [`POST ${CONDUITS} 200`], 'one conduit created, by the leader');
  });
});
