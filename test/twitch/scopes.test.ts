import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EVENT_EXAMPLES, eventExample } from '../../src/twitch/event-examples.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { authorizationFor, authorizationTable, missingGrants, needsAuthorization } from '../../src/twitch/scopes.js';
import { ROOT } from '../helpers/cli.js';
import { scopeTableMarkdown } from '../helpers/scope-table.js';

const key = (type: string, version: string) => `${type}@${version}`;
const grants = (byUser: Record<string, string[]>) => (userId: string) =>
  byUser[userId] === undefined ? undefined : new Set(byUser[userId]);

test('authorizationTable has an entry for every type and version with an example', () => {
  const missing = EVENT_EXAMPLES.filter((e) => authorizationFor(e.type, e.version) === undefined).map((e) => key(e.type, e.version));
  assert.deepEqual(missing, []);
  const unknown = authorizationTable()
    .filter((t) => eventExample(t.type, t.version) === undefined)
    .map((t) => key(t.type, t.version));
  assert.deepEqual(unknown, [], 'every entry is a type and version with an example');
});

test('authorizationTable names no type and version twice', () => {
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const t of authorizationTable()) {
    const k = key(t.type, t.version);
    if (seen.has(k)) duplicates.push(k);
    seen.add(k);
  }
  assert.deepEqual(duplicates, []);
});

test('authorizationTable entries are well formed', () => {
  for (const t of authorizationTable()) {
    const k = key(t.type, t.version);
    const example = eventExample(t.type, t.version);
    assert.ok(example, `${k}: has an example`);
    assert.ok(t.docs.startsWith('https://dev.twitch.tv/docs/'), `${k}: docs URL ${t.docs}`);
    assert.match(t.docs, /#[a-z0-9-]+$/, `${k}: docs URL names a section`);
    for (const req of t.requirements) {
      assert.ok(req.user in example.condition, `${k}: ${req.user} is a condition field`);
      assert.ok(req.groups.length > 0, `${k}: ${req.user} has groups`);
      for (const group of req.groups) {
        assert.ok(group.length > 0, `${k}: no empty group`);
        assert.equal(new Set(group).size, group.length, `${k}: no scope twice in a group`);
        for (const scope of group) assert.match(scope, /^[a-z_]+(:[a-z_]+)+$/, `${k}: scope ${scope}`);
      }
    }
    assert.equal(new Set(t.requirements.map((r) => r.user)).size, t.requirements.length, `${k}: one requirement per user`);
  }
});

test('authorizationTable puts the read scope before the manage scope of a group', () => {
  for (const t of authorizationTable()) {
    for (const req of t.requirements) {
      for (const group of req.groups) {
        const read = group.findIndex((s) => s.includes(':read:'));
        const manage = group.findIndex((s) => s.includes(':manage:'));
        if (read >= 0 && manage >= 0) assert.ok(read < manage, `${key(t.type, t.version)}: ${group.join(' | ')}`);
      }
    }
  }
});

/** The rows of twitch-contract.md 12.7: [type, version, { user field: groups }]; {} = none. */
const CONTRACT: ReadonlyArray<readonly [string, string, Readonly<Record<string, string[][]>>]> = [
  ['channel.follow', '2', { moderator_user_id: [['moderator:read:followers']] }],
  ['channel.subscribe', '1', { broadcaster_user_id: [['channel:read:subscriptions']] }],
  ['channel.subscription.gift', '1', { broadcaster_user_id: [['channel:read:subscriptions']] }],
  ['channel.subscription.message', '1', { broadcaster_user_id: [['channel:read:subscriptions']] }],
  ['channel.cheer', '1', { broadcaster_user_id: [['bits:read']] }],
  ['channel.raid', '1', {}],
  ['channel.ban', '1', { broadcaster_user_id: [['channel:moderate']] }],
  ['channel.moderator.add', '1', { broadcaster_user_id: [['moderation:read']] }],
  [
    'channel.channel_points_custom_reward_redemption.add',
    '1',
    { broadcaster_user_id: [['channel:read:redemptions', 'channel:manage:redemptions']] },
  ],
  ['channel.poll.begin', '1', { broadcaster_user_id: [['channel:read:polls', 'channel:manage:polls']] }],
  ['channel.prediction.begin', '1', { broadcaster_user_id: [['channel:read:predictions', 'channel:manage:predictions']] }],
  ['channel.hype_train.begin', '2', { broadcaster_user_id: [['channel:read:hype_train']] }],
  ['channel.chat.message', '1', { user_id: [['user:read:chat'], ['user:bot']], broadcaster_user_id: [['channel:bot']] }],
  ['channel.chat.notification', '1', { user_id: [['user:read:chat'], ['user:bot']], broadcaster_user_id: [['channel:bot']] }],
  ['channel.update', '2', {}],
  ['stream.online', '1', {}],
  ['stream.offline', '1', {}],
  ['user.update', '1', {}],
  ['channel.ad_break.begin', '1', { broadcaster_user_id: [['channel:read:ads']] }],
  ['channel.shoutout.create', '1', { moderator_user_id: [['moderator:read:shoutouts', 'moderator:manage:shoutouts']] }],
  ['channel.charity_campaign.donate', '1', { broadcaster_user_id: [['channel:read:charity']] }],
  ['channel.goal.begin', '1', { broadcaster_user_id: [['channel:read:goals']] }],
  ['channel.vip.add', '1', { broadcaster_user_id: [['channel:read:vips', 'channel:manage:vips']] }],
  [
    'channel.moderate',
    '2',
    {
      moderator_user_id: [
        ['moderator:read:blocked_terms', 'moderator:manage:blocked_terms'],
        ['moderator:read:chat_settings', 'moderator:manage:chat_settings'],
        ['moderator:read:unban_requests', 'moderator:manage:unban_requests'],
        ['moderator:read:banned_users', 'moderator:manage:banned_users'],
        ['moderator:read:chat_messages', 'moderator:manage:chat_messages'],
        ['moderator:read:warnings', 'moderator:manage:warnings'],
        ['moderator:read:moderators'],
        ['moderator:read:vips'],
      ],
    },
  ],
  ['user.authorization.grant', '1', {}],
  ['user.authorization.revoke', '1', {}],
];

for (const [type, version, expected] of CONTRACT) {
  test(`authorizationFor(${type}, ${version}) agrees with the contract`, () => {
    const entry = authorizationFor(type, version);
    assert.ok(entry, 'known');
    const actual = Object.fromEntries(entry.requirements.map((r) => [r.user, r.groups]));
    assert.deepEqual(actual, expected);
    assert.equal(needsAuthorization(type, version), Object.keys(expected).length > 0);
  });
}

test('authorizationFor: channel.moderate v1 lacks the warnings v2 adds', () => {
  const v1 = authorizationFor('channel.moderate', '1')!.requirements[0]!.groups.flat();
  const v2 = authorizationFor('channel.moderate', '2')!.requirements[0]!.groups.flat();
  assert.deepEqual(
    v2.filter((s) => !v1.includes(s)),
    ['moderator:read:warnings', 'moderator:manage:warnings'],
  );
  assert.equal(authorizationFor('channel.moderate', '1')!.requirements[0]!.groups.length, 7);
});

test('authorizationFor: held chat messages need nothing from the broadcaster', () => {
  for (const type of ['channel.chat.user_message_hold', 'channel.chat.user_message_update']) {
    assert.deepEqual(
      authorizationFor(type, '1')!.requirements.map((r) => r.user),
      ['user_id'],
    );
  }
});

test('authorizationFor: undefined for an unknown type or version', () => {
  assert.equal(authorizationFor('channel.follow', '1'), undefined);
  assert.equal(authorizationFor('channel.nonsense', '1'), undefined);
  assert.equal(needsAuthorization('channel.nonsense', '1'), false);
});

const B = '70885244';
const M = '62039911';
const BOT = '93310562';

test('missingGrants: nothing is missing when the user granted the scope', () => {
  const sub = { type: 'channel.subscribe', version: '1', condition: { broadcaster_user_id: B } };
  assert.deepEqual(missingGrants(sub, grants({ [B]: ['channel:read:subscriptions', 'bits:read'] })), []);
});

test('missingGrants: a user who granted nothing is asked for the first scope of each group', () => {
  const sub = { type: 'channel.poll.begin', version: '1', condition: { broadcaster_user_id: B } };
  assert.deepEqual(missingGrants(sub, grants({})), [{ userId: B, field: 'broadcaster_user_id', scopes: ['channel:read:polls'] }]);
});

test('missingGrants: an "or" group is met by its second scope', () => {
  const sub = { type: 'channel.shield_mode.begin', version: '1', condition: { broadcaster_user_id: B, moderator_user_id: M } };
  assert.deepEqual(missingGrants(sub, grants({ [M]: ['moderator:manage:shield_mode'] })), []);
});

test('missingGrants: only the unmet groups are asked', () => {
  const sub = { type: 'channel.moderate', version: '2', condition: { broadcaster_user_id: B, moderator_user_id: M } };
  const granted = grants({
    [M]: [
      'moderator:manage:blocked_terms',
      'moderator:read:chat_settings',
      'moderator:manage:unban_requests',
      'moderator:manage:banned_users',
      'moderator:read:chat_messages',
      'moderator:read:moderators',
    ],
  });
  assert.deepEqual(missingGrants(sub, granted), [
    { userId: M, field: 'moderator_user_id', scopes: ['moderator:read:warnings', 'moderator:read:vips'] },
  ]);
});

test('missingGrants: the moderator, not the broadcaster, must grant a moderator type', () => {
  const sub = { type: 'channel.follow', version: '2', condition: { broadcaster_user_id: B, moderator_user_id: M } };
  assert.deepEqual(missingGrants(sub, grants({ [B]: ['moderator:read:followers'] })), [
    { userId: M, field: 'moderator_user_id', scopes: ['moderator:read:followers'] },
  ]);
});

test('missingGrants: chat asks the chatting user and the broadcaster', () => {
  const sub = { type: 'channel.chat.message', version: '1', condition: { broadcaster_user_id: B, user_id: BOT } };
  assert.deepEqual(missingGrants(sub, grants({})), [
    { userId: BOT, field: 'user_id', scopes: ['user:read:chat', 'user:bot'] },
    { userId: B, field: 'broadcaster_user_id', scopes: ['channel:bot'] },
  ]);
  assert.deepEqual(missingGrants(sub, grants({ [BOT]: ['user:read:chat', 'user:bot'] })), [
    { userId: B, field: 'broadcaster_user_id', scopes: ['channel:bot'] },
  ]);
  assert.deepEqual(missingGrants(sub, grants({ [BOT]: ['user:read:chat', 'user:bot'], [B]: ['channel:bot'] })), []);
});

test('missingGrants: one user named by two fields gets one merged entry', () => {
  const sub = { type: 'channel.chat.message', version: '1', condition: { broadcaster_user_id: B, user_id: B } };
  assert.deepEqual(missingGrants(sub, grants({})), [{ userId: B, field: 'user_id', scopes: ['user:read:chat', 'user:bot', 'channel:bot'] }]);
  assert.deepEqual(missingGrants(sub, grants({ [B]: ['user:read:chat'] })), [
    { userId: B, field: 'user_id', scopes: ['user:bot', 'channel:bot'] },
  ]);
});

test('missingGrants: a type needing no authorization misses nothing', () => {
  const sub = { type: 'stream.online', version: '1', condition: { broadcaster_user_id: B } };
  assert.deepEqual(missingGrants(sub, grants({})), []);
});

test('missingGrants: a type the table does not know gives nothing (Twitch will say)', () => {
  const sub = { type: 'channel.nonsense', version: '1', condition: { broadcaster_user_id: B } };
  assert.deepEqual(missingGrants(sub, grants({})), []);
});

test('missingGrants: every example subscription is satisfied by granting every first scope', () => {
  for (const e of EVENT_EXAMPLES) {
    const entry = authorizationFor(e.type, e.version)!;
    const byUser: Record<string, string[]> = {};
    for (const req of entry.requirements) {
      const id = e.condition[req.user]!;
      byUser[id] = [...(byUser[id] ?? []), ...req.groups.map((g) => g[0]!)];
    }
    assert.deepEqual(missingGrants(e, grants(byUser)), [], key(e.type, e.version));
  }
});

test("README's table of scopes per type is the catalogue's (npx tsx test/helpers/scope-table.ts prints it)", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^### Scopes per type$/m)[1]?.split(/^#{2,3} /m)[0];
  assert.ok(section, 'README.md has a "### Scopes per type" section');
  const table = section.split('\n').filter((l) => l.startsWith('|'));
  assert.deepEqual(table, scopeTableMarkdown());
});
