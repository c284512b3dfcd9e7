/**
 * Crash safety end to end: many concurrent signed notifications, `kill -9` of the daemon mid-stream, a
 * restart on the same state directory. What was acknowledged must be on disk exactly once, and sending
 * everything again must journal only what is missing. EVENTSUBD_CRASH_N raises the number of messages.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { eventsTail, jsonLines, readJournal, useFixture } from './harness.js';
import { send } from './messages.js';

const N = Math.max(50, Number(process.env.EVENTSUBD_CRASH_N ?? 500) || 500);

test(`daemon crash: after kill -9 among ${N} concurrent notifications, every acknowledged id is journaled exactly once, and a resend journals only the rest`, async (t) => {
  const { f, start } = await useFixture(t, { subscriptions: [] });
  const first = await start();
  const ids = Array.from({ length: N }, (_, i) => `crash-${i}-${randomUUID()}`);
  const eventOf = (i: number) => ({ broadcaster_user_id: '12345', n: i });
  const killAt = Math.floor(N / 5);
  const acked = new Set<string>();
  let failed = 0;
  let killedAfter = -1;

  await Promise.all(
    ids.map(async (id, i) => {
      try {
        const res = await send(f, { messageId: id, event: eventOf(i) });
        if (res.status < 200 || res.status > 299) {
          failed += 1;
          return;
        }
        acked.add(id);
        if (acked.size === killAt) {
          killedAfter = acked.size;
          first.child.kill('SIGKILL'); // at once, from inside the stream of answers
        }
      } catch {
        failed += 1;
      }
    }),
  );
  await first.exited;
  assert.equal(killedAfter, killAt, 'the daemon was killed mid-stream');
  assert.ok(failed > 0, `some requests were cut off by the kill (acked ${acked.size} of ${N})`);
  assert.equal(acked.size + failed, N);

  // Straight from the files, before any recovery: acknowledged means on disk, once.
  const afterCrash = readJournal(f.stateDir);
  const count = new Map<string, number>();
  for (const r of afterCrash) count.set(r.message_id, (count.get(r.message_id) ?? 0) + 1);
  for (const id of acked) assert.equal(count.get(id), 1, `acknowledged ${id} is journaled once`);
  assert.ok([...count.values()].every((c) => c === 1), 'no id twice');
  assert.deepEqual(afterCrash.map((r) => r.seq), afterCrash.map((_, i) => i + 1), 'seq is 1..n without gaps');
  const known = new Set(ids);
  assert.ok(afterCrash.every((r) => known.has(r.message_id)));

  t.diagnostic(`acknowledged ${acked.size}, cut off ${failed}, on disk after the crash ${afterCrash.length}`);

  const second = await start();
  // Everything again, as Twitch retries what it did not see acknowledged (and may retry the rest too).
  const statuses = await Promise.all(ids.map(async (id, i) => (await send(f, { messageId: id, event: eventOf(i) })).status));
  assert.deepEqual(new Set(statuses), new Set([204]));

  const final = readJournal(f.stateDir);
  assert.equal(final.length, N, `${N} records (${afterCrash.length} before the restart, ${N - afterCrash.length} added)`);
  assert.deepEqual(new Set(final.map((r) => r.message_id)), known);
  assert.deepEqual(final.map((r) => r.seq), final.map((_, i) => i + 1));
  // Records written before the crash are untouched by the recovery and the resend.
  assert.deepEqual(final.slice(0, afterCrash.length), afterCrash);
  for (const r of final) assert.deepEqual(r.event, eventOf(ids.indexOf(r.message_id)));

  const tail = await eventsTail(f, ['--json', '--since', '0']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(jsonLines(tail.stdout).length, N);
  assert.equal(await second.stop('SIGTERM'), 0);
});
