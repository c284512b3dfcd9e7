/**
 * The webhook callback verification that follows a 202
 * (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request): exactly status 200 with the
 * raw challenge as body enables the subscription; anything else fails it.
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

/** Settles each new webhook subscription according to the verification mode; tracks deliveries in flight. */
export class Verifier {
  readonly #deps: VerifierDeps;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(deps: VerifierDeps) {
    this.#deps = deps;
  }

  /** Runs after the 202 of a create has been written. */
  onCreated(subscription: StoredSubscription): void {
    const { mode } = this.#deps;
    if (mode === 'accept') this.#settle(subscription, true);
    else if (mode === 'reject') this.#settle(subscription, false);
    else {
      const run = this.#deliver(subscription).finally(() => this.#inFlight.delete(run));
      this.#inFlight.add(run);
    }
  }

  /** Resolves when every verification in flight has finished (they are aborted by the emulator's signal). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  async #deliver(subscription: StoredSubscription): Promise<void> {
    const { deliverTo, stats, clock, dispatcher, signal, logger } = this.#deps;
    if (!deliverTo) return;
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
