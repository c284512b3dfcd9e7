import type { Config } from '../../config/settings.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import { toAppError, UsageError } from '../../lib/errors.js';
import { createBody } from '../../subscriptions/apply.js';
import { withImplicit } from '../../subscriptions/sync.js';
import { listOpt, stringOpt, type CommandContext } from '../command.js';
import { formatCondition, subscriptionKey, targetOf, type DeliveryTarget } from '../../twitch/subscription.js';
import { resolveDelivery } from './subscriptions-sync.js';

/**
 * `eventsubd subscriptions create`: one subscription on the current transport (a webhook to
 * EVENTSUB_CALLBACK_URL, or the conduit in conduit mode); a 409 adopts the existing one. Declared
 * (flags, help) in ../commands.ts. When the daemon's next sync would delete it (not declared in the
 * subscriptions file, EVENTSUBD_PRUNE on), says so on stderr first, then creates it all the same: the user
 * asked for it, and may be about to declare it.
 */
export async function subscriptionsCreate(ctx: CommandContext): Promise<number> {
  const type = required(stringOpt(ctx.args, 'type'), '--type');
  const version = required(stringOpt(ctx.args, 'version'), '--version');
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(type)) {
    throw new UsageError(`--type must look like stream.online: current value is "${type}"`);
  }
  const condition = parseConditions(listOpt(ctx.args, 'condition'));
  const config = ctx.config();
  const { target } = await resolveDelivery(config, ctx.logger, await ctx.conduitRecords());
  const warning = await pruneWarning(config, { type, version, condition, target });
  if (warning) ctx.out.note(warning);
  const { helix } = await ctx.twitch();
  const res = await helix.create(createBody({ type, version, condition, transport: target }), { signal: ctx.signal });
  const s = res.subscription;
  ctx.out.result({ adopted: res.adopted, subscription: s, total_cost: res.totalCost ?? null, max_total_cost: res.maxTotalCost ?? null }, () => [
    `${res.adopted ? 'Adopted existing' : 'Created'} ${s.type} v${s.version} ${formatCondition(s.condition)}`,
    `  id ${s.id}, status ${s.status}, cost ${s.cost}` +
      (res.totalCost !== undefined ? ` (total ${res.totalCost} of ${res.maxTotalCost ?? '?'})` : ''),
  ]);
  return 0;
}

/**
 * The warning for a subscription the daemon would prune: owned (it will have our callback), not declared in
 * EVENTSUBD_SUBSCRIPTIONS (nor one of the implicit authorization subscriptions), and EVENTSUBD_PRUNE on.
 * Undefined when the daemon keeps it; a file that cannot be read gives a warning saying so.
 */
export async function pruneWarning(
  config: Pick<Config, 'prune' | 'subscriptionsFile' | 'clientId' | 'transport'>,
  sub: { type: string; version: string; condition: Record<string, string>; target: DeliveryTarget },
): Promise<string | undefined> {
  const file = config.subscriptionsFile;
  // Without a file the daemon manages (and prunes) nothing.
  if (!config.prune || file === undefined) return undefined;
  let declared;
  try {
    declared = withImplicit(await loadSubscriptionsFile(file, { target: sub.target, transport: config.transport }), config.clientId);
  } catch (err) {
    return `eventsubd: warning: cannot tell whether the daemon will keep this subscription: ${toAppError(err).message}`;
  }
  const key = subscriptionKey(sub.type, sub.version, sub.condition, targetOf({ transport: sub.target }));
  if (declared.some((d) => subscriptionKey(d.type, d.version, d.condition, targetOf(d)) === key)) return undefined;
  return (
    `eventsubd: warning: the daemon will delete this subscription at its next sync: it is not declared in ${file} ` +
    `(EVENTSUBD_SUBSCRIPTIONS) and EVENTSUBD_PRUNE is true; declare it there, or set EVENTSUBD_PRUNE=false`
  );
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
