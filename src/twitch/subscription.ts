/**
 * The domain shape of one declared subscription, the canonical key that the plan and the file loader use to
 * tell two subscriptions apart, and their one-line description. Here, below both `config/` (which reads the
 * file into this shape) and `subscriptions/` (which plans and applies it), so neither depends on the other.
 */

/** One entry of the desired-subscriptions file, resolved against the settings (callback and secret). */
export interface DesiredSubscription {
  readonly type: string;
  readonly version: string;
  readonly condition: Readonly<Record<string, string>>;
  readonly transport: Readonly<{ method: 'webhook'; callback: string; secret: string }>;
  /** Added by eventsubd, not declared in the file (`user.authorization.grant`/`revoke`). */
  readonly implicit?: boolean;
}

/**
 * A canonical, unambiguous key for (type, version, condition, target): condition keys are sorted, so
 * `{a, b}` and `{b, a}` give the same key. `target` is where events go (the webhook callback URL).
 * The key is JSON, so values containing separators cannot collide.
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

/** `key=value` pairs of a condition, keys sorted, joined by `separator` (default `,`). */
export function formatCondition(condition: Readonly<Record<string, unknown>>, separator = ','): string {
  return Object.keys(condition)
    .sort()
    .map((k) => `${k}=${String(condition[k])}`)
    .join(separator);
}
