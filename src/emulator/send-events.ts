/**
 * Messages the emulated Twitch sends to a subscription on request (the control API's
 * `POST /_emulator/subscriptions/:id/events`) or by itself (`conduit.shard.disabled`), whatever the subscription's
 * transport: a webhook subscription gets the signed POST to its callback (deliveries.ts), a conduit subscription a
 * frame on the shard its broadcaster hashes to (conduits.ts). Each message is named by its `message_id`, so a test
 * knows exactly what was sent and what the emulator dropped.
 */
import { eventExample } from '../twitch/event-examples.js';
import type { Conduits, ConduitShard, SentMessage, StoredConduit } from './conduits.js';
import type { WebhookDeliveries } from './deliveries.js';
import { EmulatorRequestError } from './http.js';
import { randomId, rfc3339Nano } from './ids.js';
import type { EmulatorState, StoredSubscription } from './state.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

/** The most messages one request may ask for: a benchmark's burst, not a way to stall the emulator for minutes. */
export const MAX_EVENTS_PER_REQUEST = 100_000;

/** The revocation reason when none is given (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#revoking-your-subscription). */
export const DEFAULT_REVOCATION_STATUS = 'authorization_revoked';

export interface SendEventsOptions {
  /** The notification's `event`. Default: the catalogue's example for the type, with the subscription's condition filled in. */
  event?: Record<string, unknown>;
  /** How many messages (each with its own message_id). Default 1, at most MAX_EVENTS_PER_REQUEST; 1 for a revocation. */
  count?: number;
  /** Default `notification`. */
  messageType?: 'notification' | 'revocation';
  /** A revocation's reason, which becomes the subscription's status. Default `authorization_revoked`. */
  status?: string;
}

export interface EventSenderDeps {
  state: EmulatorState;
  conduits: Conduits;
  deliveries: WebhookDeliveries;
  clock: Clock;
  logger: Logger;
  /** Aborted when the emulator closes: the sessions it closes then disable their shards, but nobody is told. */
  signal: AbortSignal;
}

/** Sends notifications and revocations to subscriptions of either transport. */
export class EventSender {
  readonly #deps: EventSenderDeps;

  constructor(deps: EventSenderDeps) {
    this.#deps = deps;
    deps.conduits.onShardDisabled((conduit, shard) => this.#shardDisabled(conduit, shard));
  }

  /**
   * Sends `count` notifications (or one revocation) to the subscription. Only an enabled subscription gets
   * messages, as on Twitch; a revocation first sets the subscription's status to its reason.
   * @throws EmulatorRequestError 404 for an unknown id; 409 for a subscription that is not enabled, or a webhook
   * subscription when the emulator has no `deliverTo` (its public callback cannot be reached).
   * @throws RangeError for a count out of range, or a revocation status that is a live status.
   */
  send(subscriptionId: string, options: SendEventsOptions = {}): SentMessage[] {
    const sub = this.#deps.state.findSubscription(subscriptionId);
    if (!sub) throw new EmulatorRequestError(404, `Unknown subscription ${subscriptionId}`);
    const messageType = options.messageType ?? 'notification';
    const count = options.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > MAX_EVENTS_PER_REQUEST) {
      throw new RangeError(`count must be an integer from 1 to ${MAX_EVENTS_PER_REQUEST}: current value is ${count}`);
    }
    if (messageType === 'revocation' && count !== 1) throw new RangeError(`A subscription is revoked once: count must be 1, current value is ${count}`);
    if (sub.wire.status !== 'enabled') {
      throw new EmulatorRequestError(409, `Subscription ${subscriptionId} is not enabled (status ${sub.wire.status}): Twitch sends it nothing`);
    }
    const webhook = sub.wire.transport.method === 'webhook';
    if (webhook && !this.#deps.deliveries.canDeliver) {
      throw new EmulatorRequestError(409, `Subscription ${subscriptionId} is a webhook and the emulator has no deliverTo (--deliver-to): its callback cannot be reached`);
    }
    if (messageType === 'revocation') {
      const status = options.status ?? DEFAULT_REVOCATION_STATUS;
      if (status === 'enabled' || status === 'webhook_callback_verification_pending') throw new RangeError(`A revocation's status must not be a live status: current value is ${status}`);
      this.#deps.state.setSubscriptionStatus(sub, status);
      return this.#deliver(sub, { messageType: 'revocation' }, 1);
    }
    return this.#deliver(sub, { messageType: 'notification', ...(options.event ? { event: options.event } : defaultEvent(sub)) }, count);
  }

  #deliver(
    sub: StoredSubscription,
    message: { messageType: 'notification'; event?: Record<string, unknown>; events?: Record<string, unknown>[] } | { messageType: 'revocation' },
    count: number,
  ): SentMessage[] {
    if (sub.wire.transport.method === 'conduit') {
      const m = message.messageType === 'revocation' ? message : { messageType: message.messageType, event: message.event ?? { ...message.events?.[0] } };
      return this.#deps.conduits.send(sub, m, count);
    }
    const out: SentMessage[] = [];
    for (let i = 0; i < count; i += 1) {
      const messageId = randomId();
      this.#deps.deliveries.send(sub, { ...message, messageId });
      out.push({ message_id: messageId });
    }
    return out;
  }

  /**
   * https://dev.twitch.tv/docs/eventsub/eventsub-subscription-types/#conduitsharddisabled: every enabled
   * `conduit.shard.disabled` subscription of the conduit's client, for this conduit or for all (no `conduit_id`),
   * is told which shard left `enabled`, with its status and transport.
   */
  #shardDisabled(conduit: StoredConduit, shard: ConduitShard): void {
    const t = shard.transport;
    if (!t || this.#deps.signal.aborted) return;
    const transport =
      t.method === 'webhook'
        ? { method: 'webhook', callback: t.callback }
        : { method: 'websocket', session_id: t.session_id, connected_at: t.connected_at, disconnected_at: t.disconnected_at ?? rfc3339Nano(this.#deps.clock.now()) };
    const event = { conduit_id: conduit.id, shard_id: shard.id, status: shard.status, transport };
    const listeners = this.#deps.state
      .subscriptionsOf(conduit.clientId)
      .filter(
        (s) =>
          s.wire.type === 'conduit.shard.disabled' &&
          s.wire.status === 'enabled' &&
          s.wire.condition.client_id === conduit.clientId &&
          (!s.wire.condition.conduit_id || s.wire.condition.conduit_id === conduit.id),
      );
    for (const sub of listeners) {
      if (sub.wire.transport.method === 'webhook' && !this.#deps.deliveries.canDeliver) continue;
      const [sent] = this.#deliver(sub, { messageType: 'notification', event }, 1);
      this.#deps.logger.debug('emulator: conduit.shard.disabled sent', { subscription: sub.wire.id, conduit: conduit.id, shard: shard.id, dropped: sent?.dropped === true });
    }
  }
}

/**
 * The catalogue's example event for the subscription's type and version (event-examples.ts), made to match the
 * subscription: every value of the example's condition is replaced, wherever it appears, by the subscription's
 * value for that field, and a top-level event field named like a condition field takes its value (e.g. the
 * `conduit_id` of conduit.shard.disabled). A batched type (drop.entitlement.grant) gets `events`.
 */
export function defaultEvent(sub: StoredSubscription): { event?: Record<string, unknown>; events?: Record<string, unknown>[] } {
  const { type, version, condition } = sub.wire;
  const example = eventExample(type, version);
  if (!example) return { event: {} };
  const swaps = new Map<string, string>();
  for (const [field, value] of Object.entries(example.condition)) {
    const mine = condition[field];
    if (value && mine) swaps.set(value, mine);
  }
  const fill = (event: Readonly<Record<string, unknown>>): Record<string, unknown> => {
    const out = swapStrings(event, swaps) as Record<string, unknown>;
    for (const [field, value] of Object.entries(condition)) if (value && field in out) out[field] = value;
    return out;
  };
  if (example.events) return { events: example.events.map(fill) };
  return { event: fill(example.event ?? {}) };
}

/** A deep copy of `value` with each string that is a key of `swaps` replaced by its value. */
function swapStrings(value: unknown, swaps: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') return swaps.get(value) ?? value;
  if (Array.isArray(value)) return value.map((v) => swapStrings(v, swaps));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, swapStrings(v, swaps)]));
  return value;
}
