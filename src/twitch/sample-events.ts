/**
 * Realistic event payloads for the common subscription types (https://dev.twitch.tv/docs/eventsub/eventsub-subscription-types/,
 * https://dev.twitch.tv/docs/eventsub/eventsub-reference/), used by
 * `eventsubd trigger` and the emulator to send test notifications the way Twitch does. Field names follow
 * Twitch's EventSub reference; values are fixed-looking but unique where Twitch's are (ids, timestamps).
 */
import { randomInt, randomUUID } from 'node:crypto';

export interface SampleContext {
  broadcasterId: string;
  userId: string;
  now: Date;
}

interface SampleType {
  version: string;
  condition: (c: SampleContext) => Record<string, string>;
  event: (c: SampleContext) => Record<string, unknown>;
}

const broadcaster = (c: SampleContext) => ({
  broadcaster_user_id: c.broadcasterId,
  broadcaster_user_login: 'cool_broadcaster',
  broadcaster_user_name: 'Cool_Broadcaster',
});
const user = (c: SampleContext) => ({ user_id: c.userId, user_login: 'cool_user', user_name: 'Cool_User' });
const byBroadcaster = (c: SampleContext) => ({ broadcaster_user_id: c.broadcasterId });
const withModerator = (c: SampleContext) => ({ broadcaster_user_id: c.broadcasterId, moderator_user_id: c.broadcasterId });
const iso = (c: SampleContext, offsetMs = 0) => new Date(c.now.getTime() + offsetMs).toISOString();

export const SAMPLE_TYPES: Readonly<Record<string, SampleType>> = Object.freeze({
  'stream.online': {
    version: '1',
    condition: byBroadcaster,
    event: (c) => ({ id: String(randomInt(1_000_000_000, 9_999_999_999)), ...broadcaster(c), type: 'live', started_at: iso(c) }),
  },
  'stream.offline': { version: '1', condition: byBroadcaster, event: (c) => ({ ...broadcaster(c) }) },
  'channel.update': {
    version: '2',
    condition: byBroadcaster,
    event: (c) => ({
      ...broadcaster(c),
      title: 'Best Stream Ever',
      language: 'en',
      category_id: '12453',
      category_name: 'Grand Theft Auto',
      content_classification_labels: ['MatureGame'],
    }),
  },
  'channel.follow': {
    version: '2',
    condition: withModerator,
    event: (c) => ({ ...user(c), ...broadcaster(c), followed_at: iso(c) }),
  },
  'channel.subscribe': {
    version: '1',
    condition: byBroadcaster,
    event: (c) => ({ ...user(c), ...broadcaster(c), tier: '1000', is_gift: false }),
  },
  'channel.cheer': {
    version: '1',
    condition: byBroadcaster,
    event: (c) => ({ is_anonymous: false, ...user(c), ...broadcaster(c), message: 'pogchamp', bits: 1000 }),
  },
  'channel.raid': {
    version: '1',
    condition: (c) => ({ to_broadcaster_user_id: c.broadcasterId }),
    event: (c) => ({
      from_broadcaster_user_id: c.userId,
      from_broadcaster_user_login: 'cool_user',
      from_broadcaster_user_name: 'Cool_User',
      to_broadcaster_user_id: c.broadcasterId,
      to_broadcaster_user_login: 'cool_broadcaster',
      to_broadcaster_user_name: 'Cool_Broadcaster',
      viewers: 9001,
    }),
  },
  'channel.ban': {
    version: '1',
    condition: byBroadcaster,
    event: (c) => ({
      ...user(c),
      ...broadcaster(c),
      moderator_user_id: c.broadcasterId,
      moderator_user_login: 'cool_broadcaster',
      moderator_user_name: 'Cool_Broadcaster',
      reason: 'Offensive language',
      banned_at: iso(c),
      ends_at: iso(c, 600_000),
      is_permanent: false,
    }),
  },
  'channel.channel_points_custom_reward_redemption.add': {
    version: '1',
    condition: byBroadcaster,
    event: (c) => ({
      id: randomUUID(),
      ...broadcaster(c),
      ...user(c),
      user_input: 'pogchamp',
      status: 'unfulfilled',
      reward: { id: '92af127c-7326-4483-a52b-b0da0be61c01', title: 'title', cost: 100, prompt: 'reward prompt' },
      redeemed_at: iso(c),
    }),
  },
  'channel.chat.message': {
    version: '1',
    condition: (c) => ({ broadcaster_user_id: c.broadcasterId, user_id: c.userId }),
    event: (c) => ({
      ...broadcaster(c),
      chatter_user_id: c.userId,
      chatter_user_login: 'cool_user',
      chatter_user_name: 'Cool_User',
      message_id: randomUUID(),
      message: { text: 'Hi chat', fragments: [{ type: 'text', text: 'Hi chat', cheermote: null, emote: null, mention: null }] },
      color: '#00FF7F',
      badges: [],
      message_type: 'text',
      cheer: null,
      reply: null,
      channel_points_custom_reward_id: null,
    }),
  },
  'channel.poll.begin': {
    version: '1',
    condition: byBroadcaster,
    event: (c) => ({
      id: randomUUID(),
      ...broadcaster(c),
      title: 'Aren’t shoes just really hard socks?',
      choices: [
        { id: '123', title: 'Yeah!' },
        { id: '124', title: 'No!' },
      ],
      bits_voting: { is_enabled: false, amount_per_vote: 0 },
      channel_points_voting: { is_enabled: true, amount_per_vote: 10 },
      started_at: iso(c),
      ends_at: iso(c, 60_000),
    }),
  },
  'channel.hype_train.begin': {
    version: '2',
    condition: byBroadcaster,
    event: (c) => ({
      id: randomUUID(),
      ...broadcaster(c),
      total: 137,
      progress: 137,
      goal: 500,
      top_contributions: [{ ...user(c), type: 'bits', total: 50 }],
      level: 1,
      all_time_high_level: 4,
      all_time_high_total: 2845,
      started_at: iso(c),
      expires_at: iso(c, 300_000),
      type: 'regular',
      is_shared_train: false,
    }),
  },
  'user.update': {
    version: '1',
    condition: (c) => ({ user_id: c.userId }),
    event: (c) => ({ ...user(c), email_verified: true, description: 'cool description' }),
  },
  'user.authorization.revoke': {
    version: '1',
    condition: () => ({ client_id: 'crq72vsaoijkc83xx42hz6i37' }),
    event: (c) => ({ client_id: 'crq72vsaoijkc83xx42hz6i37', user_id: c.userId, user_login: null, user_name: null }),
  },
});

export function sampleTypeNames(): string[] {
  return Object.keys(SAMPLE_TYPES).sort();
}

/** The subscription object and event for a type, as Twitch puts them in a webhook body. */
export function sampleMessage(
  type: string,
  c: SampleContext & { subscriptionId?: string; status?: string; callback?: string },
): { subscription: Record<string, unknown>; event: Record<string, unknown> } | undefined {
  const t = SAMPLE_TYPES[type];
  if (!t) return undefined;
  return {
    subscription: {
      id: c.subscriptionId ?? randomUUID(),
      status: c.status ?? 'enabled',
      type,
      version: t.version,
      cost: 0,
      condition: t.condition(c),
      transport: { method: 'webhook', callback: c.callback ?? 'https://example.com/webhooks/callback' },
      created_at: iso(c, -3_600_000),
    },
    event: t.event(c),
  };
}
