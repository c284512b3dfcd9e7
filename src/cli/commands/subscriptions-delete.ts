import { AppError, UsageError } from '../../lib/errors.js';
import { boolOpt, stringOpt, type CommandContext } from '../command.js';

/**
 * `eventsubd subscriptions delete`: by id, or by status with `--yes`; a missing id fails with
 * SUBSCRIPTION_NOT_FOUND. Declared (flags, help) in ../commands.ts.
 */
export async function subscriptionsDelete(ctx: CommandContext): Promise<number> {
  const status = stringOpt(ctx.args, 'status');
  const ids = [...ctx.args.positionals];
  if ((status === undefined) === (ids.length === 0)) {
    throw new UsageError('Give subscription IDs or --status S, not both and not neither');
  }
  const { helix } = await ctx.twitch();
  if (status !== undefined) {
    const found = await helix.list({ status }, { signal: ctx.signal });
    ids.push(...found.subscriptions.map((s) => s.id));
    if (!boolOpt(ctx.args, 'yes')) {
      ctx.out.result({ deleted: [], would_delete: ids, confirmed: false }, () => [
        `${ids.length} subscription(s) with status ${status} would be deleted.`,
        ...ids.map((id) => `  ${id}`),
        'Nothing deleted: run again with --yes to delete them.',
      ]);
      return ids.length === 0 ? 0 : 2;
    }
  }
  const deleted: string[] = [];
  const missing: string[] = [];
  for (const id of ids) {
    try {
      await helix.delete(id, { signal: ctx.signal });
      deleted.push(id);
    } catch (err) {
      if (err instanceof AppError && err.code === 'SUBSCRIPTION_NOT_FOUND') missing.push(id);
      else throw err;
    }
  }
  ctx.out.result({ deleted, not_found: missing }, () => [
    ...deleted.map((id) => `Deleted ${id}`),
    ...missing.map((id) => `Not found ${id}`),
  ]);
  if (missing.length > 0) {
    throw new AppError('SUBSCRIPTION_NOT_FOUND', `${missing.length} of ${ids.length} subscription(s) did not exist`);
  }
  return 0;
}
