/**
 * The daemon's own GET routes on the receiver's port: `/healthz`, `/readyz`, `/status`, `/metrics`, and the
 * one-line summary sent as systemd's `STATUS=`. Never a secret: token state is shown by fingerprint and code.
 */
import type { TokenStatus } from '../auth/token-policy.js';
import type { TokenManager } from '../auth/token-manager.js';
import type { Forwarder } from '../delivery/forwarder.js';
import type { EventStream } from '../delivery/stream.js';
import type { EventJournal } from '../storage/types.js';
import type { ReceiverServer } from '../receiver/server.js';
import type { ReceiverResponse } from '../receiver/types.js';
import { isoTime } from '../lib/clock.js';
import type { DaemonMetrics } from './observability.js';
import type { SyncScheduler } from './sync-scheduler.js';
import type { ConduitRuntime } from '../conduit/conduit-runtime.js';

interface RouteSources {
  daemon: { closing: boolean; startedAt: number };
  journal: EventJournal;
  /** Undefined until the Twitch side is built, just after READY=1. */
  tokens: () => TokenManager | undefined;
  scheduler: () => SyncScheduler | undefined;
  /** Whether a subscriptions file is managed (known before the scheduler exists). */
  managed: boolean;
  /** Who must grant what, and who disconnected (when a subscriptions file is managed). */
  authorization: () => { status(): Record<string, unknown> } | undefined;
  metrics: DaemonMetrics;
  receiver: () => ReceiverServer | undefined;
  forwarder: () => Forwarder | undefined;
  stream: () => Pick<EventStream, 'stats'> | undefined;
  /** Conduit mode only: the shards (undefined until the Twitch side built them). */
  conduit?: (() => Pick<ConduitRuntime, 'ready' | 'status'> | undefined) | undefined;
  /** Several replicas: role, ids, the replicas seen, Redis's state. */
  replication?: { status(): Record<string, unknown>; connection: { ready: boolean } } | undefined;
}

const json = (status: number, value: unknown): ReceiverResponse => ({
  status,
  headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' },
  body: JSON.stringify(value),
});


/**
 * A token status as JSON (snake_case, ISO times, null for none)
 * for `/status` and `eventsubd token status --json`. Never the token.
 */
export function tokenStatusJson(s: TokenStatus): Record<string, unknown> {
  return {
    state: s.state,
    origin: s.origin ?? null,
    fingerprint: s.fingerprint ?? null,
    obtained_at: isoTime(s.obtainedAt),
    expires_at: isoTime(s.expiresAt),
    validated_at: isoTime(s.validatedAt),
    error: s.lastError ?? null,
  };
}

export function daemonRoutes(s: RouteSources): Record<string, () => ReceiverResponse> {
  return {
    '/healthz': () => json(200, { ok: true }),
    // Ready = can accept and journal deliveries. A token outage does not make it unready: receiving needs no token.
    // In conduit mode deliveries come over the shards: ready once at least one of them is assigned.
    '/readyz': () => {
      const shardAssigned = s.conduit ? s.conduit()?.ready === true : undefined;
      const ready = !s.daemon.closing && s.journal.writable && s.receiver() !== undefined && shardAssigned !== false;
      const body: Record<string, unknown> = { ready, journal_writable: s.journal.writable, closing: s.daemon.closing };
      if (shardAssigned !== undefined) body.shard_assigned = shardAssigned;
      if (s.replication) body.redis_ready = s.replication.connection.ready;
      return json(ready ? 200 : 503, body);
    },
    '/status': () => json(200, statusDocument(s)),
    '/metrics': () => ({
      status: 200,
      headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' },
      body: s.metrics.registry.render(),
    }),
  };
}

export function statusDocument(s: RouteSources): Record<string, unknown> {
  // Before the token manager exists its state is what it reports before its first attempt: missing.
  const t = s.tokens()?.status() ?? { state: 'missing' };
  const last = s.scheduler()?.last;
  const j = s.journal.stats();
  const r = s.receiver()?.stats;
  return {
    token: tokenStatusJson(t),
    sync: last
      ? {
          managed: s.managed,
          reason: last.reason,
          started_at: isoTime(last.startedAt),
          finished_at: isoTime(last.finishedAt),
          result: last.result,
          counts: last.counts ?? null,
          applied: last.applied ?? null,
          blocked: last.blocked ?? [],
          cost: last.cost ?? null,
          waiting_for_authorization: last.waitingForAuthorization ?? 0,
          error: last.error ?? null,
        }
      : { managed: s.managed, result: null },
    authorization: s.authorization()?.status() ?? { missing: [], revoked: [] },
    journal: { head: s.journal.head, first_seq: s.journal.firstSeq, writable: s.journal.writable, appends: j.appends, fsyncs: j.fsyncs, corrupt: j.corrupt },
    delivery: deliveryStatus(s),
    receiver: r ? { in_flight: r.inFlight, reading: r.reading, requests: r.requests, too_slow: r.tooSlow } : null,
    ...(s.replication ? { replication: s.replication.status() } : {}),
    ...(s.conduit ? { conduit: s.conduit()?.status() ?? { conduit_id: null, shards_assigned: 0, shards: [], pending_appends: 0, duplicates: 0 } } : {}),
    started_at: isoTime(s.daemon.startedAt),
  };
}

function deliveryStatus(s: RouteSources): Record<string, unknown> {
  const f = s.forwarder()?.stats();
  const w = s.stream()?.stats();
  return {
    forward: f
      ? { cursor: f.cursor, head: f.head, lag: f.lag, delivered: f.delivered, attempts: f.attempts, failures: f.failures, last_error: f.lastError ?? null }
      : null,
    stream: w ? { clients: w.clients, sent: w.sent, too_slow: w.tooSlow } : null,
  };
}

/** `token ok; sync ok (12 kept, 1 created); journal seq 42` — what `systemctl status` shows. */
export function statusLine(s: {
  tokens: TokenManager | undefined;
  scheduler: SyncScheduler | undefined;
  managed: boolean;
  journal: EventJournal | undefined;
  /** Conduit mode only. */
  conduit?: { statusLine(): string } | undefined;
  /** Several replicas only: this replica's role. */
  role?: 'leader' | 'follower' | undefined;
}): string {
  const parts: string[] = [];
  if (s.role) parts.push(s.role);
  const t = s.tokens?.status() ?? { state: 'missing' };
  parts.push(`token ${t.state}${t.lastError ? ` (${t.lastError.code})` : ''}`);
  const last = s.scheduler?.last;
  if (!s.managed) parts.push('no subscriptions file');
  else if (last) {
    const c = last.counts ?? {};
    parts.push(
      last.result === 'error'
        ? `sync error (${last.error?.code})`
        : `sync ${last.result} (${c.keep ?? 0} kept, ${c.create ?? 0} created, ${c.recreate ?? 0} recreated, ${c.delete ?? 0} deleted, ${c.blocked ?? 0} blocked` +
            `${last.waitingForAuthorization ? `, ${last.waitingForAuthorization} waiting for authorization` : ''})`,
    );
  } else parts.push('sync pending');
  if (s.conduit) parts.push(s.conduit.statusLine());
  if (s.journal) parts.push(`journal seq ${s.journal.head}`);
  return parts.join('; ');
}
