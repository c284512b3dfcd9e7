import { join } from 'node:path';
import { Journal } from '../../journal/journal.js';
import type { JournalRecord } from '../../journal/types.js';
import type { Config } from '../../config/settings.js';
import type { EventJournal } from '../../storage/types.js';
import { UsageError } from '../../lib/errors.js';
import { boolOpt, stringOpt, type CommandContext } from '../command.js';
import { formatCondition } from '../../twitch/subscription.js';

const DEFAULT_TAIL = 10;

/**
 * `eventsubd events tail`: journaled records after `--since` (default: the last 10); `--follow` keeps
 * printing. Declared (flags, help) in ../commands.ts.
 */
export async function eventsTail(ctx: CommandContext): Promise<number> {
  const sinceText = stringOpt(ctx.args, 'since');
  if (sinceText !== undefined && !/^\d+$/.test(sinceText)) {
    throw new UsageError(`--since must be a sequence number (0 or more): current value is "${sinceText}"`);
  }
  const config = ctx.config();
  const { journal, close } = await openJournal(config, ctx);
  try {
    const since = sinceText === undefined ? Math.max(0, journal.head - DEFAULT_TAIL) : Number(sinceText);
    const print = (r: JournalRecord) => ctx.out.record(r, () => humanRecord(r));
    if (boolOpt(ctx.args, 'follow')) {
      for await (const r of journal.follow(since, ctx.signal)) print(r);
      return 0;
    }
    for await (const r of journal.range(since)) print(r);
    return 0;
  } finally {
    await close();
  }
}

/** The daemon's journal, read-only: the state directory's, or with EVENTSUBD_REDIS_URL the shared Redis stream. */
async function openJournal(config: Config, ctx: CommandContext): Promise<{ journal: EventJournal; close: () => Promise<void> }> {
  if (config.redis) {
    const [{ connectRedis }, { RedisJournal }] = await Promise.all([import('../redis.js'), import('../../storage/redis-journal.js')]);
    const connection = await connectRedis({ ...config, redis: config.redis }, ctx.clock, ctx.logger);
    try {
      const journal = await RedisJournal.open({ connection, prefix: config.redis.prefix, clock: ctx.clock, logger: ctx.logger, durability: config.redis.durability });
      return { journal, close: async () => { await journal.close(); await connection.close(); } };
    } catch (err) {
      await connection.close();
      throw err;
    }
  }
  const journal = await Journal.open({ dir: join(config.stateDir, 'journal'), clock: ctx.clock, logger: ctx.logger, readOnly: true });
  return { journal, close: () => journal.close() };
}

function humanRecord(r: JournalRecord): string {
  const s = r.subscription;
  const extra = r.message_type === 'revocation' ? ` status=${s.status ?? '?'}` : '';
  const via = r.transport === 'conduit' ? ` via=conduit shard=${r.shard ?? '?'}` : '';
  return `#${r.seq} ${r.received_at} ${r.message_type} ${s.type} v${s.version} ${formatCondition(s.condition)}${extra} message_id=${r.message_id}${via}`;
}
