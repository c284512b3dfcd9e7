/**
 * Carries out a SyncPlan against Helix: every delete first (duplicates, pruned, and the delete half of
 * each recreate: that frees cost and the 3-per-type-and-condition slots,
 * https://dev.twitch.tv/docs/eventsub/manage-subscriptions/#subscription-limits), then every
 * create, then the migrations' deletes: an old subscription (other transport, replaced conduit) is deleted
 * only once its twin on the current target exists, so that a failed create keeps the old one delivering (SPEC
 * "Conduit transport": no gap). A small worker pool bounds concurrency; pacing by `Ratelimit-*` is the
 * client's job. Per-item failures are collected; a token or abort failure stops everything at once and is rethrown.
 */
import { setMaxListeners } from 'node:events';
import { AbortedError, toAppError, type AppError, type ErrorCode } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { EventSubApi } from '../twitch/types.js';
import type { CreateSubscriptionBody, Subscription } from '../twitch/wire.js';
import { describeSubscription, describeTarget, type DesiredSubscription } from '../twitch/subscription.js';
import type { SyncPlan } from './plan.js';

/** Errors after which no other request can succeed: stop at once and rethrow. */
export const FATAL_APPLY_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'USER_TOKEN_REFUSED',
  'TOKEN_CLIENT_MISMATCH',
  'TOKEN_INVALID',
  'TWITCH_AUTH_FAILED',
  'TOKEN_UNAVAILABLE',
  'ABORTED',
]);

export const DEFAULT_APPLY_CONCURRENCY = 8;

export interface ApplyOptions {
  signal?: AbortSignal | undefined;
  /** Requests in flight at once; default 8, at least 1. */
  concurrency?: number | undefined;
  /** Called after each request (or skipped step) with the count done, the total, and both by kind. */
  onProgress?: ((done: number, total: number, progress: ApplyProgress) => void) | undefined;
  logger?: Logger | undefined;
}

/** What a step of the plan does, for people: a migration is the delete of the old twin. */
export type StepAction = 'create' | 'delete' | 'recreate' | 'migrate';

export interface ApplyFailure {
  action: StepAction;
  /** `stream.online v1 broadcaster_user_id=12345`: the subscription, without its transport. */
  key: string;
  /** The subscription id, for deletes and recreates. */
  id?: string;
  code: ErrorCode;
  message: string;
}

export interface ApplyResult {
  /** Subscriptions Twitch created for `plan.create`. */
  created: Subscription[];
  /** Creates (from `create` or `recreate`) that met a 409 and adopted the existing twin. */
  adopted: Subscription[];
  /** Recreates whose delete and create both succeeded. */
  recreated: number;
  /** Deletes of `plan.delete` done (a 404 counts: the subscription is gone either way). */
  deleted: number;
  /** Migrations done: old subscriptions deleted after their twin was there (a 404 counts). */
  migrated: number;
  failed: ApplyFailure[];
  /** Every subscription gone after the apply (deleted, migrated, or deleted to be recreated). */
  removed: Subscription[];
  /** Every subscription Twitch answered a create with (created, adopted, recreated). */
  added: Subscription[];
}

/** Steps done (succeeded, failed or skipped) and planned, by kind; a recreate counts once in each, a migration as a delete. */
export interface ApplyProgress {
  deleted: number;
  deletes: number;
  created: number;
  creates: number;
}

/** A step of the plan that was not carried out (or whose request was cut in flight). */
export interface UnappliedStep {
  action: StepAction;
  /** `stream.online v1 broadcaster_user_id=12345`. */
  key: string;
  /** The subscription id, for deletes and recreates. */
  id?: string;
}

/**
 * The apply was stopped by its signal (Ctrl-C, shutdown): what was applied before it stopped, and what was not.
 * A request in flight at that moment is listed in `remaining`, though Twitch may have carried it out: the next
 * sync settles it either way.
 */
export class ApplyInterruptedError extends AbortedError {
  readonly partial: ApplyResult;
  readonly remaining: readonly UnappliedStep[];

  constructor(init: { partial: ApplyResult; remaining: readonly UnappliedStep[] }, options: { cause?: unknown } = {}) {
    super(options);
    this.partial = init.partial;
    this.remaining = init.remaining;
  }
}

type Step =
  | { kind: 'delete'; existing: Subscription; forRecreate: boolean }
  | { kind: 'create'; desired: DesiredSubscription; recreateOf?: Subscription }
  | { kind: 'migrate'; existing: Subscription; desired: DesiredSubscription };

/**
 * Applies `plan` through `api`.
 * @throws AppError with a code in FATAL_APPLY_CODES (token refused or unavailable, aborted); other
 *   errors are reported in `failed` and the rest of the plan still runs.
 */
export async function applyPlan(plan: SyncPlan, api: EventSubApi, options: ApplyOptions = {}): Promise<ApplyResult> {
  const outer = options.signal;
  if (outer?.aborted) throw new AbortedError({ cause: outer.reason });
  const logger = options.logger ?? silentLogger;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_APPLY_CONCURRENCY) || 1);
  const result = emptyResult();
  const progress: ApplyProgress = {
    deleted: 0,
    deletes: plan.delete.length + plan.recreate.length + plan.migrate.length,
    created: 0,
    creates: plan.create.length + plan.recreate.length,
  };
  const total = progress.deletes + progress.creates;
  const tick = (kind: Step['kind']): void => {
    if (kind !== 'create') progress.deleted += 1;
    else progress.created += 1;
    options.onProgress?.(progress.deleted + progress.created, total, { ...progress });
  };

  // One controller for every request: a fatal error or the caller's abort cancels what is in flight.
  const controller = new AbortController();
  // Each in-flight request (pacer wait, undici) listens on this signal: up to a few per worker, and Node
  // warns past 10 listeners (MaxListenersExceededWarning) although they are all removed afterwards.
  setMaxListeners(Math.max(10, concurrency * 4), controller.signal);
  const onAbort = (): void => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onAbort, { once: true });
  /** The first fatal error of a step (set from the pool's workers). */
  const failed: { fatal?: AppError } = {};
  const stopIfFailed = (): void => {
    if (failed.fatal) throw failed.fatal;
    if (outer?.aborted) throw new AbortedError({ cause: outer.reason });
  };
  const ctx: RunContext = {
    api,
    logger,
    result,
    signal: controller.signal,
    tick,
    deletedForRecreate: new Set(),
    alive: new Set(plan.keep.map((k) => k.desired)),
  };
  /** Steps not yet finished: what an interruption reports as remaining. */
  const left = new Set<Step>();
  const run = async (step: Step): Promise<void> => {
    try {
      await runStep(step, ctx);
      left.delete(step);
    } catch (err) {
      // runStep records ordinary failures itself: what escapes is fatal (or a bug, treated alike).
      failed.fatal ??= toAppError(err);
      controller.abort(failed.fatal);
    }
  };

  const deletes: Step[] = [
    ...plan.delete.map((d): Step => ({ kind: 'delete', existing: d.existing, forRecreate: false })),
    ...plan.recreate.map((r): Step => ({ kind: 'delete', existing: r.existing, forRecreate: true })),
  ];
  const creates: Step[] = [
    ...plan.recreate.map((r): Step => ({ kind: 'create', desired: r.desired, recreateOf: r.existing })),
    ...plan.create.map((d): Step => ({ kind: 'create', desired: d })),
  ];
  const migrations = plan.migrate.map((m): Step => ({ kind: 'migrate', existing: m.existing, desired: m.desired }));
  for (const step of [...deletes, ...creates, ...migrations]) left.add(step);
  try {
    await runPool(deletes, concurrency, run, () => controller.signal.aborted);
    stopIfFailed();
    await runPool(creates, concurrency, run, () => controller.signal.aborted);
    stopIfFailed();
    await runPool(migrations, concurrency, run, () => controller.signal.aborted);
    stopIfFailed();
    return result;
  } catch (err) {
    // Stopped by the caller (Ctrl-C, shutdown): say what was done and what was not, rather than only "aborted".
    if (outer?.aborted) throw new ApplyInterruptedError({ partial: result, remaining: unapplied(left) }, { cause: err });
    throw err;
  } finally {
    outer?.removeEventListener('abort', onAbort);
  }
}

/** An ApplyResult with nothing done: what an empty plan applies to. */
export function emptyResult(): ApplyResult {
  return { created: [], adopted: [], recreated: 0, deleted: 0, migrated: 0, failed: [], removed: [], added: [] };
}

/** The steps in `left` as a person reads them: one entry per subscription (both halves of a recreate are one). */
function unapplied(left: ReadonlySet<Step>): UnappliedStep[] {
  const out = new Map<string, UnappliedStep>();
  for (const step of left) {
    const entry: UnappliedStep =
      step.kind === 'migrate'
        ? { action: 'migrate', key: describeSubscription(step.existing), id: step.existing.id }
        : step.kind === 'delete'
          ? { action: step.forRecreate ? 'recreate' : 'delete', key: describeSubscription(step.existing), id: step.existing.id }
          : step.recreateOf
            ? { action: 'recreate', key: describeSubscription(step.desired), id: step.recreateOf.id }
            : { action: 'create', key: describeSubscription(step.desired) };
    out.set(`${entry.action} ${entry.key} ${entry.id ?? ''}`, entry);
  }
  return [...out.values()];
}

interface RunContext {
  api: EventSubApi;
  logger: Logger;
  result: ApplyResult;
  signal: AbortSignal;
  tick: (kind: Step['kind']) => void;
  /** The recreate targets whose delete half succeeded (their create half may run). */
  deletedForRecreate: Set<Subscription>;
  /** Desired entries that exist on their target: kept by the plan, or created, adopted or recreated here. */
  alive: Set<DesiredSubscription>;
}

/** Runs one step; records a non-fatal failure in `result.failed`, rethrows a fatal one. */
async function runStep(step: Step, ctx: RunContext): Promise<void> {
  if (step.kind === 'delete') await runDelete(step.existing, step.forRecreate ? 'recreate' : 'delete', ctx);
  else if (step.kind === 'migrate') await runMigrate(step.existing, step.desired, ctx);
  else await runCreate(step.desired, step.recreateOf, ctx);
}

/** The old twin goes only if the new one is there: a failed (or blocked) create leaves it delivering. */
async function runMigrate(existing: Subscription, desired: DesiredSubscription, ctx: RunContext): Promise<void> {
  if (!ctx.alive.has(desired)) {
    ctx.logger.info('Kept a subscription on its old transport: its twin on the current one does not exist', {
      subscription: describeSubscription(existing),
      id: existing.id,
      from: describeTarget(existing),
      to: describeTarget(desired),
    });
    ctx.tick('migrate');
    return;
  }
  await runDelete(existing, 'migrate', ctx);
}

async function runDelete(existing: Subscription, action: 'delete' | 'recreate' | 'migrate', ctx: RunContext): Promise<void> {
  const isRecreate = action === 'recreate';
  const key = describeSubscription(existing);
  try {
    await ctx.api.delete(existing.id, { signal: ctx.signal });
    const msg = action === 'migrate' ? 'Deleted subscription migrated to its twin' : 'Deleted subscription';
    ctx.logger.info(msg, { subscription: key, id: existing.id, status: existing.status, ...(action === 'migrate' ? { from: describeTarget(existing) } : {}) });
  } catch (err) {
    const error = toAppError(err);
    if (error.code !== 'SUBSCRIPTION_NOT_FOUND') {
      if (FATAL_APPLY_CODES.has(error.code)) throw error;
      record(ctx, { action, key, id: existing.id }, error);
      ctx.tick('delete');
      return;
    }
    ctx.logger.info('Subscription to delete was already gone', { subscription: key, id: existing.id });
  }
  if (isRecreate) ctx.deletedForRecreate.add(existing);
  else if (action === 'migrate') ctx.result.migrated += 1;
  else ctx.result.deleted += 1;
  ctx.result.removed.push(existing);
  ctx.tick('delete');
}

async function runCreate(
  desired: DesiredSubscription,
  recreateOf: Subscription | undefined,
  ctx: RunContext,
): Promise<void> {
  const key = describeSubscription(desired);
  const action = recreateOf ? 'recreate' : 'create';
  // The old one still exists: creating now would draw a 409 and adopt the broken twin.
  if (recreateOf && !ctx.deletedForRecreate.has(recreateOf)) {
    ctx.tick('create');
    return;
  }
  const body = createBody(desired);
  try {
    const created = await ctx.api.create(body, { signal: ctx.signal });
    const sub = created.subscription;
    if (created.adopted) ctx.result.adopted.push(sub);
    else if (!recreateOf) ctx.result.created.push(sub);
    if (recreateOf) ctx.result.recreated += 1;
    ctx.result.added.push(sub);
    ctx.alive.add(desired);
    const verb = created.adopted ? 'Adopted existing' : recreateOf ? 'Recreated' : 'Created';
    const msg = `${verb} subscription`;
    ctx.logger.info(msg, { subscription: key, id: sub.id, status: sub.status });
  } catch (err) {
    const error = toAppError(err);
    if (FATAL_APPLY_CODES.has(error.code)) throw error;
    record(ctx, recreateOf ? { action, key, id: recreateOf.id } : { action, key }, error);
  }
  ctx.tick('create');
}

/** The Create Subscription body for `desired`, on its target (https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription). */
export function createBody(desired: DesiredSubscription): CreateSubscriptionBody {
  const t = desired.transport;
  return {
    type: desired.type,
    version: desired.version,
    condition: { ...desired.condition },
    transport: t.method === 'webhook' ? { method: 'webhook', callback: t.callback, secret: t.secret } : { method: 'conduit', conduit_id: t.conduit_id },
  };
}

function record(ctx: RunContext, what: Omit<ApplyFailure, 'code' | 'message'>, error: AppError): void {
  ctx.result.failed.push({ ...what, code: error.code, message: error.message });
  // A missing grant is reported by the sync, once per user: not a failure of ours to warn about here.
  if (error.code === 'AUTHORIZATION_MISSING') ctx.logger.info(`Subscription ${what.action} waits for a user's authorization`, { subscription: what.key, id: what.id });
  else ctx.logger.warn(`Subscription ${what.action} failed`, { subscription: what.key, id: what.id, err: error });
}

/**
 * Runs `worker` over `items` with at most `limit` in flight, in order of `items`. Stops taking new items
 * once `stop()` is true. Waits for every runner; if a worker rejected, rethrows the first rejection.
 */
export async function runPool<T>(
  items: readonly T[],
  limit: number,
  worker: (item: T) => Promise<void>,
  stop: () => boolean,
): Promise<void> {
  let next = 0;
  const runner = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const item = items[next++] as T;
      await worker(item);
    }
  };
  const runners = Array.from({ length: Math.min(limit, items.length) }, runner);
  const outcomes = await Promise.allSettled(runners);
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failure) throw failure.reason;
}
