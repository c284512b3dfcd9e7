import { requireWebhook } from '../../config/settings.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import { AppError, ConfigError, EXIT } from '../../lib/errors.js';
import { authorizeCommand, type PendingGrant } from '../../subscriptions/authorization.js';
import { formatPlan, planSummary } from '../../subscriptions/plan.js';
import { syncSubscriptions } from '../../subscriptions/sync.js';
import { describeSubscription } from '../../twitch/subscription.js';
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
    authorizations: helix,
    clientId: config.clientId,
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
  const waiting = outcome.needsAuthorization;
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
      needs_authorization: waiting.map((p) => ({
        user_id: p.userId,
        fields: p.fields,
        scopes: p.scopes,
        subscriptions: p.waiting.map((d) => describeSubscription(d)),
        command: authorizeCommand(p.userId),
      })),
    },
    () => [
      ...formatPlan(outcome.plan),
      dryRun
        ? 'Dry run: nothing was changed.'
        : `Applied: ${result!.created.length} created, ${result!.adopted.length} adopted, ${result!.recreated} recreated, ` +
          `${result!.deleted} deleted, ${result!.failed.length} failed.`,
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

/** `! needs authorization ...` and the subscriptions that wait, one per line. */
function waitingLines(p: PendingGrant): string[] {
  return [
    `! needs authorization: user ${p.userId} (${p.fields.join(', ')}) must grant ${p.scopes.join(', ')}: run ${authorizeCommand(p.userId)}`,
    ...p.waiting.map((d) => `    ${describeSubscription(d)}`),
  ];
}
