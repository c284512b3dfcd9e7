/**
 * One declarative sync: list every subscription once (all pages, no filter: the fewest GETs), plan, and
 * apply unless it is a dry run. Idempotent: a second sync of an unchanged state sends no write.
 */
import { silentLogger, type Logger } from '../lib/logger.js';
import type { EventSubApi } from '../twitch/types.js';
import type { Subscription } from '../twitch/wire.js';
import { applyPlan, type ApplyResult } from './apply.js';
import type { DesiredSubscription } from '../twitch/subscription.js';
import { planIsEmpty, planSummary, planSync, type SyncPlan } from './plan.js';

export interface SyncOptions {
  api: EventSubApi;
  desired: readonly DesiredSubscription[];
  /** EVENTSUB_CALLBACK_URL: what this daemon owns. */
  callbackUrl: string;
  /** Delete owned subscriptions the file does not declare. */
  prune: boolean;
  /** Plan only: no create or delete is sent. */
  dryRun: boolean;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
  logger?: Logger | undefined;
  /** Requests in flight at once during apply (default 8). */
  concurrency?: number | undefined;
}

export interface SyncOutcome {
  plan: SyncPlan;
  /** Absent on a dry run. */
  result?: ApplyResult;
  /** GET requests the listing took. */
  listPages: number;
  /** What Twitch listed before the apply (every owner). */
  actual: readonly Subscription[];
  /** The subscriptions and their total cost as the apply left them (as listed on a dry run). */
  after: SubscriptionState;
}

export interface SubscriptionState {
  subscriptions: readonly Subscription[];
  totalCost: number;
}

/**
 * What the subscriptions are after `result` was applied to `listed`, as far as Twitch's answers tell, without
 * another listing: the removed ones gone, the created or adopted ones in (by id), and the total cost moved
 * by the difference of their costs.
 */
export function stateAfter(listed: SubscriptionState, result: Pick<ApplyResult, 'removed' | 'added'>): SubscriptionState {
  const byId = new Map(listed.subscriptions.map((s) => [s.id, s]));
  for (const s of result.removed) byId.delete(s.id);
  for (const s of result.added) byId.set(s.id, s);
  const sum = (subs: Iterable<Subscription>): number => {
    let total = 0;
    for (const s of subs) total += s.cost;
    return total;
  };
  return { subscriptions: [...byId.values()], totalCost: listed.totalCost + sum(byId.values()) - sum(listed.subscriptions) };
}

/**
 * Lists, plans and (unless `dryRun`) applies.
 * @throws whatever `api.list` throws (nothing is changed then), and the fatal codes of `applyPlan`.
 */
export async function syncSubscriptions(options: SyncOptions): Promise<SyncOutcome> {
  const logger = options.logger ?? silentLogger;
  const listed = await options.api.list({}, { signal: options.signal });
  const plan = planSync(options.desired, listed.subscriptions, {
    callbackUrl: options.callbackUrl,
    prune: options.prune,
    totalCost: listed.totalCost,
    maxTotalCost: listed.maxTotalCost,
  });
  const summary = planSummary(plan);
  logger.info('Subscription plan', { ...summary, cost: plan.cost, dryRun: options.dryRun, listPages: listed.pages });
  for (const b of plan.blocked) {
    logger.warn('Declared subscription is disabled by Twitch and will not be recreated', {
      type: b.desired.type,
      version: b.desired.version,
      id: b.existing.id,
      reason: b.reason,
    });
  }
  if (plan.cost.max !== undefined && plan.cost.projected > plan.cost.max) {
    // projected is an upper bound (creates counted at 1): warn, let Twitch be the judge.
    logger.warn('Projected subscription cost may exceed max_total_cost', { cost: plan.cost });
  }
  const before: SubscriptionState = { subscriptions: listed.subscriptions, totalCost: plan.cost.current };
  if (options.dryRun) return { plan, listPages: listed.pages, actual: listed.subscriptions, after: before };

  const result: ApplyResult = planIsEmpty(plan)
    ? { created: [], adopted: [], recreated: 0, deleted: 0, failed: [], removed: [], added: [] }
    : await applyPlan(plan, options.api, {
        signal: options.signal,
        concurrency: options.concurrency,
        onProgress: options.onProgress,
        logger,
      });
  logger.info('Subscription sync applied', {
    created: result.created.length,
    adopted: result.adopted.length,
    recreated: result.recreated,
    deleted: result.deleted,
    failed: result.failed.length,
  });
  return { plan, result, listPages: listed.pages, actual: listed.subscriptions, after: stateAfter(before, result) };
}
