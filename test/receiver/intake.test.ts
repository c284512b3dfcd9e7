/**
 * The intake shared by the webhook receiver and the conduit's shards: one append per message id, however many
 * arrive at once (a redelivery racing the first delivery, the same notification on two shards), seen only once
 * on disk, callbacks once per new message.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dedup } from '../../src/receiver/dedup.js';
import { Intake } from '../../src/receiver/intake.js';
import type { JournalEntry, ReceivedSubscription } from '../../src/receiver/types.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { untilTurn } from '../helpers/wait.js';
import { FakeJournal } from './helpers.js';

const SUB = { id: 'sub-1', type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1' } };

function entry(id: string, over: Partial<JournalEntry> = {}): JournalEntry {
  return { message_id: id, message_type: 'notification', received_at: '2026-12-05T10:00:00.000Z', transport: 'conduit', shard: '0', subscription: SUB, event: { n: id }, ...over };
}

function setup() {
  const clock = new FakeClock(Date.parse('2026-12-05T10:00:00Z'));
  const journal = new FakeJournal();
  const notified: string[] = [];
  const revoked: ReceivedSubscription[] = [];
  const intake = new Intake({
    journal,
    dedup: new Dedup({ clock }),
    clock,
    onNotification: (_sub, event) => notified.push(JSON.stringify(event())),
    onRevocation: (sub) => revoked.push(sub),
  });
  return { journal, intake, notified, revoked };
}

test('the same message id arriving on two shards at once is appended once; the second is a duplicate', async () => {
  const { journal, intake, notified } = setup();
  const release = journal.hold();
  const a = intake.store(entry('m-1', { shard: '0' }));
  const b = intake.store(entry('m-1', { shard: '3' }));
  await untilTurn(() => journal.waiting === 1, 'the first append to be in flight');
  assert.equal(intake.pending, 1);
  release();
  assert.deepEqual(await Promise.all([a, b]), ['stored', 'duplicate']);
  assert.equal(journal.entries.length, 1);
  assert.equal(journal.entries[0]?.shard, '0');
  assert.equal(await intake.store(entry('m-1')), 'duplicate', 'seen once on disk: later copies are duplicates');
  assert.equal(journal.calls, 1);
  assert.deepEqual(notified, ['{"n":"m-1"}'], 'the callback ran once');
});

test('a failed append is not marked seen: the next copy (or a retry) is appended', async () => {
  const { journal, intake, notified } = setup();
  journal.failing = true;
  const [a, b] = await Promise.all([intake.store(entry('m-2')), intake.store(entry('m-2'))]);
  assert.deepEqual([a, b], ['failed', 'failed'], 'a copy that waited on the failed append fails too');
  assert.deepEqual(notified, []);
  journal.failing = false;
  assert.equal(await intake.store(entry('m-2')), 'stored');
  assert.equal(journal.entries.length, 1);
  assert.deepEqual(notified, ['{"n":"m-2"}']);
});

test('a revocation calls onRevocation, not onNotification; a throwing callback does not fail the store', async () => {
  const clock = new FakeClock(0);
  const journal = new FakeJournal();
  const intake = new Intake({
    journal,
    dedup: new Dedup({ clock }),
    clock,
    onNotification: () => {
      throw new Error('boom');
    },
    onRevocation: () => {
      throw new Error('boom');
    },
  });
  assert.equal(await intake.store(entry('r-1', { message_type: 'revocation', event: undefined })), 'stored');
  assert.equal(await intake.store(entry('n-1')), 'stored');
  assert.equal(journal.entries.length, 2);
});
