/**
 * Carries out a SyncPlan against Helix: every delete first (duplicates, pruned, and the delete half of
 * each recreate: that frees cost and the 3-per-type-and-condition slots,
 * https://dev.twitch.tv/docs/eventsub/manage-subscriptions/#subscription-limits), then every
 * create. A small worker pool bounds concurrency; pacing by `Ratelimit-*` is the client's job.
 * Per-item failures are collected; a token or abort failure stops everything at once and is rethrown.
 */
import { setMaxListeners } from 'node:events';
import { AbortedError, toAppError, type AppError, type ErrorCode } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { EventSubApi } from '../twitch/types.js';
import type { CreateSubscriptionBody, Subscription } from '../twitch/wire.js';
import { describeSubscription, type DesiredSubscription } from '../twitch/subscription.js';
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

export interface ApplyFailure {
  action: 'create' | 'delete' | 'recreate';
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
  failed: ApplyFailure[];
  /** Every subscription gone after the apply (deleted, or deleted to be recreated). */
  removed: Subscription[];
  /** Every subscription Twitch answered a create with (created, adopted, recreated). */
  added: Subscription[];
}

/** Steps done (succeeded or failed) and planned, by kind; a recreate counts once in each. */
export interface ApplyProgress {
  deleted: number;
  deletes: number;
  created: number;
  creates: number;
}

/** A step of the plan that was not carried out (or whose request was cut in flight). */
export interface UnappliedStep {
  action: 'create' | 'delete' | 'recreate';
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
  | { kind: 'create'; desired: DesiredSubscription; recreateOf?: Subscription };

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
  const result: ApplyResult = { created: [], adopted: [], recreated: 0, deleted: 0, failed: [], removed: [], added: [] };
  const progress: ApplyProgress = {
    deleted: 0,
    deletes: plan.delete.length + plan.recreate.length,
    created: 0,
    creates: plan.create.length + plan.recreate.length,
  };
  const total = progress.deletes + progress.creates;
  const tick = (kind: Step['kind']): void => {
    if (kind === 'delete') progress.deleted += 1;
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
  const ctx: RunContext = { api, logger, result, signal: controller.signal, tick, deletedForRecreate: new Set() };
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
  for (const step of [...deletes, ...creates]) left.add(step);
  try {
    await runPool(deletes, concurrency, run, () => controller.signal.aborted);
    stopIfFailed();
    await runPool(creates, concurrency, run, () => controller.signal.aborted);
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

/** The steps in `left` as a person reads them: one entry per subscription (both halves of a recreate are one). */
function unapplied(left: ReadonlySet<Step>): UnappliedStep[] {
  const out = new Map<string, UnappliedStep>();
  for (const step of left) {
    const entry: UnappliedStep =
      step.kind === 'delete'
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
}

/** Runs one step; records a non-fatal failure in `result.failed`, rethrows a fatal one. */
async function runStep(step: Step, ctx: RunContext): Promise<void> {
  if (step.kind === 'delete') await runDelete(step.existing, step.forRecreate, ctx);
  else await runCreate(step.desired, step.recreateOf, ctx);
}

async function runDelete(existing: Subscription, isRecreate: boolean, ctx: RunContext): Promise<void> {
  const key = describeSubscription(existing);
  try {
    await ctx.api.delete(existing.id, { signal: ctx.signal });
    ctx.logger.info('Deleted subscription', { subscription: key, id: existing.id, status: existing.status });
  } catch (err) {
    const error = toAppError(err);
    if (error.code !== 'SUBSCRIPTION_NOT_FOUND') {
      if (FATAL_APPLY_CODES.has(error.code)) throw error;
      record(ctx, { action: isRecreate ? 'recreate' : 'delete', key, id: existing.id }, error);
      ctx.tick('delete');
      return;
    }
    ctx.logger.info('Subscription to delete was already gone', { subscription: key, id: existing.id });
  }
  if (isRecreate) ctx.deletedForRecreate.add(existing);
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
  const body: CreateSubscriptionBody = {
    type: desired.type,
    version: desired.version,
    condition: { ...desired.condition },
    transport: { method: 'webhook', callback: desired.transport.callback, secret: desired.transport.secret },
  };
  try {
    const created = await ctx.api.create(body, { signal: ctx.signal });
    const sub = created.subscription;
    if (created.adopted) ctx.result.adopted.push(sub);
    else if (!recreateOf) ctx.result.created.push(sub);
    if (recreateOf) ctx.result.recreated += 1;
    ctx.result.added.push(sub);
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
