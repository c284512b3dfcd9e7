import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catalogueEntries, isKnownType, lookupType } from '../../src/twitch/catalogue.js';
import { authorizationTable, needsAuthorization } from '../../src/twitch/scopes.js';

const key = (type: string, version: string) => `${type}@${version}`;

test('catalogue and scope table name the same types and versions', () => {
  const catalogue = new Set(catalogueEntries().map((c) => key(c.type, c.version)));
  const scopes = new Set(authorizationTable().map((t) => key(t.type, t.version)));
  assert.deepEqual([...scopes].filter((k) => !catalogue.has(k)), [], 'in the scope table, missing from the catalogue');
  assert.deepEqual([...catalogue].filter((k) => !scopes.has(k)), [], 'in the catalogue, missing from the scope table');
});

test("catalogue's requiresAuth agrees with the scope table (it decides the cost)", () => {
  const wrong = catalogueEntries()
    .filter((c) => c.requiresAuth !== needsAuthorization(c.type, c.version))
    .map((c) => key(c.type, c.version));
  assert.deepEqual(wrong, []);
});

test('catalogue knows the moderation, AutoMod and held-chat types of 2024-2025 with their conditions', () => {
  const moderator = [
    'channel.warning.send',
    'channel.warning.acknowledge',
    'automod.settings.update',
    'automod.terms.update',
    'channel.suspicious_user.update',
    'channel.suspicious_user.message',
    'channel.unban_request.create',
    'channel.unban_request.resolve',
  ];
  for (const type of moderator) {
    const entry = lookupType(type, '1');
    assert.ok(entry, `${type} v1 is known`);
    assert.deepEqual(entry.required, ['broadcaster_user_id', 'moderator_user_id'], type);
    assert.equal(entry.requiresAuth, true, type);
    assert.equal(lookupType(type, '2'), undefined, `${type} has no v2`);
  }
  for (const type of ['channel.chat.user_message_hold', 'channel.chat.user_message_update']) {
    assert.deepEqual(lookupType(type, '1')?.required, ['broadcaster_user_id', 'user_id'], type);
  }
  assert.equal(isKnownType('channel.custom_power_up_redemption.add'), true);
  assert.equal(isKnownType('channel.warning.sent'), false);
});
