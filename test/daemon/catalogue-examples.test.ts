/**
 * Issue #10.1: every message with a new message id is data. For each type and version of the catalogue,
 * Twitch's example event (src/twitch/event-examples.ts) is delivered three times under new message ids, as
 * updates of one entity are (a poll's progress, a reward's update: one event `id`, new messages); then one
 * of them is redelivered under its own id. Each new id is journaled and forwarded exactly once; the
 * redelivery neither.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catalogueEntries } from '../../src/twitch/catalogue.js';
import { eventExample } from '../../src/twitch/event-examples.js';
import { readJournal } from './harness.js';
import { ForwardSink, startInProcessDaemon } from './in-process.js';

test('daemon journals and forwards once every new message id of every catalogue type, updates of one entity included', async (t) => {
  const sink = new ForwardSink();
  t.after(() => new Promise<void>((resolve) => sink.server.close(() => resolve())));
  const { deliver, stateDir } = await startInProcessDaemon(t, { EVENTSUBD_FORWARD_URL: await sink.listen() });
  const sent: string[] = [];
  for (const entry of catalogueEntries()) {
    const example = eventExample(entry.type, entry.version);
    assert.ok(example, `${entry.type}@${entry.version} has an example`);
    const subscription = {
      id: `sub-${entry.type}-${entry.version}`,
      status: 'enabled',
      type: entry.type,
      version: entry.version,
      cost: 0,
      condition: example.condition,
      transport: { method: 'webhook', callback: 'https://events.example.com/twitch/eventsub' },
      created_at: '2026-12-04T10:00:00.000Z',
    };
    for (let update = 1; update <= 3; update++) {
      const messageId = `${entry.type}@${entry.version}#${update}`;
      const payload: Record<string, unknown> = example.events
        ? { subscription, events: example.events.map((e) => ({ ...e, update })) }
        : { subscription, event: { ...example.event, update } };
      assert.equal(await deliver(JSON.stringify(payload), { messageId }), 204, messageId);
      sent.push(messageId);
    }
    const again = JSON.stringify(example.events ? { subscription, events: example.events } : { subscription, event: example.event });
    assert.equal(await deliver(again, { messageId: `${entry.type}@${entry.version}#2` }), 204);
  }
  assert.equal(sent.length, catalogueEntries().length * 3);
  const journaled = readJournal(stateDir);
  assert.deepEqual(journaled.map((r) => r.message_id), sent, 'each new message id journaled once, in order');
  assert.deepEqual(journaled.map((r) => r.seq), sent.map((_, i) => i + 1));
  // The updates keep their own event: nothing of a later update was mistaken for the first.
  for (const r of journaled) {
    const update = Number(r.message_id.split('#')[1]);
    const events = r.events ?? [r.event];
    assert.ok(events.every((e) => (e as { update: number }).update === update), r.message_id);
  }
  await sink.received(sent.length);
  assert.deepEqual(sink.records().map((r) => r.message_id), sent, 'each new message id forwarded once, in order');
  t.diagnostic(`${catalogueEntries().length} types and versions, ${sent.length} notifications (3 per entity) and ${catalogueEntries().length} redeliveries: journaled ${journaled.length}, forwarded ${sink.bodies.length}`);
});
