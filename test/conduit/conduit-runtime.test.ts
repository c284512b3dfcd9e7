/**
 * The daemon's conduit runtime, in process: shards opened against a hand-written EventSub WebSocket server, their
 * messages through the receiver's intake into a real journal. The same notification on two shards is journaled
 * once; a journal append that fails is held and retried (Twitch will not send it again), never dropped; readiness
 * follows the shards' assignment; a conduit that cannot be used (ambiguous) is not retried.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConduitRuntime, type ConduitControl, type ShardOwnership, type ShardOwnershipEvents } from '../../src/conduit/conduit-runtime.js';
import { Journal } from '../../src/journal/journal.js';
import { systemClock } from '../../src/lib/clock.js';
import { AppError } from '../../src/lib/errors.js';
import { silentLogger } from '../../src/lib/logger.js';
import { Registry } from '../../src/lib/metrics.js';
import { Dedup } from '../../src/receiver/dedup.js';
import { Intake } from '../../src/receiver/intake.js';
import type { JournalEntry, JournalSink } from '../../src/receiver/types.js';
import { tempJournalDir } from '../journal/helpers.js';
import { untilTurn } from '../helpers/wait.js';
import { hostileServer, notificationFrame, send, welcomeFrame } from './helpers.js';

function control(over: Partial<ConduitControl> = {}): ConduitControl & { assignments: string[] } {
  const assignments: string[] = [];
  return {
    assignments,
    conduitId: 'c-1',
    ensure: async () => 'c-1',
    assignShard: async (shardId, sessionId) => void assignments.push(`${shardId}:${sessionId}`),
    onReplaced: () => undefined,
    ...over,
  };
}

test('the same notification on two shards is journaled once, with the shard it came on first; /status and /metrics per shard', async (t) => {
  const server = await hostileServer(t, (c) => send(c, welcomeFrame(`s-${server.conns.length}`)));
  const journal = await Journal.open({ dir: tempJournalDir(t), clock: systemClock });
  t.after(() => journal.close());
  const registry = new Registry();
  const conduits = control();
  const runtime = new ConduitRuntime({
    conduits,
    shards: 2,
    wsUrl: server.url,
    intake: new Intake({ journal, dedup: new Dedup({ clock: systemClock }), clock: systemClock }),
    clock: systemClock,
    logger: silentLogger,
    registry,
  });
  t.after(() => runtime.close());
  assert.equal(runtime.ready, false);
  assert.equal(await runtime.start(), 'c-1');
  await untilTurn(() => runtime.status().shards_assigned === 2, 'both shards assigned');
  assert.equal(runtime.ready, true);
  assert.deepEqual(conduits.assignments.sort(), ['0:s-1', '1:s-2'].sort());
  assert.equal(runtime.statusLine(), 'conduit 2/2 shards assigned');

  const [a, b] = [await server.conn(0), await server.conn(1)];
  send(a, notificationFrame('same-id', { n: 1 }));
  send(b, notificationFrame('same-id', { n: 1 }));
  send(b, notificationFrame('other-id', { n: 2 }));
  await untilTurn(() => runtime.status().shards.reduce((n, s) => n + s.messages, 0) === 3, 'three frames read');
  await untilTurn(() => journal.head === 2 && runtime.status().duplicates === 1, 'two records and one duplicate');
  const records = [];
  for await (const r of journal.range(0)) records.push(r);
  assert.deepEqual(records.map((r) => r.message_id).sort(), ['other-id', 'same-id']);
  for (const r of records) assert.equal(r.transport, 'conduit');
  // Connection n was welcomed as session s-(n+1): the shard assigned to s-2 is the one `b` serves.
  const shardOfB = conduits.assignments.find((x) => x.endsWith(':s-2'))?.split(':')[0];
  assert.equal(records.find((r) => r.message_id === 'other-id')?.shard, shardOfB);
  const text = registry.render();
  assert.match(text, /eventsubd_conduit_shard_assigned\{shard="0"\} 1/);
  assert.match(text, /eventsubd_conduit_shard_assigned\{shard="1"\} 1/);
  assert.match(text, /eventsubd_conduit_duplicates_total 1/);
  await runtime.close();
  assert.deepEqual(server.inbound(), [], 'the shards never sent a data frame');
  assert.equal(runtime.ready, false);
});

test('a journal append that fails is held and retried until it is on disk; close waits for it', async (t) => {
  const server = await hostileServer(t, (c) => send(c, welcomeFrame('s-1')));
  const stored: JournalEntry[] = [];
  let failures = 3;
  const sink: JournalSink = {
    append: async (e) => {
      if (failures > 0) {
        failures -= 1;
        throw new AppError('JOURNAL_UNWRITABLE', 'disk full');
      }
      stored.push(e);
      return { seq: stored.length };
    },
  };
  const runtime = new ConduitRuntime({
    conduits: control(),
    shards: 1,
    wsUrl: server.url,
    intake: new Intake({ journal: sink, dedup: new Dedup({ clock: systemClock }), clock: systemClock }),
    clock: systemClock,
    logger: silentLogger,
    backoff: { baseMs: 5, maxMs: 20 },
  });
  t.after(() => runtime.close());
  await runtime.start();
  await untilTurn(() => runtime.ready, 'the shard assigned');
  send(await server.conn(0), notificationFrame('held-1'));
  await untilTurn(() => runtime.status().pending_appends === 1 || stored.length === 1, 'the append failing and held');
  await runtime.close();
  assert.equal(failures, 0, 'retried through every failure');
  assert.deepEqual(stored.map((e) => e.message_id), ['held-1'], 'on disk once, after the retries');
  assert.equal(runtime.status().pending_appends, 0);
});

test('a conduit that needs the operator (CONDUIT_AMBIGUOUS) is not retried; one Twitch cannot be reached is', async (t) => {
  let calls = 0;
  const ambiguous = new ConduitRuntime({
    conduits: control({
      ensure: async () => {
        calls += 1;
        throw new AppError('CONDUIT_AMBIGUOUS', 'The client has 2 conduits and none is recorded: set EVENTSUBD_CONDUIT_ID');
      },
    }),
    shards: 1,
    wsUrl: 'ws://127.0.0.1:9/ws',
    intake: new Intake({ journal: { append: async () => ({ seq: 1 }) }, dedup: new Dedup({ clock: systemClock }), clock: systemClock }),
    clock: systemClock,
    logger: silentLogger,
    backoff: { baseMs: 1, maxMs: 2 },
  });
  await assert.rejects(ambiguous.start(), (err: AppError) => err.code === 'CONDUIT_AMBIGUOUS' && err.exitCode === 78);
  assert.equal(calls, 1);

  const server = await hostileServer(t, (c) => send(c, welcomeFrame('s-1')));
  let attempts = 0;
  const flaky = new ConduitRuntime({
    conduits: control({
      ensure: async () => {
        attempts += 1;
        if (attempts < 3) throw new AppError('TWITCH_UNREACHABLE', 'connect ECONNREFUSED');
        return 'c-9';
      },
    }),
    shards: 1,
    wsUrl: server.url,
    intake: new Intake({ journal: { append: async () => ({ seq: 1 }) }, dedup: new Dedup({ clock: systemClock }), clock: systemClock }),
    clock: systemClock,
    logger: silentLogger,
    backoff: { baseMs: 1, maxMs: 2 },
  });
  t.after(() => flaky.close());
  assert.equal(await flaky.start(), 'c-9');
  assert.equal(attempts, 3);
});

test('with a shard ownership: only the shards held are opened, a lost one is never PATCHed again, close() keeps a socket until another session holds its shard', async (t) => {
  const server = await hostileServer(t, (c) => send(c, welcomeFrame(`s-${server.conns.length}`)));
  const owned = new Set(['1', '3']);
  let events: ShardOwnershipEvents | undefined;
  const ownership: ShardOwnership = {
    start: () => owned.forEach((id) => events!.onAcquire(id, 7)),
    held: () => [...owned],
    owns: (id) => Promise.resolve(owned.has(id)),
    release: (id) => Promise.resolve(void owned.delete(id)),
    releaseAll: () => Promise.resolve(owned.clear()),
    close: () => Promise.resolve(),
  };
  /** Twitch's view: the session each enabled shard is on. */
  let atTwitch = new Map<string, string>();
  let polls = 0;
  const conduits = { ...control(), assignedSessions: () => Promise.resolve((polls++, atTwitch)) };
  const runtime = new ConduitRuntime({
    conduits,
    shards: 4,
    wsUrl: server.url,
    intake: new Intake({ journal: { append: async () => ({ seq: 1 }) }, dedup: new Dedup({ clock: systemClock }), clock: systemClock }),
    clock: systemClock,
    logger: silentLogger,
    ownership: (e) => ((events = e), ownership),
    shardOptions: { backoff: { baseMs: 5, maxMs: 10 } },
    handoverMs: 5_000,
    handoverPollMs: 5,
  });
  t.after(() => runtime.close());
  await runtime.start();
  await untilTurn(() => runtime.status().shards_assigned === 2, 'the two shards held assigned');
  assert.deepEqual(runtime.status().shards_held, ['1', '3']);
  assert.equal(runtime.status().shards_total, 4);
  assert.equal(runtime.statusLine(), 'conduit 2/2 shards assigned, 2 of 4 held');
  assert.equal(server.conns.length, 2, 'one socket per shard held');
  const sessionOf = (id: string): string => runtime.status().shards.find((s) => s.id === id)!.session_id!;
  atTwitch = new Map([['1', sessionOf('1')], ['3', 'another-replica']]);

  // Shard 3's lease is taken over; its socket drops and the next session is not assigned.
  owned.delete('3');
  // Connection n was welcomed as session s-(n+1).
  const conn3 = server.conns[Number(sessionOf('3').slice(2)) - 1]!;
  conn3.ws.close(4000);
  await untilTurn(() => !runtime.status().shards_held!.includes('3'), 'shard 3 given up');
  assert.equal(conduits.assignments.filter((a) => a.startsWith('3:')).length, 1, 'shard 3 PATCHed once, before the takeover');

  const conn1 = server.conns[Number(sessionOf('1').slice(2)) - 1]!;
  let closed = false;
  const closing = runtime.close().then(() => (closed = true));
  await untilTurn(() => owned.size === 0, 'the leases released');
  const from = polls;
  await untilTurn(() => polls >= from + 3, 'the shard list read three more times');
  assert.equal(closed, false, 'shard 1 is still ours at Twitch: its socket stays open');
  assert.equal(conn1.closedWith, undefined);
  atTwitch = new Map([['1', 'another-replica']]);
  await closing;
  assert.equal(await conn1.closed, 1000, 'closed once another session held its shard');
  assert.deepEqual(server.inbound(), [], 'no data frame sent');
});
