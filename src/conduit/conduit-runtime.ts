/**
 * The daemon's conduit mode (README "No public HTTPS endpoint? Use a conduit"): the conduit made sure of once
 * (created, adopted or replaced by the ConduitManager), then EVENTSUBD_CONDUIT_SHARDS WebSocket shards held open,
 * each assigned to its shard id. Every notification or revocation a shard reads goes through the same intake as
 * a webhook's (de-duplication by message id, durable journal, forwarder, stream), recorded with
 * `"transport": "conduit"` and its shard id.
 *
 * A WebSocket has no acknowledgement and Twitch does not redeliver
 * (https://dev.twitch.tv/docs/eventsub/handling-websocket-events/), so a message read but not yet journaled is
 * held here and its append retried until it is on disk or the daemon stops: never dropped on a journal hiccup.
 */
import { AppError, toAppError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Registry } from '../lib/metrics.js';
import { backoffDelay, retry } from '../lib/retry.js';
import type { Intake } from '../receiver/intake.js';
import type { JournalEntry } from '../receiver/types.js';
import { Shard, type ShardMessage, type ShardOptions, type ShardView } from './shard.js';

/** What the runtime needs of the ConduitManager. */
export interface ConduitControl {
  ensure(signal?: AbortSignal): Promise<string>;
  readonly conduitId: string | undefined;
  assignShard(shardId: string, sessionId: string, signal?: AbortSignal): Promise<void>;
  onReplaced(listener: (newId: string, oldId: string) => void): void;
}

export interface ConduitRuntimeOptions {
  conduits: ConduitControl;
  shards: number;
  wsUrl: string;
  intake: Intake;
  clock: Clock;
  logger: Logger;
  /** Where the per-shard series are registered (`/metrics`). */
  registry?: Registry | undefined;
  /** The conduit was replaced (deleted by Twitch): every declared subscription must be synced onto the new one. */
  onReplaced?: ((newId: string, oldId: string) => void) | undefined;
  /** Shard state changed (systemd's STATUS=). */
  onChange?: (() => void) | undefined;
  /** Tuning for tests (timeouts, backoff). */
  shardOptions?: Partial<Pick<ShardOptions, 'welcomeTimeoutMs' | 'keepaliveMarginMs' | 'backoff' | 'maxFrameBytes'>> | undefined;
  /** Backoff of the first `ensure` when Twitch cannot be reached, and of a failed journal append. */
  backoff?: { baseMs: number; maxMs: number } | undefined;
}

/** Errors after which `ensure` is not retried: the operator must act (exit 77/78), or Twitch's limit is reached. */
const FATAL_ENSURE = new Set(['CONDUIT_AMBIGUOUS', 'CONDUIT_NOT_FOUND', 'CONDUIT_LIMIT_REACHED', 'USER_TOKEN_REFUSED', 'TOKEN_CLIENT_MISMATCH', 'TOKEN_INVALID', 'TWITCH_AUTH_FAILED']);

export interface ConduitStatus {
  conduit_id: string | null;
  shards_assigned: number;
  shards: Array<{
    id: string;
    state: ShardView['state'];
    session_id: string | null;
    session_age_seconds: number | null;
    last_message_age_seconds: number | null;
    reconnects: number;
    messages: number;
    last_close_code: number | null;
    last_error: string | null;
  }>;
  /** Messages read from a shard whose journal append is being retried. */
  pending_appends: number;
  duplicates: number;
}

export class ConduitRuntime {
  readonly #o: ConduitRuntimeOptions;
  readonly #shards: Shard[] = [];
  readonly #abort = new AbortController();
  /** Appends in flight or being retried: awaited on close so that what was read is on disk before exit. */
  readonly #appending = new Set<Promise<void>>();
  #retrying = 0;
  #duplicates = 0;
  #started = false;
  /** Conduits this runtime already moved its shards onto (a replacement is reported by the manager and by verify). */
  readonly #handled = new Set<string>();
  #closed: Promise<void> | undefined;

  constructor(options: ConduitRuntimeOptions) {
    this.#o = options;
    options.conduits.onReplaced((newId, oldId) => this.#replaced(newId, oldId));
    this.#registerMetrics();
  }

  /**
   * Makes sure of the conduit (retrying while Twitch cannot be reached), then opens every shard. Resolves once
   * the shards are started (not yet assigned).
   * @throws AppError when the conduit cannot be used without the operator (CONDUIT_AMBIGUOUS, CONDUIT_NOT_FOUND,
   *   CONDUIT_LIMIT_REACHED, a refused token), or ABORTED on close.
   */
  async start(): Promise<string> {
    const { conduits, logger, clock } = this.#o;
    const signal = this.#abort.signal;
    const id = await retry(() => conduits.ensure(signal), {
      clock,
      signal,
      backoff: this.#o.backoff ?? { baseMs: 1_000, maxMs: 60_000 },
      isRetriable: (err) => !FATAL_ENSURE.has(toAppError(err).code),
      onRetry: (err, attempt, delayMs) => logger.warn('Could not make sure of the conduit; retrying', { error: toAppError(err), attempt, delay_ms: delayMs }),
    });
    if (signal.aborted) throw new AppError('ABORTED', 'The operation was aborted');
    logger.info('Conduit ready; opening its WebSocket shards', { conduit_id: id, shards: this.#o.shards });
    for (let i = 0; i < this.#o.shards; i++) {
      const shardId = String(i);
      const shard = new Shard({
        ...this.#o.shardOptions,
        shardId,
        url: this.#o.wsUrl,
        clock,
        logger: logger.child({ component: 'shard', shard: shardId }),
        assign: (sessionId, s) => conduits.assignShard(shardId, sessionId, s),
        onMessage: (m) => this.#take(m),
        onChange: () => this.#o.onChange?.(),
      });
      this.#shards.push(shard);
      shard.start();
    }
    this.#started = true;
    return id;
  }

  /**
   * Makes sure the conduit still exists (before each sync): Twitch deletes a conduit whose shards all stayed
   * disabled for 72 hours, and tells no one (https://dev.twitch.tv/docs/eventsub/handling-conduit-events/). When
   * the manager had to replace it, every shard is assigned to the new conduit. Before `start()`: nothing to do.
   */
  async verify(signal?: AbortSignal): Promise<void> {
    if (!this.#started) return;
    const before = this.#o.conduits.conduitId;
    const id = await this.#o.conduits.ensure(signal);
    if (before !== undefined && id !== before) this.#replaced(id, before);
  }

  #replaced(newId: string, oldId: string): void {
    if (this.#handled.has(newId)) return;
    this.#handled.add(newId);
    this.#o.logger.warn('The conduit was deleted by Twitch; a new one replaces it, every shard is assigned to it and every declared subscription synced onto it', {
      conduit_id: newId,
      previous_conduit_id: oldId,
    });
    for (const shard of this.#shards) shard.reassign();
    this.#o.onReplaced?.(newId, oldId);
  }

  /** True when at least one shard is assigned: Twitch can deliver to this daemon. */
  get ready(): boolean {
    return this.#shards.some((s) => s.view().state === 'assigned');
  }

  get started(): boolean {
    return this.#started;
  }

  status(): ConduitStatus {
    const now = this.#o.clock.now();
    const age = (t: number | null): number | null => (t === null ? null : Math.max(0, Math.round((now - t) / 100) / 10));
    const shards = this.#shards.map((s) => {
      const v = s.view();
      return {
        id: v.id,
        state: v.state,
        session_id: v.sessionId,
        session_age_seconds: age(v.sessionStartedAt),
        last_message_age_seconds: age(v.lastMessageAt),
        reconnects: v.reconnects,
        messages: v.messages,
        last_close_code: v.lastCloseCode,
        last_error: v.lastError,
      };
    });
    return {
      conduit_id: this.#o.conduits.conduitId ?? null,
      shards_assigned: shards.filter((s) => s.state === 'assigned').length,
      shards,
      pending_appends: this.#retrying,
      duplicates: this.#duplicates,
    };
  }

  /** `conduit 4/4 shards assigned` for STATUS=. */
  statusLine(): string {
    if (!this.#started) return 'conduit pending';
    const assigned = this.#shards.filter((s) => s.view().state === 'assigned').length;
    return `conduit ${assigned}/${this.#shards.length} shards assigned`;
  }

  /** Closes every shard (a close frame each), then waits for what was read to be journaled. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#abort.abort(new Error('stopping'));
      await Promise.all(this.#shards.map((s) => s.close()));
      await Promise.all([...this.#appending]);
    })();
    return this.#closed;
  }

  /** One frame from a shard, in arrival order: appended at once (group commit), retried while the journal fails. */
  #take(m: ShardMessage): void {
    const entry: JournalEntry = {
      message_id: m.messageId,
      message_type: m.messageType,
      received_at: new Date(this.#o.clock.now()).toISOString(),
      transport: 'conduit',
      shard: m.shardId,
      subscription: m.subscription,
    };
    if (m.event !== undefined) entry.event = m.event;
    if (m.events !== undefined) entry.events = m.events;
    const p = this.#store(entry).finally(() => this.#appending.delete(p));
    this.#appending.add(p);
  }

  async #store(entry: JournalEntry): Promise<void> {
    const { intake, clock, logger } = this.#o;
    let result = await intake.store(entry);
    if (result === 'failed') {
      // Twitch will not send it again: hold it and retry, whatever the daemon is doing, until it is on disk.
      this.#retrying += 1;
      const backoff = this.#o.backoff ?? { baseMs: 200, maxMs: 5_000 };
      for (let attempt = 1; result === 'failed'; attempt++) {
        logger.error('A conduit message could not be journaled; holding it and retrying', { message_id: entry.message_id, shard: entry.shard, attempt });
        await clock.sleep(backoffDelay(attempt, backoff)).catch(() => undefined);
        result = await intake.store(entry);
      }
      this.#retrying -= 1;
    }
    if (result === 'duplicate') this.#duplicates += 1;
  }

  #registerMetrics(): void {
    const r = this.#o.registry;
    if (!r) return;
    const each = (pick: (v: ShardView) => number) => (m: { set(value: number, labels?: Record<string, string>): void }): void => {
      for (const s of this.#shards) {
        const v = s.view();
        m.set(pick(v), { shard: v.id });
      }
    };
    r.counter('eventsubd_conduit_shard_messages_total', 'Notifications and revocations read, by conduit shard', each((v) => v.messages));
    r.counter('eventsubd_conduit_shard_reconnects_total', 'WebSocket reconnections (dead, closed or session_reconnect), by conduit shard', each((v) => v.reconnects));
    r.gauge('eventsubd_conduit_shard_assigned', 'Whether the shard holds an assigned session (1) or not (0)', each((v) => (v.state === 'assigned' ? 1 : 0)));
    r.counter('eventsubd_conduit_duplicates_total', 'Conduit messages already journaled (same message id seen before)', (c) => c.set(this.#duplicates));
    r.gauge('eventsubd_conduit_pending_appends', 'Conduit messages held while their journal append is retried', (g) => g.set(this.#retrying));
  }
}
