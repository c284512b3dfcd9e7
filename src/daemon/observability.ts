/**
 * The daemon's metrics (Prometheus, `/metrics`) and its `/status` document. Values are codes, statuses
 * and numbers only: no token, secret or payload ever becomes a label or a field.
 */
import type { EventJournal } from '../storage/types.js';
import { Registry, type Counter, type Gauge } from '../lib/metrics.js';
import type { Forwarder } from '../delivery/forwarder.js';
import type { TokenManager } from '../auth/token-manager.js';
import type { Subscription } from '../twitch/wire.js';
import type { SyncReport } from './sync-scheduler.js';
import type { HelixEventSubClient } from '../twitch/helix.js';

const TOKEN_STATES = ['ok', 'expiring', 'missing', 'refused'] as const;

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.counter('eventsubd_webhook_requests_total', 'Webhook requests by outcome');
  readonly revocations = this.registry.counter('eventsubd_revocations_total', 'Revocations received, by status');
  readonly helixCalls = this.registry.counter('eventsubd_helix_requests_total', 'Helix requests by method and status');
  readonly syncs = this.registry.counter('eventsubd_syncs_total', 'Subscription syncs by result');
  readonly subscriptions = this.registry.gauge('eventsubd_subscriptions', 'Subscriptions by status, as the last sync left them');
  readonly cost = this.registry.gauge('eventsubd_subscription_cost', 'total_cost and max_total_cost as the last sync left them');

  constructor(sources: {
    journal: EventJournal;
    /** Undefined until the Twitch side is built, just after READY=1. */
    tokens: () => TokenManager | undefined;
    helix: () => HelixEventSubClient | undefined;
    clock: { now(): number };
    forwarder: () => Forwarder | undefined;
  }) {
    const { journal, tokens, helix, clock, forwarder } = sources;
    const r = this.registry;
    const forwarded = (pick: (s: ReturnType<Forwarder['stats']>) => number) => (m: Counter | Gauge): void => {
      const f = forwarder();
      if (f) m.set(pick(f.stats()));
    };
    r.gauge('eventsubd_forward_lag_records', 'Journal head minus the forwarder cursor', forwarded((s) => s.lag));
    r.counter('eventsubd_forward_attempts_total', 'Forward POST attempts since start', forwarded((s) => s.attempts));
    r.counter('eventsubd_forward_failures_total', 'Forward POSTs that failed (non-2xx, network, timeout)', forwarded((s) => s.failures));
    r.counter('eventsubd_forward_delivered_total', 'Records delivered with a 2xx since start', forwarded((s) => s.delivered));
    r.gauge('eventsubd_journal_head_seq', 'Last journal sequence number on disk', (g) => g.set(journal.head));
    r.counter('eventsubd_journal_appends_total', 'Journal appends since start', (c) => c.set(journal.stats().appends));
    r.counter(
      'eventsubd_journal_corrupt_records_total',
      'Corrupt journal records (kept, set aside, skipped by readers) and runs of missing seqs found since start',
      (c) => c.set(journal.stats().corrupt),
    );
    r.counter('eventsubd_journal_fsyncs_total', 'Journal fsyncs since start (group commit: fewer than appends)', (c) => c.set(journal.stats().fsyncs));
    r.histogram('eventsubd_journal_fsync_seconds', 'Journal commit latency: the durable write (O_DSYNC) of each group-committed batch', () => {
      const h = journal.stats().fsyncHistogram;
      return { bounds: h.bounds.map((b) => b / 1000), counts: h.counts, count: h.count, sum: h.sum / 1000 };
    });
    r.gauge('eventsubd_journal_last_fsync_seconds', 'Duration of the last journal fsync', (g) => g.set(journal.stats().lastFsyncMs / 1000));
    r.counter('eventsubd_token_mints_total', 'App tokens minted since start', (c) => c.set(tokens()?.stats.mints ?? 0));
    r.counter('eventsubd_token_validations_total', 'Token validations since start', (c) => c.set(tokens()?.stats.validations ?? 0));
    r.gauge('eventsubd_token_state', 'The app token\'s state: 1 for the current one of ok, expiring, missing (none yet: e.g. Twitch unreachable), refused (Twitch refuses the credentials or the supplied token)', (g) => {
      const state = tokens()?.status().state ?? 'missing';
      for (const s of TOKEN_STATES) g.set(s === state ? 1 : 0, { state: s });
    });
    r.gauge('eventsubd_token_expiry_seconds', 'Seconds until the current app token expires (absent: none)', (g) => {
      g.reset();
      const s = tokens()?.status();
      if (s?.expiresAt !== undefined && s.expiresAt < Number.MAX_SAFE_INTEGER) g.set((s.expiresAt - clock.now()) / 1000);
    });
    r.gauge('eventsubd_ratelimit_remaining', 'Helix rate-limit points left, as last seen', (g) => {
      g.reset();
      const snap = helix()?.pacer.snapshot();
      if (snap?.remaining !== undefined) g.set(snap.remaining);
    });
  }

  recordSync(report: SyncReport): void {
    this.syncs.inc({ result: report.result });
    if (report.cost) {
      this.cost.set(report.cost.current, { kind: 'total' });
      if (report.cost.max !== undefined) this.cost.set(report.cost.max, { kind: 'max' });
    }
  }

  /** Subscriptions by status, as listed by the last sync. */
  recordListing(listed: readonly Subscription[]): void {
    this.subscriptions.reset();
    const byStatus = new Map<string, number>();
    for (const s of listed) byStatus.set(s.status, (byStatus.get(s.status) ?? 0) + 1);
    for (const [status, n] of byStatus) this.subscriptions.set(n, { status });
  }
}

