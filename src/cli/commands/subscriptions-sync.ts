import { requireWebhook } from '../../config/settings.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import { ConfigError, EXIT } from '../../lib/errors.js';
import { formatPlan, planSummary } from '../../subscriptions/plan.js';
import { syncSubscriptions } from '../../subscriptions/sync.js';
import { boolOpt, type CommandContext } from '../command.js';

/**
 * `eventsubd subscriptions sync`: applies (or with `--dry-run` prints) the plan from the subscriptions
 * file. Declared (flags, help) in ../commands.ts.
 */
export async function subscriptionsSync(ctx: CommandContext): Promise<number> {
  const config = ctx.config();
  if (!config.subscriptionsFile) {
    throw new ConfigError('No subscriptions file: pass --file F or set EVENTSUBD_SUBSCRIPTIONS', {
      setting: 'EVENTSUBD_SUBSCRIPTIONS',
    });
  }
  const { callbackUrl, secret } = requireWebhook(config);
  const desired = await loadSubscriptionsFile(config.subscriptionsFile, { callbackUrl, secret });
  const { helix } = await ctx.twitch();
  const dryRun = boolOpt(ctx.args, 'dry-run');
  const outcome = await syncSubscriptions({
    api: helix,
    desired,
    callbackUrl,
    prune: boolOpt(ctx.args, 'prune'),
    dryRun,
    signal: ctx.signal,
    logger: ctx.logger,
    onProgress: (done, total) => ctx.out.progress('Applying plan', done, total),
  });
  const summary = planSummary(outcome.plan);
  const result = outcome.result;
  ctx.out.result(
    {
      dry_run: dryRun,
      plan: summary,
      cost: outcome.plan.cost,
      list_pages: outcome.listPages,
      result: result
        ? {
            created: result.created.length,
            adopted: result.adopted.length,
            recreated: result.recreated,
            deleted: result.deleted,
            failed: result.failed,
          }
        : null,
    },
    () => [
      ...formatPlan(outcome.plan),
      dryRun
        ? 'Dry run: nothing was changed.'
        : `Applied: ${result!.created.length} created, ${result!.adopted.length} adopted, ${result!.recreated} recreated, ` +
          `${result!.deleted} deleted, ${result!.failed.length} failed.`,
      ...(result?.failed ?? []).map((f) => `  failed ${f.action} ${f.key}: ${f.code}: ${f.message}`),
    ],
  );
  return result && result.failed.length > 0 ? EXIT.RUNTIME : EXIT.OK;
}
