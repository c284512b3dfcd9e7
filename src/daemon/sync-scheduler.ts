/**
 * Runs the daemon's subscription syncs: on start, on the cron schedule, on SIGHUP and soon after a
 * recoverable revocation. Never two at once: a request that arrives during a run makes exactly one more run
 * afterwards. A run that fails for a transient reason (token outage, Twitch unreachable) is retried with
 * capped backoff, so the daemon recovers by itself without a restart. Each run asks the daemon where the
 * subscriptions go (`target`) and what it owns (`ownership`) at that moment: in conduit mode the conduit may
 * not exist yet (the run is skipped; the daemon asks for one once it does) or may have been replaced.
 */
import { loadSubscriptionsFile } from '../config/subscriptions-file.js';
import type { Clock } from '../lib/clock.js';
import { toAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/retry.js';
import { planSummary } from '../subscriptions/plan.js';
import { waitingCount, type PendingGrant } from '../subscriptions/authorization.js';
import { syncSubscriptions } from '../subscriptions/sync.js';
import type { DeliveryTarget, DesiredSubscription, Ownership } from '../twitch/subscription.js';
import type { EventSubApi, UserAuthorizationApi } from '../twitch/types.js';
import type { Subscription } from '../twitch/wire.js';

export interface SyncReport {
  reason: string;
  startedAt: number;
  finishedAt: number;
  result: 'ok' | 'partial' | 'error';
  counts?: Record<string, number>;
  applied?: { created: number; adopted: number; recreated: number; deleted: number; migrated: number; failed: number };
  blocked?: Array<{ id: string; type: string; status: string }>;
  /** `current`: total_cost as this sync left it; `projected`: the plan's bound; `max`: max_total_cost. */
  cost?: { current: number; projected: number; max: number | undefined };
  /** Declared subscriptions that wait for a user's grant. */
  waitingForAuthorization?: number;
  error?: { code: string; message: string };
}

export interface SyncSchedulerOptions {
  api: EventSubApi;
  /** Get User Authorization, and TWITCH_CLIENT_ID for the implicit grant/revoke subscriptions. */
  authorizations?: UserAuthorizationApi | undefined;
  clientId?: string | undefined;
  /** The daemon's hold on creates refused for a missing grant, told what waits after each sync. */
  authorization?: { held: (d: DesiredSubscription) => boolean; onSync: (missing: readonly PendingGrant[]) => void } | undefined;
  /** Path of the subscriptions file; undefined: manage nothing (no sync runs). */
  file: string | undefined;
  /**
   * Where the declared subscriptions go now (`deliveryTarget` of config/subscriptions-file.ts). Undefined: not
   * known yet (the conduit is being created); the run is skipped, without an error. May throw a ConfigError
   * (webhook settings missing): the run reports it.
   */
  target: () => DeliveryTarget | undefined;
  /** What the daemon owns now (`ownershipOf`): the current target's and the old ones', to migrate or prune. */
  ownership: () => Ownership;
  /**
   * Runs before each sync, before `target()` is read (conduit mode: makes sure the conduit still exists, and
   * replaces it when Twitch deleted it). A failure is the run's error.
   */
  before?: ((signal: AbortSignal) => Promise<void>) | undefined;
  prune: boolean;
  /** Several replicas: false on a follower, whose requested runs are skipped (the leader syncs). Default: always true. */
  mayRun?: (() => boolean) | undefined;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  onReport?: (report: SyncReport) => void;
  onSubscriptions?: (subs: readonly Subscription[]) => void;
}

/** Codes after which a sync is retried soon: they heal by themselves. Others wait for the next trigger. */
const TRANSIENT = new Set(['TOKEN_UNAVAILABLE', 'TWITCH_UNREACHABLE', 'TWITCH_HTTP_ERROR', 'TWITCH_RATE_LIMITED', 'TWITCH_UNAUTHORIZED']);

export class SyncScheduler {
  readonly #o: SyncSchedulerOptions;
  #running: Promise<void> | undefined;
  #pending: string | undefined;
  #failures = 0;
  #closed = false;
  readonly #abort = new AbortController();
  last: SyncReport | undefined;

  constructor(options: SyncSchedulerOptions) {
    this.#o = options;
  }

  get enabled(): boolean {
    return this.#o.file !== undefined;
  }

  /** Asks for a sync; coalesces with a run in progress. Resolves when the run that covers it has finished. */
  request(reason: string): Promise<void> {
    if (this.#closed || !this.enabled) return Promise.resolve();
    if (this.#running) {
      this.#pending ??= reason;
      return this.#running;
    }
    this.#running = this.#loop(reason);
    return this.#running;
  }

  /** Asks for a sync after `delayMs` (used after a recoverable revocation, to let Twitch settle). */
  requestAfter(delayMs: number, reason: string): void {
    this.#o.clock.sleep(delayMs, this.#abort.signal).then(
      () => void this.request(reason),
      () => {},
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort(new Error('closing'));
    await this.#running?.catch(() => {});
  }

  /**
   * Runs syncs until no request is pending. It clears `#running` in the same step as its last look at
   * `#pending` (a `finally` inside, not a `.finally()` after): a request that comes in between would
   * otherwise be recorded as pending after the last look, and be lost.
   */
  async #loop(reason: string): Promise<void> {
    try {
      let next: string | undefined = reason;
      while (next !== undefined && !this.#closed) {
        const report = await this.#runOnce(next);
        next = this.#pending;
        this.#pending = undefined;
        if (report?.result === 'error' && report.error && TRANSIENT.has(report.error.code) && next === undefined) {
          this.#failures += 1;
          const wait = backoffDelay(this.#failures, { baseMs: 1000, maxMs: 300_000, random: this.#o.random });
          this.#o.logger.warn('Sync failed; retrying', { code: report.error.code, retry_in_ms: wait });
          try {
            await this.#o.clock.sleep(wait, this.#abort.signal);
          } catch {
            return;
          }
          next = this.#pending ?? 'retry';
          this.#pending = undefined;
        } else if (report && report.result !== 'error') {
          this.#failures = 0;
        }
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** One run and its report; undefined when it was skipped (no target yet): nothing to report, nothing to retry. */
  async #runOnce(reason: string): Promise<SyncReport | undefined> {
    const o = this.#o;
    const startedAt = o.clock.now();
    if (o.mayRun && !o.mayRun()) {
      o.logger.debug('Sync skipped: this replica follows, the leader syncs', { reason });
      return undefined;
    }
    try {
      await o.before?.(this.#abort.signal);
      const target = o.target();
      if (target === undefined) {
        // Not a failure: the daemon requests a sync as soon as the conduit exists.
        o.logger.info('Sync skipped: the conduit is not ready yet', { reason });
        return undefined;
      }
      const desired = await loadSubscriptionsFile(o.file!, { target });
      const outcome = await syncSubscriptions({
        api: o.api,
        authorizations: o.authorizations,
        clientId: o.clientId,
        held: o.authorization?.held,
        desired,
        ownership: o.ownership(),
        prune: o.prune,
        dryRun: false,
        signal: this.#abort.signal,
        logger: o.logger,
      });
      const r = outcome.result!;
      const report: SyncReport = {
        reason,
        startedAt,
        finishedAt: o.clock.now(),
        result: r.failed.length > 0 ? 'partial' : 'ok',
        counts: { ...planSummary(outcome.plan) },
        applied: {
          created: r.created.length,
          adopted: r.adopted.length,
          recreated: r.recreated,
          deleted: r.deleted,
          migrated: r.migrated,
          failed: r.failed.length,
        },
        blocked: outcome.plan.blocked.map((b) => ({ id: b.existing.id, type: b.existing.type, status: b.reason })),
        cost: { ...outcome.plan.cost, current: outcome.after.totalCost },
        waitingForAuthorization: waitingCount(outcome.needsAuthorization),
      };
      o.authorization?.onSync(outcome.needsAuthorization);
      o.onSubscriptions?.(outcome.after.subscriptions);
      return this.#finish(report);
    } catch (err) {
      const e = toAppError(err);
      return this.#finish({
        reason,
        startedAt,
        finishedAt: o.clock.now(),
        result: 'error',
        error: { code: e.code, message: e.message },
      });
    }
  }

  #finish(report: SyncReport): SyncReport {
    this.last = report;
    const level = report.result === 'ok' ? 'info' : 'warn';
    this.#o.logger[level]('Sync finished', {
      reason: report.reason,
      result: report.result,
      counts: report.counts,
      applied: report.applied,
      error: report.error,
      duration_ms: report.finishedAt - report.startedAt,
    });
    this.#o.onReport?.(report);
    return report;
  }
}
