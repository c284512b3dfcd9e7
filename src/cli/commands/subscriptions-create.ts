import { requireWebhook } from '../../config/settings.js';
import { UsageError } from '../../lib/errors.js';
import { listOpt, stringOpt, type CommandContext } from '../command.js';
import { formatCondition } from '../../twitch/subscription.js';

/**
 * `eventsubd subscriptions create`: one webhook subscription; a 409 adopts the existing one. Declared
 * (flags, help) in ../commands.ts.
 */
export async function subscriptionsCreate(ctx: CommandContext): Promise<number> {
  const type = required(stringOpt(ctx.args, 'type'), '--type');
  const version = required(stringOpt(ctx.args, 'version'), '--version');
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(type)) {
    throw new UsageError(`--type must look like stream.online: current value is "${type}"`);
  }
  const condition = parseConditions(listOpt(ctx.args, 'condition'));
  const { callbackUrl, secret } = requireWebhook(ctx.config());
  const { helix } = await ctx.twitch();
  const res = await helix.create(
    { type, version, condition, transport: { method: 'webhook', callback: callbackUrl, secret } },
    { signal: ctx.signal },
  );
  const s = res.subscription;
  ctx.out.result({ adopted: res.adopted, subscription: s, total_cost: res.totalCost ?? null, max_total_cost: res.maxTotalCost ?? null }, () => [
    `${res.adopted ? 'Adopted existing' : 'Created'} ${s.type} v${s.version} ${formatCondition(s.condition)}`,
    `  id ${s.id}, status ${s.status}, cost ${s.cost}` +
      (res.totalCost !== undefined ? ` (total ${res.totalCost} of ${res.maxTotalCost ?? '?'})` : ''),
  ]);
  return 0;
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`Missing required flag ${flag}`);
  return value.trim();
}

/** `key=value` pairs; a pair without `=` or an empty key is a usage error, naming the pair. */
export function parseConditions(pairs: readonly string[]): Record<string, string> {
  if (pairs.length === 0) throw new UsageError('Missing required flag --condition key=value');
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) {
      throw new UsageError(`--condition must be key=value: current value is "${pair}"`);
    }
    const key = pair.slice(0, eq).trim();
    if (key in out) throw new UsageError(`--condition ${key} is given twice`);
    out[key] = pair.slice(eq + 1).trim();
  }
  return out;
}
