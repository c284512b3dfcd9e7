/**
 * One declarative sync: list every subscription once (all pages, no filter: the fewest GETs), plan, and
 * apply unless it is a dry run. Idempotent: a second sync of an unchanged state sends no write.
 *
 * Authorization (README "User authorization"): when a declared type needs a user's grant, the implicit
 * `user.authorization.grant`/`revoke` subscriptions are added; a create Twitch refuses for a missing grant is not
 * a failure but a `needsAuthorization` entry (who must grant what); a subscription revoked with
 * `authorization_revoked` is recreated once Twitch shows the grant again
 * (https://dev.twitch.tv/docs/api/reference/#get-user-authorization), and reported as waiting until then.
 */
import { toAppError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { missingGrants } from '../twitch/scopes.js';
import type { EventSubApi, UserAuthorizationApi } from '../twitch/types.js';
import type { Subscription } from '../twitch/wire.js';
import { applyPlan, emptyResult, type ApplyFailure, type ApplyOptions, type ApplyResult } from './apply.js';
import { describeSubscription, subscriptionKey, targetOf, type DesiredSubscription, type Ownership } from '../twitch/subscription.js';
import { IMPLICIT_TYPES, anyNeedsAuthorization, pendingGrants, usersToCheck, type PendingGrant } from './authorization.js';
import { planIsEmpty, planSummary, planSync, type SyncPlan } from './plan.js';

/** The status of a subscription whose user disconnected the app: recreated once the grant is back. */
const AUTHORIZATION_REVOKED = 'authorization_revoked';

export interface SyncOptions {
  api: EventSubApi;
  /** The declared subscriptions, each with its delivery target (every one the same: the current transport). */
  desired: readonly DesiredSubscription[];
  /**
   * What this daemon owns (`ownershipOf` in config/subscriptions-file.ts): owned subscriptions on another target
   * are migrated to the desired one, or pruned. The desired entries' own target is always owned.
   */
  ownership?: Ownership | undefined;
  /** Shorthand for `ownership: { callbackUrl, conduitIds: [] }`: webhook mode with no conduit ever used. */
  callbackUrl?: string | undefined;
  /** Delete owned subscriptions the file does not declare. */
  prune: boolean;
  /** Plan only: no create or delete is sent. */
  dryRun: boolean;
  signal?: AbortSignal | undefined;
  onProgress?: ApplyOptions['onProgress'];
  /** Called with the plan just before it is applied (not on a dry run, nor when it is empty): to show it first. */
  onPlan?: ((plan: SyncPlan) => void) | undefined;
  logger?: Logger | undefined;
  /** Requests in flight at once during apply (default 8). */
  concurrency?: number | undefined;
  /**
   * TWITCH_CLIENT_ID: the condition of the implicit `user.authorization.grant`/`revoke` subscriptions, added when
   * a declared type needs a user's grant. Undefined: none are added.
   */
  clientId?: string | undefined;
  /** Get User Authorization (app token): who granted what. Without it, waiting users are told from the creates refused. */
  authorizations?: UserAuthorizationApi | undefined;
  /**
   * Creates the caller holds back (the daemon, for an hour after Twitch refused one for a missing grant): not sent
   * unless Twitch now shows the grant, and reported as waiting.
   */
  held?: ((desired: DesiredSubscription) => boolean) | undefined;
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
  /**
   * The users whose grant declared subscriptions wait for, with the scopes and the subscriptions: creates Twitch
   * refused (403 missing authorization) or that were held, subscriptions revoked with `authorization_revoked`, and
   * on a dry run every declared subscription whose user has not granted what it needs.
   */
  needsAuthorization: PendingGrant[];
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
  const desired = withImplicit(options.desired, options.clientId);
  const listed = await options.api.list({}, { signal: options.signal });
  const plan = planSync(desired, listed.subscriptions, {
    ownership: options.ownership ?? { callbackUrl: options.callbackUrl, conduitIds: [] },
    prune: options.prune,
    totalCost: listed.totalCost,
    maxTotalCost: listed.maxTotalCost,
  });
  const grants = new GrantView(options, logger);
  const before: SubscriptionState = { subscriptions: listed.subscriptions, totalCost: plan.cost.current };
  if (options.dryRun) {
    // Every declared subscription whose user has not granted what it needs, as Twitch tells.
    const needsAuthorization = await grants.pending(desired.filter((d) => usersToCheck([d]).length > 0));
    logPlan(logger, plan, options.dryRun, listed.pages);
    return { plan, listPages: listed.pages, actual: listed.subscriptions, after: before, needsAuthorization };
  }
  const waiting = await admitAuthorized(plan, grants, options.held);
  logPlan(logger, plan, options.dryRun, listed.pages);

  if (!planIsEmpty(plan)) options.onPlan?.(plan);
  const applied: ApplyResult = planIsEmpty(plan)
    ? emptyResult()
    : await applyPlan(plan, options.api, {
        signal: options.signal,
        concurrency: options.concurrency,
        onProgress: options.onProgress,
        logger,
      });
  // A create refused for a missing grant waits for a user: reported as such, not as a failure.
  const byKey = new Map(desired.map((d) => [describeSubscription(d), d]));
  const refused = (f: ApplyFailure): DesiredSubscription | undefined =>
    f.code === 'AUTHORIZATION_MISSING' && (f.action === 'create' || f.action === 'recreate') ? byKey.get(f.key) : undefined;
  for (const f of applied.failed) {
    const d = refused(f);
    if (d) waiting.push(d);
  }
  const result: ApplyResult = { ...applied, failed: applied.failed.filter((f) => !refused(f)) };
  const needsAuthorization = await grants.pending(waiting);
  logger.info('Subscription sync applied', {
    created: result.created.length,
    adopted: result.adopted.length,
    recreated: result.recreated,
    deleted: result.deleted,
    migrated: result.migrated,
    failed: result.failed.length,
    waiting_for_authorization: waiting.length,
  });
  return { plan, result, listPages: listed.pages, actual: listed.subscriptions, after: stateAfter(before, result), needsAuthorization };
}

function logPlan(logger: Logger, plan: SyncPlan, dryRun: boolean, listPages: number): void {
  logger.info('Subscription plan', { ...planSummary(plan), cost: plan.cost, dryRun, listPages });
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
}

/**
 * `desired` plus `user.authorization.grant` and `user.authorization.revoke` (v1, condition `client_id`) when a
 * declared type needs a user's grant (https://dev.twitch.tv/docs/eventsub/eventsub-subscription-types/#userauthorizationgrant):
 * so that a new grant is acted on at once and a disconnect is seen. They go to the same target as the declared
 * ones (a webhook, or the conduit). A declared twin is not added twice.
 */
export function withImplicit(desired: readonly DesiredSubscription[], clientId: string | undefined): readonly DesiredSubscription[] {
  const first = desired[0];
  if (clientId === undefined || !first || !anyNeedsAuthorization(desired)) return desired;
  const keys = new Set(desired.map((d) => subscriptionKey(d.type, d.version, d.condition, targetOf(d))));
  const implicit = IMPLICIT_TYPES.map((type): DesiredSubscription => ({ type, version: '1', condition: { client_id: clientId }, transport: first.transport, implicit: true }))
    .filter((d) => !keys.has(subscriptionKey(d.type, d.version, d.condition, targetOf(d))));
  return [...desired, ...implicit];
}

/**
 * Before the apply: held creates go ahead only if Twitch now shows their grant; subscriptions revoked with
 * `authorization_revoked` are recreated once it does. Moves those into the plan and returns the rest, which wait.
 */
async function admitAuthorized(plan: SyncPlan, grants: GrantView, held: SyncOptions['held']): Promise<DesiredSubscription[]> {
  const heldCreates = held ? plan.create.filter((d) => held(d)) : [];
  const revoked = plan.blocked.filter((b) => b.reason === AUTHORIZATION_REVOKED);
  if (heldCreates.length === 0 && revoked.length === 0) return [];
  await grants.load([...heldCreates, ...revoked.map((b) => b.desired)]);
  const waiting: DesiredSubscription[] = [];
  const stillHeld = new Set(heldCreates.filter((d) => !grants.covers(d)));
  plan.create = plan.create.filter((d) => !stillHeld.has(d));
  waiting.push(...stillHeld);
  const back = new Set(revoked.filter((b) => grants.covers(b.desired)));
  plan.blocked = plan.blocked.filter((b) => !back.has(b));
  plan.recreate.push(...[...back].map((b) => ({ desired: b.desired, existing: b.existing })));
  waiting.push(...revoked.filter((b) => !back.has(b)).map((b) => b.desired));
  return waiting;
}

/**
 * Twitch's view of the grants of the users a sync asks about, fetched once per user. A failure to ask is logged
 * and read as "nothing known": the subscriptions then wait for every user they name, as if none had granted.
 */
class GrantView {
  readonly #api: UserAuthorizationApi | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #logger: Logger;
  /** User → the scopes Twitch shows granted (empty: absent from its answer, granted nothing). */
  readonly #granted = new Map<string, ReadonlySet<string>>();
  #known = false;

  constructor(options: SyncOptions, logger: Logger) {
    this.#api = options.authorizations;
    this.#signal = options.signal;
    this.#logger = logger;
  }

  async load(subs: readonly DesiredSubscription[]): Promise<void> {
    const users = usersToCheck(subs).filter((u) => !this.#granted.has(u));
    if (!this.#api || users.length === 0) return;
    try {
      const view = await this.#api.userAuthorizations(users, { signal: this.#signal });
      for (const u of users) this.#granted.set(u, new Set());
      for (const v of view) this.#granted.set(v.user_id, new Set(v.scopes));
      this.#known = true;
    } catch (err) {
      const e = toAppError(err);
      if (e.code === 'ABORTED') throw e;
      this.#logger.warn('Could not ask Twitch which users authorized the app', { error: e });
    }
  }

  /** True when Twitch shows every grant `d` needs. */
  covers(d: DesiredSubscription): boolean {
    return this.#known && missingGrants(d, (u) => this.#granted.get(u)).length === 0;
  }

  /**
   * Who must grant what for `subs`. A subscription Twitch refused although its view shows the grants (a grant
   * not yet seen everywhere) waits for all its users.
   */
  async pending(subs: readonly DesiredSubscription[]): Promise<PendingGrant[]> {
    if (subs.length === 0) return [];
    await this.load(subs);
    const explained = subs.filter((d) => pendingGrants([d], this.#granted).length > 0);
    const unexplained = subs.filter((d) => !explained.includes(d));
    return mergePending([...pendingGrants(explained, this.#granted), ...pendingGrants(unexplained, new Map())]);
  }
}

/** One entry per user (scopes, fields and subscriptions merged), sorted by user id. */
function mergePending(list: readonly PendingGrant[]): PendingGrant[] {
  const byUser = new Map<string, PendingGrant>();
  for (const p of list) {
    const q = byUser.get(p.userId);
    if (!q) {
      byUser.set(p.userId, { ...p, fields: [...p.fields], scopes: [...p.scopes], waiting: [...p.waiting] });
      continue;
    }
    for (const f of p.fields) if (!q.fields.includes(f)) q.fields.push(f);
    for (const s of p.scopes) if (!q.scopes.includes(s)) q.scopes.push(s);
    for (const w of p.waiting) if (!q.waiting.includes(w)) q.waiting.push(w);
  }
  return [...byUser.values()].map((p) => ({ ...p, scopes: p.scopes.sort() })).sort((a, b) => a.userId.localeCompare(b.userId));
}
