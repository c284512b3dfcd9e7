/**
 * The domain shape of one declared subscription, and the canonical key that plan and the file loader use
 * to tell two subscriptions apart. Kept here (not in `config/`) so that `subscriptions/` depends on no
 * config code; `config/subscriptions-file.ts` re-exports both.
 */

/** One entry of the desired-subscriptions file, resolved against the settings (callback and secret). */
export interface DesiredSubscription {
  readonly type: string;
  readonly version: string;
  readonly condition: Readonly<Record<string, string>>;
  readonly transport: Readonly<{ method: 'webhook'; callback: string; secret: string }>;
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
  condition: Readonly<Record<string, string>>;
}): string {
  const condition = Object.keys(sub.condition)
    .sort()
    .map((k) => `${k}=${sub.condition[k]}`)
    .join(' ');
  return `${sub.type} v${sub.version}${condition ? ` ${condition}` : ''}`;
}
