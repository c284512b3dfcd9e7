/**
 * Who must have authorized the app, with which scopes, before Twitch creates a subscription of a type with
 * an app token (webhook and conduit transports). Each type's "Authorization" section in Twitch's EventSub
 * reference (https://dev.twitch.tv/docs/eventsub/reference/, formerly one page,
 * https://dev.twitch.tv/docs/eventsub/eventsub-subscription-types/) names the scopes and the user of the
 * condition who must have granted them; without that grant Create EventSub Subscription answers 403
 * `subscription missing proper authorization`
 * (https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription).
 *
 * The emulator enforces this table, `eventsubd authorize` asks for what it lists, and sync reports what is
 * missing: one table for all three.
 */

/** One user's part: every group must be met, and one scope of a group meets it (`[a, b]` = a or b). */
export interface ScopeRequirement {
  /** The condition field naming the user who must have granted the scopes. */
  readonly user: string;
  readonly groups: ReadonlyArray<ReadonlyArray<string>>;
}

export interface TypeAuthorization {
  readonly type: string;
  readonly version: string;
  /** Empty: the type needs no user's authorization (an app token alone creates it). */
  readonly requirements: readonly ScopeRequirement[];
  /** The Twitch docs section that states it. */
  readonly docs: string;
}

const REF = 'https://dev.twitch.tv/docs/eventsub/reference';

type Groups = ReadonlyArray<ReadonlyArray<string>>;

const broadcaster = (...groups: Groups): ScopeRequirement[] => [{ user: 'broadcaster_user_id', groups }];
const moderator = (...groups: Groups): ScopeRequirement[] => [{ user: 'moderator_user_id', groups }];
const user = (...groups: Groups): ScopeRequirement[] => [{ user: 'user_id', groups }];
/**
 * Chat types read with an app token ("cloud chatbot"): the chatting user (`user_id`) grants `user:read:chat`
 * and `user:bot`; the broadcaster grants `channel:bot`. Twitch also accepts the chatting user being a
 * moderator of the channel instead of `channel:bot`, which a grant table cannot know, so `channel:bot` is
 * required. `user_message_hold`/`user_message_update` ask nothing of the broadcaster (`withChannelBot` false).
 */
const chat = (withChannelBot = true): ScopeRequirement[] => [
  { user: 'user_id', groups: [['user:read:chat'], ['user:bot']] },
  ...(withChannelBot ? broadcaster(['channel:bot']) : []),
];
const none: readonly ScopeRequirement[] = [];

/** One row: `page#anchor` under the reference, as the docs name the section. */
const row = (type: string, version: string, requirements: readonly ScopeRequirement[], section: string): TypeAuthorization => ({
  type,
  version,
  requirements,
  docs: `${REF}/${section}`,
});

const REDEMPTIONS = ['channel:read:redemptions', 'channel:manage:redemptions'];
const POLLS = ['channel:read:polls', 'channel:manage:polls'];
const PREDICTIONS = ['channel:read:predictions', 'channel:manage:predictions'];
const VIPS = ['channel:read:vips', 'channel:manage:vips'];
const GUEST_STAR = ['channel:read:guest_star', 'channel:manage:guest_star', 'moderator:read:guest_star', 'moderator:manage:guest_star'];
const SHIELD_MODE = ['moderator:read:shield_mode', 'moderator:manage:shield_mode'];
const SHOUTOUTS = ['moderator:read:shoutouts', 'moderator:manage:shoutouts'];
const UNBAN_REQUESTS = ['moderator:read:unban_requests', 'moderator:manage:unban_requests'];
const WARNINGS = ['moderator:read:warnings', 'moderator:manage:warnings'];
/** `channel.moderate` v1: every group, each met by the read or the manage scope. */
const MODERATE_V1: Groups = [
  ['moderator:read:blocked_terms', 'moderator:manage:blocked_terms'],
  ['moderator:read:chat_settings', 'moderator:manage:chat_settings'],
  UNBAN_REQUESTS,
  ['moderator:read:banned_users', 'moderator:manage:banned_users'],
  ['moderator:read:chat_messages', 'moderator:manage:chat_messages'],
  ['moderator:read:moderators'],
  ['moderator:read:vips'],
];
/** v2 adds the warnings. */
const MODERATE_V2: Groups = [...MODERATE_V1.slice(0, 5), WARNINGS, ...MODERATE_V1.slice(5)];

/** The table, in the order of the reference pages. Types missing from it are unknown here (see `authorizationFor`). */
const TABLE: readonly TypeAuthorization[] = [
  // automod
  row('automod.message.hold', '1', moderator(['moderator:manage:automod']), 'automod#automod-message-hold'),
  row('automod.message.hold', '2', moderator(['moderator:manage:automod']), 'automod#automod-message-hold-v2'),
  row('automod.message.update', '1', moderator(['moderator:manage:automod']), 'automod#automod-message-update'),
  row('automod.message.update', '2', moderator(['moderator:manage:automod']), 'automod#automod-message-update-v2'),
  row('automod.settings.update', '1', moderator(['moderator:read:automod_settings']), 'automod#automod-settings-update'),
  row('automod.terms.update', '1', moderator(['moderator:manage:automod']), 'automod#automod-terms-update'),
  // channel
  row('channel.ad_break.begin', '1', broadcaster(['channel:read:ads']), 'channel#channel-ad-break-begin'),
  row('channel.bits.use', '1', broadcaster(['bits:read']), 'channel#channel-bits-use'),
  row('channel.cheer', '1', broadcaster(['bits:read']), 'channel#channel-cheer'),
  row('channel.custom_power_up_redemption.add', '1', broadcaster(['bits:read']), 'channel#channel-custom-power-up-redemption-add'),
  row('channel.follow', '2', moderator(['moderator:read:followers']), 'channel#channel-follow'),
  row('channel.raid', '1', none, 'channel#channel-raid'),
  row('channel.shoutout.create', '1', moderator(SHOUTOUTS), 'channel#channel-shoutout-create'),
  row('channel.shoutout.receive', '1', moderator(SHOUTOUTS), 'channel#channel-shoutout-receive'),
  row('channel.subscribe', '1', broadcaster(['channel:read:subscriptions']), 'channel#channel-subscribe'),
  row('channel.subscription.end', '1', broadcaster(['channel:read:subscriptions']), 'channel#channel-subscription-end'),
  row('channel.subscription.gift', '1', broadcaster(['channel:read:subscriptions']), 'channel#channel-subscription-gift'),
  row('channel.subscription.message', '1', broadcaster(['channel:read:subscriptions']), 'channel#channel-subscription-message'),
  row('channel.update', '2', none, 'channel#channel-update'),
  row('channel.vip.add', '1', broadcaster(VIPS), 'channel#channel-vip-add'),
  row('channel.vip.remove', '1', broadcaster(VIPS), 'channel#channel-vip-remove'),
  // channel moderation
  row('channel.ban', '1', broadcaster(['channel:moderate']), 'channel-moderation#channel-ban'),
  row('channel.moderate', '1', moderator(...MODERATE_V1), 'channel-moderation#channel-moderate'),
  row('channel.moderate', '2', moderator(...MODERATE_V2), 'channel-moderation#channel-moderate-v2'),
  row('channel.moderator.add', '1', broadcaster(['moderation:read']), 'channel-moderation#channel-moderator-add'),
  row('channel.moderator.remove', '1', broadcaster(['moderation:read']), 'channel-moderation#channel-moderator-remove'),
  row('channel.shield_mode.begin', '1', moderator(SHIELD_MODE), 'channel-moderation#channel-shield-mode-begin'),
  row('channel.shield_mode.end', '1', moderator(SHIELD_MODE), 'channel-moderation#channel-shield-mode-end'),
  row('channel.suspicious_user.message', '1', moderator(['moderator:read:suspicious_users']), 'channel-moderation#channel-suspicious-user-message'),
  row('channel.suspicious_user.update', '1', moderator(['moderator:read:suspicious_users']), 'channel-moderation#channel-suspicious-user-update'),
  row('channel.unban', '1', broadcaster(['channel:moderate']), 'channel-moderation#channel-unban'),
  row('channel.unban_request.create', '1', moderator(UNBAN_REQUESTS), 'channel-moderation#channel-unban-request-create'),
  row('channel.unban_request.resolve', '1', moderator(UNBAN_REQUESTS), 'channel-moderation#channel-unban-request-resolve'),
  row('channel.warning.acknowledge', '1', moderator(WARNINGS), 'channel-moderation#channel-warning-acknowledge'),
  row('channel.warning.send', '1', moderator(WARNINGS), 'channel-moderation#channel-warning-send'),
  // channel points
  row(
    'channel.channel_points_automatic_reward_redemption.add',
    '1',
    broadcaster(REDEMPTIONS),
    'channel-points#channel-channel-points-automatic-reward-redemption-add',
  ),
  row(
    'channel.channel_points_automatic_reward_redemption.add',
    '2',
    broadcaster(REDEMPTIONS),
    'channel-points#channel-channel-points-automatic-reward-redemption-add-v2',
  ),
  row(
    'channel.channel_points_custom_reward_redemption.add',
    '1',
    broadcaster(REDEMPTIONS),
    'channel-points#channel-channel-points-custom-reward-redemption-add',
  ),
  row(
    'channel.channel_points_custom_reward_redemption.update',
    '1',
    broadcaster(REDEMPTIONS),
    'channel-points#channel-channel-points-custom-reward-redemption-update',
  ),
  row('channel.channel_points_custom_reward.add', '1', broadcaster(REDEMPTIONS), 'channel-points#channel-channel-points-custom-reward-add'),
  row('channel.channel_points_custom_reward.remove', '1', broadcaster(REDEMPTIONS), 'channel-points#channel-channel-points-custom-reward-remove'),
  row('channel.channel_points_custom_reward.update', '1', broadcaster(REDEMPTIONS), 'channel-points#channel-channel-points-custom-reward-update'),
  // charity
  row('channel.charity_campaign.donate', '1', broadcaster(['channel:read:charity']), 'charity#channel-charity-campaign-donate'),
  row('channel.charity_campaign.progress', '1', broadcaster(['channel:read:charity']), 'charity#channel-charity-campaign-progress'),
  row('channel.charity_campaign.start', '1', broadcaster(['channel:read:charity']), 'charity#channel-charity-campaign-start'),
  row('channel.charity_campaign.stop', '1', broadcaster(['channel:read:charity']), 'charity#channel-charity-campaign-stop'),
  // chat
  row('channel.chat_settings.update', '1', chat(), 'chat#channel-chat-settings-update'),
  row('channel.chat.clear', '1', chat(), 'chat#channel-chat-clear'),
  row('channel.chat.clear_user_messages', '1', chat(), 'chat#channel-chat-clear-user-messages'),
  row('channel.chat.message', '1', chat(), 'chat#channel-chat-message'),
  row('channel.chat.message_delete', '1', chat(), 'chat#channel-chat-message-delete'),
  row('channel.chat.notification', '1', chat(), 'chat#channel-chat-notification'),
  row('channel.chat.user_message_hold', '1', chat(false), 'chat#channel-chat-user-message-hold'),
  row('channel.chat.user_message_update', '1', chat(false), 'chat#channel-chat-user-message-update'),
  row('channel.shared_chat.begin', '1', none, 'chat#channel-shared-chat-begin'),
  row('channel.shared_chat.end', '1', none, 'chat#channel-shared-chat-end'),
  row('channel.shared_chat.update', '1', none, 'chat#channel-shared-chat-update'),
  // conduit, drop, extension: the app token of the right client (or organization) is the whole authorization
  row('conduit.shard.disabled', '1', none, 'conduit#conduit-shard-disabled'),
  row('drop.entitlement.grant', '1', none, 'drop#drop-entitlement-grant'),
  row('extension.bits_transaction.create', '1', none, 'extension#extension-bits-transaction-create'),
  // goal
  row('channel.goal.begin', '1', broadcaster(['channel:read:goals']), 'goal#channel-goal-begin'),
  row('channel.goal.end', '1', broadcaster(['channel:read:goals']), 'goal#channel-goal-end'),
  row('channel.goal.progress', '1', broadcaster(['channel:read:goals']), 'goal#channel-goal-progress'),
  // guest star: the docs name moderator_user_id (the moderator, or the broadcaster) for any of the four scopes
  row('channel.guest_star_guest.update', 'beta', moderator(GUEST_STAR), 'guest-star#channel-guest-star-guest-update'),
  row('channel.guest_star_session.begin', 'beta', moderator(GUEST_STAR), 'guest-star#channel-guest-star-session-begin'),
  row('channel.guest_star_session.end', 'beta', moderator(GUEST_STAR), 'guest-star#channel-guest-star-session-end'),
  row('channel.guest_star_settings.update', 'beta', moderator(GUEST_STAR), 'guest-star#channel-guest-star-settings-update'),
  // hype train
  row('channel.hype_train.begin', '2', broadcaster(['channel:read:hype_train']), 'hype-train#channel-hype-train-begin'),
  row('channel.hype_train.end', '2', broadcaster(['channel:read:hype_train']), 'hype-train#channel-hype-train-end'),
  row('channel.hype_train.progress', '2', broadcaster(['channel:read:hype_train']), 'hype-train#channel-hype-train-progress'),
  // poll, prediction
  row('channel.poll.begin', '1', broadcaster(POLLS), 'poll#channel-poll-begin'),
  row('channel.poll.end', '1', broadcaster(POLLS), 'poll#channel-poll-end'),
  row('channel.poll.progress', '1', broadcaster(POLLS), 'poll#channel-poll-progress'),
  row('channel.prediction.begin', '1', broadcaster(PREDICTIONS), 'prediction#channel-prediction-begin'),
  row('channel.prediction.end', '1', broadcaster(PREDICTIONS), 'prediction#channel-prediction-end'),
  row('channel.prediction.lock', '1', broadcaster(PREDICTIONS), 'prediction#channel-prediction-lock'),
  row('channel.prediction.progress', '1', broadcaster(PREDICTIONS), 'prediction#channel-prediction-progress'),
  // stream
  row('stream.offline', '1', none, 'stream#stream-offline'),
  row('stream.online', '1', none, 'stream#stream-online'),
  // user: user.update needs nothing (user:read:email only adds the email field)
  row('user.authorization.grant', '1', none, 'user#user-authorization-grant'),
  row('user.authorization.revoke', '1', none, 'user#user-authorization-revoke'),
  row('user.update', '1', none, 'user#user-update'),
  row('user.whisper.message', '1', user(['user:read:whispers', 'user:manage:whispers']), 'user#user-whisper-message'),
];

const BY_KEY: ReadonlyMap<string, TypeAuthorization> = new Map(TABLE.map((t) => [`${t.type}@${t.version}`, t]));

/** Every entry, for tests and documentation. */
export function authorizationTable(): readonly TypeAuthorization[] {
  return TABLE;
}

/** The requirements of a type and version, or undefined when the table does not know it. */
export function authorizationFor(type: string, version: string): TypeAuthorization | undefined {
  return BY_KEY.get(`${type}@${version}`);
}

/** What one user still has to grant for one subscription. */
export interface MissingGrant {
  userId: string;
  /** The condition field that names the user. */
  field: string;
  /** The scopes to ask for: for each group not met, its first scope (the read-only one where there is a choice). */
  scopes: string[];
}

/**
 * What is missing for a subscription of `type`/`version` with `condition`, given the scopes each user has
 * granted (`granted(userId)`; undefined for a user who granted nothing). Requirements of one user are merged.
 * Empty when nothing is missing, including for a type the table does not know (Twitch will say).
 */
export function missingGrants(
  sub: { type: string; version: string; condition: Readonly<Record<string, string>> },
  granted: (userId: string) => ReadonlySet<string> | undefined,
): MissingGrant[] {
  const entry = authorizationFor(sub.type, sub.version);
  if (!entry) return [];
  const byUser = new Map<string, MissingGrant>();
  for (const req of entry.requirements) {
    const userId = sub.condition[req.user];
    if (!userId) continue;
    const has = granted(userId);
    for (const group of req.groups) {
      if (group.some((s) => has?.has(s))) continue;
      const missing = byUser.get(userId) ?? { userId, field: req.user, scopes: [] };
      if (!missing.scopes.includes(group[0]!)) missing.scopes.push(group[0]!);
      byUser.set(userId, missing);
    }
  }
  return [...byUser.values()];
}

/** True when the type needs some user's authorization. */
export function needsAuthorization(type: string, version: string): boolean {
  return (authorizationFor(type, version)?.requirements.length ?? 0) > 0;
}
