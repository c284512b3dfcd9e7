import { ownershipOf } from '../../config/subscriptions-file.js';
import { UsageError } from '../../lib/errors.js';
import type { ListFilter } from '../../twitch/types.js';
import type { Subscription } from '../../twitch/wire.js';
import type { CommandContext } from '../command.js';
import { describeTarget, formatCondition } from '../../twitch/subscription.js';
import { isBlockedStatus } from '../format.js';
import { isImplicit } from '../../subscriptions/authorization.js';

/**
 * `eventsubd subscriptions list`: every page of this client's subscriptions, with at most one filter.
 * Declared (flags, help) in ../commands.ts.
 */
export async function subscriptionsList(ctx: CommandContext): Promise<number> {
  const filter = listFilter(ctx.args.values);
  const { helix } = await ctx.twitch();
  const result = await helix.list(filter, { signal: ctx.signal });
  const subs = result.subscriptions;
  const config = ctx.config();
  // Only to mark the implicit subscriptions on our conduits: an unreadable record marks none there, it fails nothing.
  const record = await (await ctx.conduitRecords()).read().catch(() => undefined);
  const ownership = ownershipOf(config, record ? [record.conduit_id, ...record.previous] : []);
  const implicit = (s: Subscription): boolean => isImplicit(s, config.clientId, ownership);
  ctx.out.result(
    {
      total: subs.length,
      total_cost: result.totalCost ?? null,
      max_total_cost: result.maxTotalCost ?? null,
      data: subs.map((s) => (implicit(s) ? { ...s, implicit: true } : s)),
    },
    () => humanList(subs, result.totalCost, result.maxTotalCost, implicit),
  );
  return 0;
}

/** At most one filter: Twitch answers 400 to more than one (https://dev.twitch.tv/docs/api/reference/#get-eventsub-subscriptions). */
function listFilter(values: Record<string, unknown>): ListFilter {
  const given = (['status', 'type', 'user-id'] as const).filter((k) => typeof values[k] === 'string');
  if (given.length > 1) {
    throw new UsageError(`Flags --${given.join(' and --')} cannot be combined: Twitch accepts one filter at a time`);
  }
  if (typeof values.status === 'string') return { status: values.status };
  if (typeof values.type === 'string') return { type: values.type };
  if (typeof values['user-id'] === 'string') return { user_id: values['user-id'] };
  return {};
}

function humanList(subs: readonly Subscription[], totalCost: number | undefined, maxCost: number | undefined, implicit: (s: Subscription) => boolean): string[] {
  if (subs.length === 0) return ['No subscriptions.'];
  const rows = subs.map((s) => [
    s.id,
    s.status + (isBlockedStatus(s.status) ? ' (not recreated)' : ''),
    `${s.type} v${s.version}${implicit(s) ? ' (implicit)' : ''}`,
    formatCondition(s.condition),
    String(s.cost),
    describeTarget(s),
  ]);
  const header = ['ID', 'STATUS', 'TYPE', 'CONDITION', 'COST', 'TRANSPORT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [
    fmt(header),
    ...rows.map(fmt),
    `${subs.length} subscription(s), total cost ${totalCost ?? '?'} of ${maxCost ?? '?'}`,
  ];
}
