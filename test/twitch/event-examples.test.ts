import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catalogueEntries } from '../../src/twitch/catalogue.js';
import { EVENT_EXAMPLES, eventExample } from '../../src/twitch/event-examples.js';

const key = (type: string, version: string) => `${type}@${version}`;

test('every catalogue type and version has an example', () => {
  const missing = catalogueEntries()
    .filter((c) => eventExample(c.type, c.version) === undefined)
    .map((c) => key(c.type, c.version));
  assert.deepEqual(missing, []);
});

test('no type and version has two examples', () => {
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const e of EVENT_EXAMPLES) {
    const k = key(e.type, e.version);
    if (seen.has(k)) duplicates.push(k);
    seen.add(k);
  }
  assert.deepEqual(duplicates, []);
});

test('each example is well formed', () => {
  for (const e of EVENT_EXAMPLES) {
    const k = key(e.type, e.version);
    assert.equal((e.event === undefined) !== (e.events === undefined), true, `${k}: exactly one of event/events`);
    if (e.events !== undefined) {
      assert.ok(e.events.length > 0, `${k}: events is not empty`);
      for (const item of e.events) assert.equal(typeof item, 'object', `${k}: events holds objects`);
    }
    const entries = Object.entries(e.condition);
    assert.ok(entries.length > 0, `${k}: has a condition`);
    for (const [field, value] of entries) {
      assert.equal(typeof value, 'string', `${k}: condition.${field} is a string`);
      assert.ok(value.length > 0, `${k}: condition.${field} is not empty`);
    }
    assert.ok(e.docs.startsWith('https://dev.twitch.tv/docs/'), `${k}: docs URL ${e.docs}`);
    assert.ok(e.source === 'example' || e.source === 'fields', `${k}: source`);
  }
});

test('only drop.entitlement.grant is batched, with id and data per item', () => {
  const batched = EVENT_EXAMPLES.filter((e) => e.events !== undefined).map((e) => key(e.type, e.version));
  assert.deepEqual(batched, ['drop.entitlement.grant@1']);
  for (const item of eventExample('drop.entitlement.grant', '1')?.events ?? []) {
    assert.equal(typeof item.id, 'string');
    assert.equal(typeof item.data, 'object');
  }
});

test("each catalogue entry's example condition satisfies the catalogue's condition rules", () => {
  for (const c of catalogueEntries()) {
    const k = key(c.type, c.version);
    const example = eventExample(c.type, c.version);
    assert.ok(example, `${k}: has an example`);
    const fields = Object.keys(example.condition);
    for (const field of c.required) assert.ok(fields.includes(field), `${k}: condition has required ${field}`);
    if (c.exactlyOneOf.length > 0) {
      const present = c.exactlyOneOf.filter((f) => fields.includes(f));
      assert.equal(present.length, 1, `${k}: exactly one of ${c.exactlyOneOf.join(', ')} (has ${present.join(', ')})`);
    }
    const known = new Set([...c.required, ...c.optional, ...c.exactlyOneOf]);
    for (const field of fields) assert.ok(known.has(field), `${k}: condition field ${field} is known to the catalogue`);
  }
});

test('eventExample finds by type and version', () => {
  assert.equal(eventExample('channel.follow', '2')?.type, 'channel.follow');
  assert.equal(eventExample('channel.follow', '1'), undefined);
  assert.equal(eventExample('no.such.type', '1'), undefined);
});

test('channel.chat.message carries the shared-chat fields of the docs example', () => {
  const event = eventExample('channel.chat.message', '1')?.event ?? {};
  for (const field of [
    'source_broadcaster_user_id',
    'source_broadcaster_user_login',
    'source_broadcaster_user_name',
    'source_message_id',
    'source_badges',
    'is_source_only',
    'channel_points_animation_id',
  ]) {
    assert.ok(field in event, `channel.chat.message has ${field}`);
  }
});

test('hype train v2 examples carry the v2 fields (shared trains, type)', () => {
  for (const type of ['channel.hype_train.begin', 'channel.hype_train.progress', 'channel.hype_train.end']) {
    const event = eventExample(type, '2')?.event ?? {};
    for (const field of ['shared_train_participants', 'is_shared_train', 'type', 'top_contributions', 'level', 'total']) {
      assert.ok(field in event, `${type} v2 has ${field}`);
    }
  }
  const begin = eventExample('channel.hype_train.begin', '2')?.event ?? {};
  for (const field of ['all_time_high_level', 'all_time_high_total', 'progress', 'goal', 'expires_at']) assert.ok(field in begin, `begin has ${field}`);
});
