/**
 * The pure core of declarative sync: diff the desired subscriptions against what Twitch lists, and say
 * what to create, recreate, migrate, delete, keep or report. No I/O; `applyPlan` carries a plan out.
 * Ownership (SPEC "Conduit transport", "Subscriptions"): a subscription is ours when it is a webhook whose
 * callback equals EVENTSUB_CALLBACK_URL, or when it is on one of our conduits (the current one and those it
 * replaced). Nothing else is ever touched, whatever `prune` says.
 */
import type { Subscription } from '../twitch/wire.js';
import {
  describeSubscription,
  describeTarget,
  isOwned,
  subscriptionKey,
  targetOf,
  type DesiredSubscription,
  type Ownership,
} from '../twitch/subscription.js';
import { statusAction } from './status.js';

export interface PairedAction {
  desired: DesiredSubscription;
  existing: Subscription;
}

export interface SyncPlan {
  create: DesiredSubscription[];
  /** Delete `existing`, then create `desired` again. */
  recreate: PairedAction[];
  /** Owned subscriptions to delete: not declared (with prune) or extra copies of a declared one. */
  delete: { existing: Subscription; reason: 'pruned' | 'duplicate' }[];
  /**
   * Owned subscriptions on another owned target (the old transport after EVENTSUBD_TRANSPORT changed, or a
   * replaced conduit) whose type, version and condition are declared: deleted once `desired` exists on its own
   * target (kept, created, adopted or recreated), never before: no gap in delivery (while the twin is blocked or
   * its create fails, the old one stays, and is planned again next time). Not a prune: done without it.
   */
  migrate: PairedAction[];
  keep: PairedAction[];
  /** Declared, but Twitch disabled it for a reason we cannot fix (the status): reported, left alone. */
  blocked: (PairedAction & { reason: string })[];
  /** Owned, not declared, and prune is off: reported only. */
  unmanaged: Subscription[];
  /**
   * `current`: Twitch's `total_cost` (or the sum of listed costs). `projected`: an upper bound after
   * apply, assuming every listed subscription's cost counts: deletes and migrations free their cost, each
   * create is counted at 1 (a webhook or a conduit subscription costs 0 or 1), each recreate takes its old
   * cost again. While an apply runs, a migrating subscription and its twin both count.
   * `max`: Twitch's `max_total_cost`, when known.
   */
  cost: { current: number; projected: number; max: number | undefined };
}

export interface PlanOptions {
  /**
   * What this daemon owns. The target of each desired entry (its `transport`) is owned too, whatever this
   * says: what sync creates is always its own to find again.
   */
  ownership: Ownership;
  /** Delete owned subscriptions that are not declared. */
  prune: boolean;
  /** `total_cost` from the list answer; defaults to the sum of `actual[].cost`. */
  totalCost?: number | undefined;
  /** `max_total_cost` from the list answer. */
  maxTotalCost?: number | undefined;
}

/**
 * Diffs `desired` against `actual` (every listed subscription, owned or not). Pure and deterministic.
 * Each desired entry is matched on its own target (`targetOf(desired)`). Several owned subscriptions matching
 * one desired entry there: the best is used (enabled, then pending, then any other, oldest first) and the rest
 * are deleted as duplicates even without prune: duplicates cost money and deliver every event twice (lessons 1).
 * An owned twin on another owned target is a migration (see `SyncPlan.migrate`).
 */
export function planSync(
  desired: readonly DesiredSubscription[],
  actual: readonly Subscription[],
  options: PlanOptions,
): SyncPlan {
  const targets = new Set(desired.map((d) => targetOf(d)));
  const owned = new Map<string, Subscription[]>();
  for (const sub of actual) {
    if (!isOwned(sub, options.ownership) && !targets.has(targetOf(sub))) continue;
    const key = subscriptionKey(sub.type, sub.version, sub.condition, targetOf(sub));
    const list = owned.get(key);
    if (list) list.push(sub);
    else owned.set(key, [sub]);
  }

  const plan: SyncPlan = {
    create: [],
    recreate: [],
    delete: [],
    migrate: [],
    keep: [],
    blocked: [],
    unmanaged: [],
    cost: { current: 0, projected: 0, max: options.maxTotalCost },
  };
  /** Declared entries by type, version and condition (no target): what an owned subscription elsewhere migrates to. */
  const byShape = new Map<string, DesiredSubscription>();
  for (const want of desired) {
    byShape.set(subscriptionKey(want.type, want.version, want.condition, ''), want);
    const key = subscriptionKey(want.type, want.version, want.condition, targetOf(want));
    const matches = owned.get(key);
    owned.delete(key);
    if (!matches || matches.length === 0) {
      plan.create.push(want);
      continue;
    }
    const [best, ...extras] = [...matches].sort(byPreference);
    for (const extra of extras) plan.delete.push({ existing: extra, reason: 'duplicate' });
    if (!best) continue;
    const action = statusAction(best.status);
    if (action === 'keep') plan.keep.push({ desired: want, existing: best });
    else if (action === 'recreate') plan.recreate.push({ desired: want, existing: best });
    else plan.blocked.push({ desired: want, existing: best, reason: best.status });
  }
  for (const leftovers of owned.values()) {
    for (const sub of leftovers) {
      const twin = targets.has(targetOf(sub)) ? undefined : byShape.get(subscriptionKey(sub.type, sub.version, sub.condition, ''));
      if (twin) plan.migrate.push({ desired: twin, existing: sub });
      else if (options.prune) plan.delete.push({ existing: sub, reason: 'pruned' });
      else plan.unmanaged.push(sub);
    }
  }

  const current = options.totalCost ?? actual.reduce((sum, s) => sum + s.cost, 0);
  const blocked = new Set(plan.blocked.map((b) => b.desired));
  // A migration whose twin is blocked waits (apply keeps the old one): its cost is not freed.
  const migrating = plan.migrate.filter((m) => !blocked.has(m.desired));
  const freed = [...plan.delete, ...migrating].reduce((sum, d) => sum + d.existing.cost, 0);
  // A recreate frees its old cost and takes it again: no change to the projection.
  plan.cost.current = current;
  plan.cost.projected = Math.max(0, current - freed) + plan.create.length;
  return plan;
}

/** Enabled first, then pending, then anything else; then the oldest; then by id, for determinism. */
function byPreference(a: Subscription, b: Subscription): number {
  const rank = (s: Subscription): number =>
    s.status === 'enabled' ? 0 : s.status === 'webhook_callback_verification_pending' ? 1 : 2;
  return (
    rank(a) - rank(b) ||
    Date.parse(a.created_at) - Date.parse(b.created_at) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

export interface PlanSummary {
  create: number;
  recreate: number;
  migrate: number;
  delete: number;
  keep: number;
  blocked: number;
  unmanaged: number;
}

/** Counts by action, for `--json`, `/status` and logs. */
export function planSummary(plan: SyncPlan): PlanSummary {
  return {
    create: plan.create.length,
    recreate: plan.recreate.length,
    migrate: plan.migrate.length,
    delete: plan.delete.length,
    keep: plan.keep.length,
    blocked: plan.blocked.length,
    unmanaged: plan.unmanaged.length,
  };
}

/** True when applying the plan would send no write to Twitch. */
export function planIsEmpty(plan: SyncPlan): boolean {
  return plan.create.length === 0 && plan.recreate.length === 0 && plan.delete.length === 0 && plan.migrate.length === 0;
}

/**
 * Human lines, one per change (`+ create`, `~ recreate`, `> migrate`, `- delete`, `! blocked`, `? unmanaged`),
 * a count of kept subscriptions, a cost line and a summary line (which names migrations only when there are
 * some). Never contains a secret (a migration names the targets as `webhook` or `conduit <id>`, nothing more).
 */
export function formatPlan(plan: SyncPlan): string[] {
  const lines: string[] = [];
  for (const d of plan.create) lines.push(`+ create ${describeSubscription(d)}`);
  for (const r of plan.recreate) {
    lines.push(`~ recreate ${describeSubscription(r.desired)} (was ${r.existing.status}, id ${r.existing.id})`);
  }
  for (const m of plan.migrate) {
    lines.push(
      `> migrate ${describeSubscription(m.desired)} (${describeTarget(m.existing)} -> ${describeTarget(m.desired)}, id ${m.existing.id})`,
    );
  }
  for (const d of plan.delete) {
    lines.push(`- delete ${describeSubscription(d.existing)} (${d.reason}, id ${d.existing.id})`);
  }
  for (const b of plan.blocked) {
    lines.push(`! blocked ${describeSubscription(b.desired)} (${b.reason}, id ${b.existing.id})`);
  }
  for (const u of plan.unmanaged) {
    lines.push(`? unmanaged ${describeSubscription(u)} (not declared; prune is off, id ${u.id})`);
  }
  lines.push(`= keep ${plan.keep.length} unchanged`);
  const { current, projected, max } = plan.cost;
  lines.push(`cost: ${current} now, at most ${projected} after apply${max === undefined ? '' : ` (max ${max})`}`);
  const s = planSummary(plan);
  lines.push(
    `plan: ${s.create} to create, ${s.recreate} to recreate, ${s.migrate > 0 ? `${s.migrate} to migrate, ` : ''}` +
      `${s.delete} to delete, ${s.keep} to keep, ` +
      `${s.blocked} blocked, ${s.unmanaged} unmanaged`,
  );
  return lines;
}
