/**
 * Every message the emulated Twitch sends to webhook subscriptions, tracked so that `close()` can wait for
 * them: the callback verification that follows a 202
 * (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request: exactly status 200
 * with the raw challenge as body enables the subscription; anything else fails it), notifications, and
 * revocations (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#revoking-your-subscription).
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { deliverWebhook } from './deliver.js';
import type { EmulatorState, StoredSubscription } from './state.js';
import type { EmulatorStats } from './types.js';

export type VerificationMode = 'deliver' | 'accept' | 'reject';

export interface VerifierDeps {
  mode: VerificationMode;
  /** Loopback origin the callbacks are redirected to; required for 'deliver'. */
  deliverTo: URL | undefined;
  state: EmulatorState;
  stats: EmulatorStats;
  clock: Clock;
  logger: Logger;
  dispatcher: Dispatcher | undefined;
  /** Aborted when the emulator closes. */
  signal: AbortSignal;
}

const PENDING = 'webhook_callback_verification_pending';

/** Settles each new webhook subscription according to the verification mode; sends notifications and revocations. */
export class WebhookDeliveries {
  readonly #deps: VerifierDeps;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(deps: VerifierDeps) {
    this.#deps = deps;
  }

  /** Whether webhook messages can go anywhere: only with `deliverTo` (the public callbacks are never called). */
  get canDeliver(): boolean {
    return this.#deps.deliverTo !== undefined;
  }

  /** Runs after the 202 of a create has been written. */
  onCreated(subscription: StoredSubscription): void {
    const { mode } = this.#deps;
    if (mode === 'accept') this.#settle(subscription, true);
    else if (mode === 'reject') this.#settle(subscription, false);
    else this.#track(this.#deliver(subscription));
  }

  /** Sends a notification with `event` to an enabled subscription (nothing without `deliverTo`). */
  notify(subscription: StoredSubscription, event: unknown): void {
    if (subscription.wire.status !== 'enabled') return;
    this.#track(this.#send(subscription, 'notification', { event }));
  }

  /**
   * Sends one message with the given id to a webhook subscription's callback, in the background (`drain()` waits
   * for it): a notification with `event` (or the `events` of a batched type), or a revocation. False when it cannot
   * go anywhere: no `deliverTo`, or not a webhook subscription. The subscription's status is not looked at.
   */
  send(subscription: StoredSubscription, message: { messageType: 'notification' | 'revocation'; messageId: string; event?: unknown; events?: readonly unknown[] }): boolean {
    if (!this.#deps.deliverTo || subscription.wire.transport.method !== 'webhook') return false;
    this.#track(this.#send(subscription, message.messageType, message));
    return true;
  }

  /** Marks a subscription revoked with `status` and sends the revocation message. */
  revoke(subscription: StoredSubscription, status: string): void {
    if (this.#deps.state.findSubscription(subscription.wire.id) !== subscription) return;
    this.#deps.state.setSubscriptionStatus(subscription, status);
    this.#track(this.#send(subscription, 'revocation'));
  }

  #track(run: Promise<void>): void {
    const tracked = run.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  /** One message to the subscription's callback, redirected to `deliverTo`; failures are only logged. */
  async #send(
    subscription: StoredSubscription,
    messageType: 'notification' | 'revocation',
    content: { event?: unknown; events?: readonly unknown[]; messageId?: string } = {},
  ): Promise<void> {
    const { deliverTo, clock, dispatcher, signal, logger } = this.#deps;
    // Conduit subscriptions are delivered by conduits.ts.
    if (!deliverTo || subscription.wire.transport.method !== 'webhook') return;
    const callback = new URL(subscription.wire.transport.callback);
    try {
      await deliverWebhook({
        url: new URL(callback.pathname + callback.search, deliverTo.origin).toString(),
        secret: subscription.secret,
        messageType,
        subscription: structuredClone(subscription.wire),
        ...content,
        dispatcher,
        clock,
        signal,
      });
    } catch (err) {
      logger.debug(`emulator: ${messageType} not delivered`, { id: subscription.wire.id, err });
    }
  }

  /** Resolves when every verification in flight has finished (they are aborted by the emulator's signal). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  async #deliver(subscription: StoredSubscription): Promise<void> {
    const { deliverTo, stats, clock, dispatcher, signal, logger } = this.#deps;
    if (!deliverTo || subscription.wire.transport.method !== 'webhook') return;
    const callback = new URL(subscription.wire.transport.callback);
    const url = new URL(callback.pathname + callback.search, deliverTo.origin).toString();
    stats.verificationsSent += 1;
    let ok = false;
    try {
      const res = await deliverWebhook({
        url,
        secret: subscription.secret,
        messageType: 'webhook_callback_verification',
        subscription: structuredClone(subscription.wire),
        dispatcher,
        clock,
        signal,
      });
      ok = res.status === 200 && res.body === res.challenge;
      if (!ok) logger.debug('emulator: verification refused', { id: subscription.wire.id, status: res.status });
    } catch (err) {
      logger.debug('emulator: verification not delivered', { id: subscription.wire.id, err });
    }
    if (!signal.aborted) this.#settle(subscription, ok);
  }

  /** Only a subscription that still exists and is still pending changes status. */
  #settle(subscription: StoredSubscription, ok: boolean): void {
    if (this.#deps.state.findSubscription(subscription.wire.id) !== subscription) return;
    if (subscription.wire.status !== PENDING) return;
    this.#deps.state.setSubscriptionStatus(subscription, ok ? 'enabled' : 'webhook_callback_verification_failed');
  }
}
