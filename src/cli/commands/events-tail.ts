import { join } from 'node:path';
import { Journal } from '../../journal/journal.js';
import type { JournalRecord } from '../../journal/types.js';
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
  const journal = await Journal.open({ dir: join(config.stateDir, 'journal'), clock: ctx.clock, logger: ctx.logger, readOnly: true });
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
    await journal.close();
  }
}

function humanRecord(r: JournalRecord): string {
  const s = r.subscription;
  const extra = r.message_type === 'revocation' ? ` status=${s.status ?? '?'}` : '';
  const via = r.transport === 'conduit' ? ` via=conduit shard=${r.shard ?? '?'}` : '';
  return `#${r.seq} ${r.received_at} ${r.message_type} ${s.type} v${s.version} ${formatCondition(s.condition)}${extra} message_id=${r.message_id}${via}`;
}
