/**
 * The domain shape of one declared subscription, where it is delivered (its target), what this daemon owns,
 * the canonical key that the plan and the file loader use to tell two subscriptions apart, and their one-line
 * description. Here, below both `config/` (which reads the file into this shape) and `subscriptions/` (which
 * plans and applies it), so neither depends on the other.
 */

/**
 * Where a subscription's events go (SPEC "Conduit transport"): a webhook to EVENTSUB_CALLBACK_URL signed with the
 * first EVENTSUB_SECRET, or this daemon's conduit (its WebSocket shards). Both are created with the app token.
 */
export type DeliveryTarget =
  | Readonly<{ method: 'webhook'; callback: string; secret: string }>
  | Readonly<{ method: 'conduit'; conduit_id: string }>;

/** One entry of the desired-subscriptions file as declared: no target yet (it follows EVENTSUBD_TRANSPORT). */
export interface DeclaredSubscription {
  readonly type: string;
  readonly version: string;
  readonly condition: Readonly<Record<string, string>>;
}

/** One declared subscription resolved against the settings: with its delivery target. */
export interface DesiredSubscription extends DeclaredSubscription {
  readonly transport: DeliveryTarget;
  /** Added by eventsubd, not declared in the file (`user.authorization.grant`/`revoke`). */
  readonly implicit?: boolean;
}

/**
 * What this daemon owns: webhooks to callbackUrl, and subscriptions on any of conduitIds (current + replaced
 * ones). Sync never deletes nor recreates anything else, whatever `prune` says.
 */
export interface Ownership {
  callbackUrl?: string | undefined;
  conduitIds: readonly string[];
}

/** The transport fields a listed (wire) subscription or a desired one may carry. */
interface TransportLike {
  method: string;
  callback?: string | undefined;
  conduit_id?: string | undefined;
  session_id?: string | undefined;
}

/**
 * The target part of a subscription's canonical key: the callback URL of a webhook, `conduit:<id>` for a
 * conduit, `websocket:<session id>` for a WebSocket session. Never contains a secret. Two targets are the same
 * delivery exactly when their strings are equal (a URL cannot start with `conduit:`, so they cannot collide).
 */
export function targetOf(sub: { transport: TransportLike }): string {
  const t = sub.transport;
  if (t.method === 'webhook') return t.callback ?? '';
  if (t.method === 'conduit') return `conduit:${t.conduit_id ?? ''}`;
  return `${t.method}:${t.session_id ?? ''}`;
}

/** True when `sub` is delivered to a target of `own`: a webhook to its callback URL, or one of its conduits. */
export function isOwned(sub: { transport: TransportLike }, own: Ownership): boolean {
  const t = sub.transport;
  if (t.method === 'webhook') return own.callbackUrl !== undefined && own.callbackUrl !== '' && t.callback === own.callbackUrl;
  if (t.method === 'conduit') return t.conduit_id !== undefined && own.conduitIds.includes(t.conduit_id);
  // A WebSocket subscription belongs to the user token that made it: never ours.
  return false;
}

/**
 * A canonical, unambiguous key for (type, version, condition, target): condition keys are sorted, so
 * `{a, b}` and `{b, a}` give the same key. `target` is where events go (`targetOf`: the webhook callback URL,
 * or `conduit:<id>`). The key is JSON, so values containing separators cannot collide.
 */
export function subscriptionKey(
  type: string,
  version: string,
  condition: Readonly<Record<string, string>>,
  target: string,
): string {
  const entries = Object.keys(condition)
    .sort()
    .map((k) => [k, condition[k]]);
  return JSON.stringify([type, version, entries, target]);
}

/**
 * A one-line human description without the transport, e.g.
 * `stream.online v1 broadcaster_user_id=12345`. Never contains a secret.
 */
export function describeSubscription(sub: {
  type: string;
  version: string;
  condition: Readonly<Record<string, unknown>>;
}): string {
  const condition = formatCondition(sub.condition, ' ');
  return `${sub.type} v${sub.version}${condition ? ` ${condition}` : ''}${'implicit' in sub && sub.implicit ? ' (implicit)' : ''}`;
}

/** Where a subscription goes, for people: `webhook`, `conduit <id>`, `websocket`. Never the callback's secret. */
export function describeTarget(sub: { transport: TransportLike }): string {
  const t = sub.transport;
  return t.method === 'conduit' ? `conduit ${t.conduit_id ?? '?'}` : t.method;
}

/** `key=value` pairs of a condition, keys sorted, joined by `separator` (default `,`). */
export function formatCondition(condition: Readonly<Record<string, unknown>>, separator = ','): string {
  return Object.keys(condition)
    .sort()
    .map((k) => `${k}=${String(condition[k])}`)
    .join(separator);
}
