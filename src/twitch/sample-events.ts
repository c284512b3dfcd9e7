/**
 * The messages `eventsubd trigger` sends: for any type and version of the catalogue, the example payload of
 * event-examples.ts (Twitch's documented shape) wrapped in a subscription object, the way Twitch puts them
 * in a webhook body (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#processing-an-event).
 * Types are named as Twitch names them or by twitch-cli's trigger names (`cheer`, `follow`, `subscribe`...).
 */
import { randomUUID } from 'node:crypto';
import { catalogueEntries, lookupType } from './catalogue.js';
import { EXAMPLE_BROADCASTER_ID, eventExample } from './event-examples.js';

/** A twitch-cli trigger name: the type it sends, and what it changes in the event. */
interface TriggerAlias {
  type: string;
  patch?: Readonly<Record<string, unknown>>;
}

/**
 * twitch-cli's trigger names, as each event type of twitch-cli declares them (`triggerMapping` in
 * https://github.com/twitchdev/twitch-cli/tree/main/internal/events/types). `gift` sends a channel.subscribe
 * with `is_gift` true, as twitch-cli does.
 */
export const TRIGGER_ALIASES: Readonly<Record<string, TriggerAlias>> = Object.freeze({
  'ad-begin': { type: 'channel.ad_break.begin' },
  grant: { type: 'user.authorization.grant' },
  revoke: { type: 'user.authorization.revoke' },
  ban: { type: 'channel.ban' },
  unban: { type: 'channel.unban' },
  'add-redemption': { type: 'channel.channel_points_custom_reward_redemption.add' },
  'update-redemption': { type: 'channel.channel_points_custom_reward_redemption.update' },
  'add-reward': { type: 'channel.channel_points_custom_reward.add' },
  'update-reward': { type: 'channel.channel_points_custom_reward.update' },
  'remove-reward': { type: 'channel.channel_points_custom_reward.remove' },
  'stream-change': { type: 'channel.update' },
  'charity-donate': { type: 'channel.charity_campaign.donate' },
  'charity-start': { type: 'channel.charity_campaign.start' },
  'charity-progress': { type: 'channel.charity_campaign.progress' },
  'charity-stop': { type: 'channel.charity_campaign.stop' },
  cheer: { type: 'channel.cheer' },
  drop: { type: 'drop.entitlement.grant' },
  transaction: { type: 'extension.bits_transaction.create' },
  follow: { type: 'channel.follow' },
  'channel-gift': { type: 'channel.subscription.gift' },
  'goal-begin': { type: 'channel.goal.begin' },
  'goal-progress': { type: 'channel.goal.progress' },
  'goal-end': { type: 'channel.goal.end' },
  'hype-train-begin': { type: 'channel.hype_train.begin' },
  'hype-train-progress': { type: 'channel.hype_train.progress' },
  'hype-train-end': { type: 'channel.hype_train.end' },
  'add-moderator': { type: 'channel.moderator.add' },
  'remove-moderator': { type: 'channel.moderator.remove' },
  'poll-begin': { type: 'channel.poll.begin' },
  'poll-progress': { type: 'channel.poll.progress' },
  'poll-end': { type: 'channel.poll.end' },
  'prediction-begin': { type: 'channel.prediction.begin' },
  'prediction-progress': { type: 'channel.prediction.progress' },
  'prediction-lock': { type: 'channel.prediction.lock' },
  'prediction-end': { type: 'channel.prediction.end' },
  raid: { type: 'channel.raid' },
  'shield-mode-begin': { type: 'channel.shield_mode.begin' },
  'shield-mode-end': { type: 'channel.shield_mode.end' },
  'shoutout-create': { type: 'channel.shoutout.create' },
  'shoutout-received': { type: 'channel.shoutout.receive' },
  streamup: { type: 'stream.online' },
  streamdown: { type: 'stream.offline' },
  subscribe: { type: 'channel.subscribe' },
  gift: { type: 'channel.subscribe', patch: { is_gift: true } },
  unsubscribe: { type: 'channel.subscription.end' },
  'subscribe-end': { type: 'channel.subscription.end' },
  'subscribe-message': { type: 'channel.subscription.message' },
  'unban-request-create': { type: 'channel.unban_request.create' },
  'unban-request-resolve': { type: 'channel.unban_request.resolve' },
  'user-update': { type: 'user.update' },
});

export interface SampleOptions {
  /** Default: the type's latest version (the last of the catalogue: `2` before `1`, never `beta` unless alone). */
  version?: string | undefined;
  /** Replaces the examples' broadcaster id everywhere (condition and event). Default: the example's. */
  broadcasterId?: string | undefined;
  subscriptionId?: string | undefined;
  /** The subscription's status (default `enabled`). */
  status?: string | undefined;
  /** transport.callback of the subscription object. */
  callback: string;
  now: Date;
}

export interface SampleMessage {
  subscription: { type: string; version: string; [key: string]: unknown };
  event?: Record<string, unknown>;
  /** Batched types (drop.entitlement.grant) only. */
  events?: Array<Record<string, unknown>>;
}

/** The subscription type a trigger name stands for (a type is its own name); undefined when unknown. */
export function resolveTriggerName(name: string): string | undefined {
  const alias = TRIGGER_ALIASES[name];
  if (alias) return alias.type;
  return catalogueEntries().some((e) => e.type === name) ? name : undefined;
}

/** The versions the catalogue knows for a type, in its order. */
export function versionsOf(type: string): string[] {
  return catalogueEntries()
    .filter((e) => e.type === type)
    .map((e) => e.version);
}

/** Every name `sampleMessage` accepts: the types, then twitch-cli's trigger names. */
export function sampleTypeNames(): string[] {
  return [...new Set(catalogueEntries().map((e) => e.type))].sort().concat(Object.keys(TRIGGER_ALIASES).sort());
}

/**
 * The subscription object and event for a type (or trigger name) and version, as Twitch puts them in a
 * webhook body. Returns a reason instead when the name or the version is unknown.
 */
export function sampleMessage(name: string, options: SampleOptions): SampleMessage | { error: string } {
  const type = resolveTriggerName(name);
  if (!type) return { error: `Unknown type "${name}"` };
  const versions = versionsOf(type);
  const numbered = versions.filter((v) => v !== 'beta');
  const version = options.version ?? numbered.at(-1) ?? versions.at(-1)!;
  const entry = lookupType(type, version);
  const example = eventExample(type, version);
  if (!entry || !example) return { error: `Unknown version "${version}" of ${type}: known versions are ${versions.join(', ')}` };
  const swap = <T>(value: T): T => (options.broadcasterId ? replaceString(value, EXAMPLE_BROADCASTER_ID, options.broadcasterId) : structuredClone(value));
  const patch = TRIGGER_ALIASES[name]?.patch ?? {};
  const subscription = {
    id: options.subscriptionId ?? randomUUID(),
    status: options.status ?? 'enabled',
    type,
    version,
    condition: swap({ ...example.condition }),
    transport: { method: 'webhook', callback: options.callback },
    created_at: new Date(options.now.getTime() - 3_600_000).toISOString(),
    cost: entry.requiresAuth ? 0 : 1,
  };
  if (example.events) return { subscription, events: swap(example.events.map((e) => ({ ...e }))) };
  return { subscription, event: { ...swap({ ...example.event }), ...patch } };
}

/** A deep copy of `value` with every string equal to `from` replaced by `to`. */
function replaceString<T>(value: T, from: string, to: string): T {
  if (value === from) return to as T;
  if (Array.isArray(value)) return value.map((v: unknown) => replaceString(v, from, to)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceString(v, from, to)])) as T;
  }
  return value;
}
