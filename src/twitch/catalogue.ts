/**
 * The subscription types Twitch accepts (the emulator enforces them, the subscriptions file is checked
 * against them), with their versions and condition fields
 * (https://dev.twitch.tv/docs/eventsub/eventsub-subscription-types/). A type+version outside this list is
 * "invalid type and version combination" (a 400 of https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription).
 */

export interface CatalogueEntry {
  type: string;
  version: string;
  /** Fields that must be present and non-empty. */
  required: readonly string[];
  /** Fields that may be present. */
  optional: readonly string[];
  /** Exactly one of these must be set (channel.raid: from or to). */
  exactlyOneOf: readonly string[];
  /** The type needs a user's authorization (a scope): its cost is 0 (https://dev.twitch.tv/docs/eventsub/manage-subscriptions/#subscription-limits). */
  requiresAuth: boolean;
  /** A condition field that must equal the token's client ID (e.g. `client_id` of user.authorization.*). */
  clientIdField: string | undefined;
  /** Webhook transport only (not websocket). */
  webhookOnly: boolean;
}

interface Spec {
  versions: readonly string[];
  required?: readonly string[];
  optional?: readonly string[];
  exactlyOneOf?: readonly string[];
  auth?: boolean;
  clientIdField?: string;
  webhookOnly?: boolean;
}

const B = ['broadcaster_user_id'];
const BM = ['broadcaster_user_id', 'moderator_user_id'];
const BU = ['broadcaster_user_id', 'user_id'];
const V1 = ['1'];

/** Same spec for several types. */
function many(types: readonly string[], spec: Spec): Array<[string, Spec]> {
  return types.map((t) => [t, spec]);
}

const SPECS: Array<[string, Spec]> = [
  ['stream.online', { versions: V1, required: B }],
  ['stream.offline', { versions: V1, required: B }],
  ['channel.update', { versions: ['2'], required: B }],
  ['channel.follow', { versions: ['2'], required: BM, auth: true }],
  ['channel.raid', { versions: V1, exactlyOneOf: ['from_broadcaster_user_id', 'to_broadcaster_user_id'] }],
  ['user.update', { versions: V1, required: ['user_id'] }],
  ...many(['user.authorization.grant', 'user.authorization.revoke'], {
    versions: V1,
    required: ['client_id'],
    clientIdField: 'client_id',
    webhookOnly: true,
  }),
  ...many(
    [
      'channel.chat.message',
      'channel.chat.notification',
      'channel.chat.clear',
      'channel.chat.clear_user_messages',
      'channel.chat.message_delete',
      'channel.chat_settings.update',
      'channel.chat.user_message_hold',
      'channel.chat.user_message_update',
    ],
    { versions: V1, required: BU, auth: true },
  ),
  ...many(
    [
      'channel.subscribe',
      'channel.subscription.end',
      'channel.subscription.gift',
      'channel.subscription.message',
      'channel.cheer',
      'channel.bits.use',
      'channel.ban',
      'channel.unban',
      'channel.moderator.add',
      'channel.moderator.remove',
      'channel.vip.add',
      'channel.vip.remove',
      'channel.channel_points_custom_reward.add',
      'channel.poll.begin',
      'channel.poll.progress',
      'channel.poll.end',
      'channel.prediction.begin',
      'channel.prediction.progress',
      'channel.prediction.lock',
      'channel.prediction.end',
      'channel.goal.begin',
      'channel.goal.progress',
      'channel.goal.end',
      'channel.ad_break.begin',
      'channel.charity_campaign.donate',
      'channel.charity_campaign.start',
      'channel.charity_campaign.progress',
      'channel.charity_campaign.stop',
      'channel.custom_power_up_redemption.add',
    ],
    { versions: V1, required: B, auth: true },
  ),
  ...many(
    [
      'channel.channel_points_custom_reward_redemption.add',
      'channel.channel_points_custom_reward_redemption.update',
      'channel.channel_points_custom_reward.update',
      'channel.channel_points_custom_reward.remove',
    ],
    { versions: V1, required: B, optional: ['reward_id'], auth: true },
  ),
  ['channel.channel_points_automatic_reward_redemption.add', { versions: ['1', '2'], required: B, auth: true }],
  ...many(['channel.hype_train.begin', 'channel.hype_train.progress', 'channel.hype_train.end'], {
    versions: ['2'],
    required: B,
    auth: true,
  }),
  ...many(
    [
      'channel.shoutout.create',
      'channel.shoutout.receive',
      'channel.shield_mode.begin',
      'channel.shield_mode.end',
      'automod.settings.update',
      'automod.terms.update',
      'channel.suspicious_user.message',
      'channel.suspicious_user.update',
      'channel.unban_request.create',
      'channel.unban_request.resolve',
      'channel.warning.acknowledge',
      'channel.warning.send',
    ],
    { versions: V1, required: BM, auth: true },
  ),
  ...many(['channel.moderate', 'automod.message.hold', 'automod.message.update'], {
    versions: ['1', '2'],
    required: BM,
    auth: true,
  }),
  ...many(['channel.shared_chat.begin', 'channel.shared_chat.update', 'channel.shared_chat.end'], {
    versions: V1,
    required: B,
  }),
  ['user.whisper.message', { versions: V1, required: ['user_id'], auth: true }],
  ['conduit.shard.disabled', { versions: V1, required: ['client_id'], optional: ['conduit_id'], clientIdField: 'client_id' }],
  [
    'drop.entitlement.grant',
    { versions: V1, required: ['organization_id'], optional: ['category_id', 'campaign_id'], webhookOnly: true },
  ],
  [
    'extension.bits_transaction.create',
    { versions: V1, required: ['extension_client_id'], clientIdField: 'extension_client_id', webhookOnly: true },
  ],
  ...many(
    [
      'channel.guest_star_session.begin',
      'channel.guest_star_session.end',
      'channel.guest_star_guest.update',
      'channel.guest_star_settings.update',
    ],
    { versions: ['beta'], required: BM, auth: true },
  ),
];

const CATALOGUE: ReadonlyMap<string, CatalogueEntry> = new Map(
  SPECS.flatMap(([type, spec]) =>
    spec.versions.map((version): [string, CatalogueEntry] => [
      `${type}@${version}`,
      Object.freeze({
        type,
        version,
        required: spec.required ?? [],
        optional: spec.optional ?? [],
        exactlyOneOf: spec.exactlyOneOf ?? [],
        requiresAuth: spec.auth ?? false,
        clientIdField: spec.clientIdField,
        webhookOnly: spec.webhookOnly ?? false,
      }),
    ]),
  ),
);

const TYPES: ReadonlySet<string> = new Set(SPECS.map(([type]) => type));

/** The entry for a type and version, or undefined when Twitch would not know the combination. */
export function lookupType(type: string, version: string): CatalogueEntry | undefined {
  return CATALOGUE.get(`${type}@${version}`);
}

/** True for any known type, whatever the version (the GET `type` filter). */
export function isKnownType(type: string): boolean {
  return TYPES.has(type);
}

/** Every entry, for tests and documentation. */
export function catalogueEntries(): CatalogueEntry[] {
  return [...CATALOGUE.values()];
}
