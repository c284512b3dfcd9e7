import type { ConduitRecordStore } from '../../conduit/conduit-store.js';
import type { Config } from '../../config/settings.js';
import { deliveryTarget, loadSubscriptionsFile, ownershipOf } from '../../config/subscriptions-file.js';
import { AppError, ConfigError, EXIT, toAppError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { ApplyInterruptedError, type ApplyProgress } from '../../subscriptions/apply.js';
import { authorizeCommand, type PendingGrant } from '../../subscriptions/authorization.js';
import { formatPlan, planSummary, type SyncPlan } from '../../subscriptions/plan.js';
import { syncSubscriptions, type SyncOutcome } from '../../subscriptions/sync.js';
import { describeSubscription, type DeliveryTarget, type Ownership } from '../../twitch/subscription.js';
import { boolOpt, type CommandContext } from '../command.js';

/** The exit code of a sync stopped by Ctrl-C (SIGINT) or SIGTERM: 128 + SIGINT, as shells report it. */
export const EXIT_INTERRUPTED = 130;

/**
 * `eventsubd subscriptions sync`: applies (or with `--dry-run` prints) the plan from the subscriptions
 * file. Declared (flags, help) in ../commands.ts. A plan with changes is printed before it is applied; on a
 * terminal a progress line follows; Ctrl-C stops it and prints what was done and what was not (exit 130).
 */
export async function subscriptionsSync(ctx: CommandContext): Promise<number> {
  const config = ctx.config();
  if (!config.subscriptionsFile) {
    throw new ConfigError('No subscriptions file: pass --file F or set EVENTSUBD_SUBSCRIPTIONS', {
      setting: 'EVENTSUBD_SUBSCRIPTIONS',
    });
  }
  const { target, ownership } = await resolveDelivery(config, ctx.logger, await ctx.conduitRecords());
  const desired = await loadSubscriptionsFile(config.subscriptionsFile, { target, transport: config.transport });
  const { helix } = await ctx.twitch();
  const dryRun = boolOpt(ctx.args, 'dry-run');
  const prune = boolOpt(ctx.args, 'prune');
  // The daemon's syncs prune by default (EVENTSUBD_PRUNE): what it would delete that this sync leaves alone.
  const daemonPrunes = config.prune && !prune;
  let shown = false;
  let outcome: SyncOutcome;
  try {
    outcome = await syncSubscriptions({
      api: helix,
      authorizations: helix,
      clientId: config.clientId,
      desired,
      ownership,
      prune,
      dryRun,
      signal: ctx.signal,
      logger: ctx.logger,
      onPlan: (plan) => {
        ctx.out.lines(planLines(plan, daemonPrunes));
        shown = true;
      },
      onProgress: (_done, _total, progress) => ctx.out.progress(progressLine(progress)),
    });
  } catch (err) {
    if (ctx.signal.aborted && toAppError(err).code === 'ABORTED') return interrupted(ctx, err);
    throw err;
  } finally {
    ctx.out.endProgress();
  }
  const summary = planSummary(outcome.plan);
  const result = outcome.result;
  const waiting = outcome.needsAuthorization;
  const daemonDeletes = daemonPrunes ? outcome.plan.unmanaged : [];
  ctx.out.result(
    {
      dry_run: dryRun,
      plan: summary,
      cost: outcome.plan.cost,
      list_pages: outcome.listPages,
      daemon: {
        prune: config.prune,
        would_also_delete: daemonDeletes.map((u) => ({ id: u.id, subscription: describeSubscription(u) })),
      },
      result: result
        ? {
            created: result.created.length,
            adopted: result.adopted.length,
            recreated: result.recreated,
            migrated: result.migrated,
            deleted: result.deleted,
            failed: result.failed,
          }
        : null,
      needs_authorization: waiting.map((p) => ({
        user_id: p.userId,
        fields: p.fields,
        scopes: p.scopes,
        subscriptions: p.waiting.map((d) => describeSubscription(d)),
        command: authorizeCommand(p.userId),
      })),
    },
    () => [
      ...(shown ? [] : planLines(outcome.plan, daemonPrunes)),
      dryRun
        ? 'Dry run: nothing was changed.'
        : `Applied: ${result!.created.length} created, ${result!.adopted.length} adopted, ${result!.recreated} recreated, ` +
          `${outcome.plan.migrate.length > 0 ? `${result!.migrated} migrated, ` : ''}${result!.deleted} deleted, ${result!.failed.length} failed.`,
      ...(result?.failed ?? []).map((f) => `  failed ${f.action} ${f.key}: ${f.code}: ${f.message}`),
      ...waiting.flatMap(waitingLines),
    ],
  );
  if (!dryRun && waiting.length > 0) {
    const count = waiting.reduce((n, p) => n + p.waiting.length, 0);
    const users = waiting.map((p) => `user ${p.userId} (${p.fields.join(', ')}) must grant ${p.scopes.join(', ')}`).join('; ');
    const run = waiting.map((p) => authorizeCommand(p.userId)).join(', then ');
    throw new AppError('AUTHORIZATION_MISSING', `${count} declared subscription${count === 1 ? ' waits' : 's wait'} for authorization: ${users}; run ${run}`);
  }
  return result && result.failed.length > 0 ? EXIT.RUNTIME : EXIT.OK;
}

/**
 * Where a CLI command's subscriptions go and what it owns (SPEC "Conduit transport"). Conduit mode: the conduit
 * is EVENTSUBD_CONDUIT_ID, else the one the daemon recorded in STATE_DIR/conduit.json; owned are that one, the
 * conduits it replaced, EVENTSUBD_CONDUIT_ID, and webhooks to EVENTSUB_CALLBACK_URL when set (migrated to the
 * conduit). Webhook mode: as always, plus the recorded conduits (migrated back to webhooks).
 * @throws ConfigError (exit 78) naming EVENTSUBD_CONDUIT_ID when no conduit is known, or EVENTSUB_CALLBACK_URL /
 *   EVENTSUB_SECRET in webhook mode; StateDirError when the conduit record is unreadable in conduit mode.
 */
export async function resolveDelivery(
  config: Config,
  logger: Logger,
  records: Pick<ConduitRecordStore, 'read'>,
): Promise<{ target: DeliveryTarget; ownership: Ownership }> {
  if (config.transport === 'conduit') {
    const record = await records.read();
    const target = deliveryTarget(config, config.conduit.id ?? record?.conduit_id);
    return { target, ownership: ownershipOf(config, [record?.conduit_id, ...(record?.previous ?? [])]) };
  }
  const target = deliveryTarget(config);
  let conduits: string[] = [];
  try {
    const record = await records.read();
    if (record) conduits = [record.conduit_id, ...record.previous];
  } catch (err) {
    // Webhook mode does not need the record: without it, only the conduits' leftovers stay behind. A state
    // directory that cannot be read at all is reported by its own check, once, with its exit code.
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (typeof cause?.code !== 'string') {
      logger.warn('Cannot read the conduit record: subscriptions on its conduits are left as they are', { error: toAppError(err) });
    }
  }
  return { target, ownership: ownershipOf(config, conduits) };
}

/** The plan as `--dry-run` prints it, then what the daemon's own syncs would delete on top (EVENTSUBD_PRUNE). */
export function planLines(plan: SyncPlan, daemonPrunes: boolean): string[] {
  const extra = daemonPrunes ? plan.unmanaged : [];
  return [
    ...formatPlan(plan),
    ...(extra.length === 0
      ? []
      : [
          `the daemon (EVENTSUBD_PRUNE=true) would also delete ${extra.length} owned subscription${extra.length === 1 ? '' : 's'} the file does not declare:`,
          ...extra.map((u) => `  - delete ${describeSubscription(u)} (id ${u.id})`),
        ]),
  ];
}

/** `deleted 3/10, created 120/500`: the kinds the plan has. */
export function progressLine(p: ApplyProgress): string {
  const parts = [p.deletes > 0 ? `deleted ${p.deleted}/${p.deletes}` : '', p.creates > 0 ? `created ${p.created}/${p.creates}` : ''];
  return parts.filter((x) => x !== '').join(', ');
}

/** Ctrl-C during the sync: what was done, what was not (each subscription), exit 130. */
function interrupted(ctx: CommandContext, err: unknown): number {
  const partial = err instanceof ApplyInterruptedError ? err.partial : undefined;
  const remaining = err instanceof ApplyInterruptedError ? err.remaining : [];
  const done = partial
    ? [
        ...partial.created.map((s) => `created ${describeSubscription(s)} (id ${s.id})`),
        ...partial.adopted.map((s) => `adopted ${describeSubscription(s)} (id ${s.id})`),
        ...partial.added
          .filter((s) => !partial.created.includes(s) && !partial.adopted.includes(s))
          .map((s) => `recreated ${describeSubscription(s)} (id ${s.id})`),
        ...partial.removed.map((s) => `deleted ${describeSubscription(s)} (id ${s.id})`),
        ...partial.failed.map((f) => `failed ${f.action} ${f.key}: ${f.code}`),
      ]
    : [];
  ctx.out.result(
    {
      interrupted: true,
      done: partial
        ? { created: partial.created.length, adopted: partial.adopted.length, recreated: partial.recreated, migrated: partial.migrated, deleted: partial.deleted, failed: partial.failed }
        : null,
      remaining: remaining.map((r) => ({ action: r.action, subscription: r.key, ...(r.id ? { id: r.id } : {}) })),
    },
    () => [
      partial
        ? `Interrupted: ${done.length} done, ${remaining.length} not done.`
        : 'Interrupted before any change was sent.',
      ...done.map((line) => `  done: ${line}`),
      ...remaining.map((r) => `  not done: ${r.action} ${r.key}${r.id ? ` (id ${r.id})` : ''}`),
      ...(remaining.length > 0 ? ['Run "eventsubd subscriptions sync" again to finish (a request cut in flight is settled then).'] : []),
    ],
  );
  return EXIT_INTERRUPTED;
}

/** `! needs authorization ...` and the subscriptions that wait, one per line. */
function waitingLines(p: PendingGrant): string[] {
  return [
    `! needs authorization: user ${p.userId} (${p.fields.join(', ')}) must grant ${p.scopes.join(', ')}: run ${authorizeCommand(p.userId)}`,
    ...p.waiting.map((d) => `    ${describeSubscription(d)}`),
  ];
}
