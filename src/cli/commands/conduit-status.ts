import { AppError, EXIT } from '../../lib/errors.js';
import type { Shard } from '../../twitch/wire.js';
import type { CommandContext } from '../command.js';

/** One shard as `conduit status` shows it; null for what Twitch did not say. */
interface ShardView {
  id: string;
  status: string;
  method: string | null;
  session_id: string | null;
  callback: string | null;
  connected_at: string | null;
  disconnected_at: string | null;
}

/**
 * `eventsubd conduit status`: Twitch's view of the daemon's conduit (EVENTSUBD_CONDUIT_ID, else the one recorded
 * in STATE_DIR/conduit.json): its shard count, then each shard with its status and WebSocket session. It asks
 * Twitch, not the daemon, so it also shows what a daemon that is down left behind. Declared in ../commands.ts.
 * @throws AppError CONDUIT_NOT_FOUND (exit 78) when there is no conduit to show or Twitch does not know it.
 */
export async function conduitStatus(ctx: CommandContext): Promise<number> {
  const config = ctx.config();
  const records = await ctx.conduitRecords();
  const record = await records.read();
  const id = config.conduit.id ?? record?.conduit_id;
  if (id === undefined) {
    throw new AppError(
      'CONDUIT_NOT_FOUND',
      `No conduit to show: EVENTSUBD_CONDUIT_ID is not set and ${records.where} holds no conduit record; ` +
        'run the daemon once in conduit mode (EVENTSUBD_TRANSPORT=conduit) to create one, or set EVENTSUBD_CONDUIT_ID',
    );
  }
  const source = config.conduit.id !== undefined ? 'EVENTSUBD_CONDUIT_ID' : records.where;
  const { helix } = await ctx.twitch();
  const conduit = (await helix.listConduits({ signal: ctx.signal })).find((c) => c.id === id);
  if (!conduit) {
    throw new AppError('CONDUIT_NOT_FOUND', `Twitch knows no conduit ${id} (from ${source}) for this client ID: it was deleted, or belongs to another client`);
  }
  const shards = (await helix.listShards(id, {}, { signal: ctx.signal })).map(shardView).sort((a, b) => Number(a.id) - Number(b.id) || a.id.localeCompare(b.id));
  ctx.out.result(
    { id, source, shard_count: conduit.shard_count, previous: config.conduit.id === undefined ? (record?.previous ?? []) : [], shards },
    () => human(id, source, conduit.shard_count, shards),
  );
  return EXIT.OK;
}

function shardView(s: Shard): ShardView {
  const t = s.transport;
  return {
    id: s.id,
    status: s.status,
    method: t?.method || null,
    session_id: t?.session_id ?? null,
    callback: t?.callback ?? null,
    connected_at: t?.connected_at ?? null,
    disconnected_at: t?.disconnected_at ?? null,
  };
}

function human(id: string, source: string, shardCount: number, shards: readonly ShardView[]): string[] {
  const header = ['SHARD', 'STATUS', 'SESSION', 'CONNECTED AT', 'DISCONNECTED AT'];
  // A webhook shard has a callback where a WebSocket one has a session.
  const rows = shards.map((s) => [s.id, s.status, s.session_id ?? s.callback ?? '-', s.connected_at ?? '-', s.disconnected_at ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const byStatus = new Map<string, number>();
  for (const s of shards) byStatus.set(s.status, (byStatus.get(s.status) ?? 0) + 1);
  const summary = [...byStatus].map(([status, n]) => `${n} ${status}`).join(', ');
  return [
    `Conduit ${id} (from ${source}): shard_count ${shardCount}`,
    ...(rows.length > 0 ? [fmt(header), ...rows.map(fmt)] : []),
    `${shards.length} shard(s)${summary ? `: ${summary}` : ''}`,
  ];
}
