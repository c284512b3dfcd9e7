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
 *
 * Which shards this process opens is a `ShardOwnership`: one process holds them all; several replicas hold a
 * lease per shard (SPEC "Several replicas: Redis", "Conduit shards across replicas"). A shard is opened when its
 * lease is acquired, and every PATCH is preceded by the fencing check `owns()`: Twitch's shard update is
 * last-writer-wins, so a replica whose lease was taken over must never assign that shard again. A shard given up
 * (lease lost, or released on close) keeps its socket until Twitch shows the shard assigned to another session,
 * or a deadline: Twitch retries a disabled shard's message on only one other shard, so closing first loses messages.
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
  /** Several replicas: re-reads the shared record, moving to a conduit the leader put in place (see ConduitManager). */
  follow?(): Promise<string | undefined>;
  /** Several replicas: the session each enabled shard is assigned to, by shard id (Get Conduit Shards), for the handover. */
  assignedSessions?(signal?: AbortSignal): Promise<Map<string, string>>;
}

/**
 * Which shard ids this process holds: all of them for one process (`allShards`), a lease each with several
 * replicas (ShardLeases, src/storage/redis-replicas.ts). Its events are given to the factory that builds it.
 */
export interface ShardOwnership {
  /** Starts taking and renewing shards, until `signal` aborts (which stops it without releasing anything). */
  start(signal: AbortSignal): void;
  /** The shard ids held now. */
  held(): string[];
  /** Fencing, right before each PATCH: whether this process still holds the shard (false: lost, never PATCH it). */
  owns(shardId: string): Promise<boolean>;
  release(shardId: string): Promise<void>;
  releaseAll(): Promise<void>;
  close(): Promise<void>;
}

/** What a ShardOwnership tells the runtime. */
export interface ShardOwnershipEvents {
  /** This process now holds `shardId`: its shard is opened. `fence` is the lease's fencing token. */
  onAcquire(shardId: string, fence: number): void;
  /** This process no longer holds `shardId` (taken over, or not renewed in time): its shard is handed over. */
  onLose(shardId: string): void;
}

/** One process: every shard id `0..shards-1`, held from `start` on, never lost. */
export function allShards(shards: number, events: ShardOwnershipEvents): ShardOwnership {
  const ids = Array.from({ length: shards }, (_, i) => String(i));
  return {
    start: () => ids.forEach((id) => events.onAcquire(id, 0)),
    held: () => [...ids],
    owns: () => Promise.resolve(true),
    release: () => Promise.resolve(),
    releaseAll: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
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
  /**
   * Several replicas: builds the shard ownership (the shard leases) around the runtime's events; started once
   * the conduit is settled, closed by `close()`. Default: this process holds every shard (`allShards`).
   */
  ownership?: ((events: ShardOwnershipEvents) => ShardOwnership) | undefined;
  /**
   * With `ownership`: how long a shard given up keeps its socket for another replica to assign the shard
   * (bounded by the stop deadline). Default 10 000 ms.
   */
  handoverMs?: number | undefined;
  /** With `ownership`: how often the shard list is read while handing over. Default 500 ms. */
  handoverPollMs?: number | undefined;
  /** With `ownership`: how often the shared conduit record is re-read (`follow`). Default 10 000 ms. */
  followEveryMs?: number | undefined;
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
  /** Several replicas: the shard ids this replica holds, of `shards_total` (EVENTSUBD_CONDUIT_SHARDS). */
  shards_held?: string[];
  shards_total?: number;
}

export class ConduitRuntime {
  readonly #o: ConduitRuntimeOptions;
  /** The shards this process holds, by shard id. */
  readonly #shards = new Map<string, Shard>();
  /** Shards given up, their sockets kept until another session is assigned to them (or the deadline). */
  readonly #leaving = new Map<Shard, { ours: string | null; deadline: number; closed: () => void }>();
  /** Resolves when a shard given up is closed: awaited by close(). */
  readonly #handingOver = new Set<Promise<void>>();
  #watching = false;
  readonly #ownership: ShardOwnership;
  readonly #replicated: boolean;
  readonly #abort = new AbortController();
  /** Appends in flight or being retried: awaited on close so that what was read is on disk before exit. */
  readonly #appending = new Set<Promise<void>>();
  #retrying = 0;
  #duplicates = 0;
  #started = false;
  #closing = false;
  /** Conduits this runtime already moved its shards onto (a replacement is reported by the manager and by verify). */
  readonly #handled = new Set<string>();
  #closed: Promise<void> | undefined;

  constructor(options: ConduitRuntimeOptions) {
    this.#o = options;
    const events: ShardOwnershipEvents = {
      onAcquire: (shardId) => this.#open(shardId),
      onLose: (shardId) => this.#lose(shardId),
    };
    this.#replicated = options.ownership !== undefined;
    this.#ownership = options.ownership ? options.ownership(events) : allShards(options.shards, events);
    options.conduits.onReplaced((newId, oldId) => this.#replaced(newId, oldId));
    this.#registerMetrics();
  }

  /**
   * Makes sure of the conduit (retrying while Twitch cannot be reached), then starts the shard ownership, which
   * opens a shard for each id held. Resolves once that is started (the shards are not yet assigned).
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
    logger.info('Conduit ready; opening its WebSocket shards', { conduit_id: id, shards: this.#o.shards, replicated: this.#replicated });
    this.#started = true;
    this.#ownership.start(signal);
    if (this.#replicated) void this.#followRecord(signal);
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
    for (const shard of this.#shards.values()) shard.reassign();
    this.#o.onReplaced?.(newId, oldId);
  }

  /**
   * True when at least one shard is assigned: Twitch can deliver to this daemon. A replica that holds no shard
   * (more replicas than shards) is ready once started: it has nothing to deliver to.
   */
  get ready(): boolean {
    if (this.#replicated && this.#started && !this.#closing && this.#shards.size === 0) return true;
    return [...this.#shards.values()].some((s) => s.view().state === 'assigned');
  }

  get started(): boolean {
    return this.#started;
  }

  status(): ConduitStatus {
    const now = this.#o.clock.now();
    const age = (t: number | null): number | null => (t === null ? null : Math.max(0, Math.round((now - t) / 100) / 10));
    const shards = this.#held().map((s) => {
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
    const status: ConduitStatus = {
      conduit_id: this.#o.conduits.conduitId ?? null,
      shards_assigned: shards.filter((s) => s.state === 'assigned').length,
      shards,
      pending_appends: this.#retrying,
      duplicates: this.#duplicates,
    };
    if (this.#replicated) {
      status.shards_held = shards.map((s) => s.id);
      status.shards_total = this.#o.shards;
    }
    return status;
  }

  /** `conduit 4/4 shards assigned` for STATUS= (several replicas: `conduit 2/2 shards assigned, 2 of 6 held`). */
  statusLine(): string {
    if (!this.#started) return 'conduit pending';
    const held = this.#held();
    const assigned = held.filter((s) => s.view().state === 'assigned').length;
    const line = `conduit ${assigned}/${held.length} shards assigned`;
    return this.#replicated ? `${line}, ${held.length} of ${this.#o.shards} held` : line;
  }

  /**
   * Stops. With several replicas the shards are handed over first: their leases released, their sockets kept
   * until another replica has assigned them (at most `handoverMs`). Then every shard is closed (a close frame
   * each) and what was read is journaled. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#abort.abort(new Error('stopping'));
      if (this.#replicated) {
        await this.#ownership.releaseAll().catch((err: unknown) => this.#o.logger.warn('Could not release the shard leases; they expire by themselves', { error: toAppError(err) }));
        for (const shardId of [...this.#shards.keys()]) this.#lose(shardId);
        await Promise.all([...this.#handingOver]);
        await this.#ownership.close().catch((err: unknown) => this.#o.logger.warn('Could not close the shard leases', { error: toAppError(err) }));
      }
      await Promise.all([...this.#shards.values()].map((s) => s.close()));
      await Promise.all([...this.#appending]);
    })();
    return this.#closed;
  }

  /** The shards held, by shard id in numeric order. */
  #held(): Shard[] {
    return [...this.#shards.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([, s]) => s);
  }

  /** `shardId` is held now: its shard is opened (unless it is open already, or the runtime stops). */
  #open(shardId: string): void {
    if (this.#closing || this.#shards.has(shardId)) return;
    const { clock, logger, conduits } = this.#o;
    const shard: Shard = new Shard({
      ...this.#o.shardOptions,
      shardId,
      url: this.#o.wsUrl,
      clock,
      logger: logger.child({ component: 'shard', shard: shardId }),
      assign: async (sessionId, signal) => {
        await this.#fence(shard, shardId);
        await conduits.assignShard(shardId, sessionId, signal);
      },
      onMessage: (m) => this.#take(m),
      onChange: () => this.#o.onChange?.(),
    });
    this.#shards.set(shardId, shard);
    if (this.#replicated) logger.info('Holding a conduit shard: opening its WebSocket', { shard: shardId });
    shard.start();
  }

  /**
   * The fencing check before a PATCH: the shard must still be the one held for `shardId`, and the ownership
   * must still hold its lease. When it does not (or cannot tell), nothing is PATCHed.
   * @throws AppError SHARD_ASSIGN_FAILED (the shard then closes that connection)
   */
  async #fence(shard: Shard, shardId: string): Promise<void> {
    if (!this.#replicated) return;
    const refuse = (why: string, cause?: unknown): AppError => new AppError('SHARD_ASSIGN_FAILED', `Not assigning conduit shard ${shardId}: ${why}`, { cause });
    if (this.#shards.get(shardId) !== shard) throw refuse('it is being handed over');
    let owned: boolean;
    try {
      owned = await this.#ownership.owns(shardId);
    } catch (err) {
      throw refuse(`its lease cannot be checked (${toAppError(err).message})`, err);
    }
    if (!owned) {
      this.#lose(shardId);
      throw refuse('its lease is no longer held by this replica (taken over, or not renewed in time)');
    }
  }

  /**
   * `shardId` is no longer held (lost, or released on close): its shard never PATCHes again, and its socket is
   * kept until Twitch shows the shard assigned to another session, or `handoverMs` passed; then it is closed.
   */
  #lose(shardId: string): void {
    const shard = this.#shards.get(shardId);
    if (!shard) return;
    this.#shards.delete(shardId);
    if (!this.#closing) this.#o.logger.warn('No longer holding a conduit shard: handing it over', { shard: shardId });
    const view = shard.view();
    let resolve!: () => void;
    const closed = new Promise<void>((r) => (resolve = r));
    this.#leaving.set(shard, {
      // 'assigning': a PATCH that passed the fence may still land, so that session is kept as well.
      ours: view.state === 'assigned' || view.state === 'assigning' ? view.sessionId : null,
      deadline: this.#o.clock.now() + (this.#o.handoverMs ?? 10_000),
      closed: resolve,
    });
    this.#handingOver.add(closed);
    void closed.then(() => this.#handingOver.delete(closed));
    this.#watchHandovers();
    this.#o.onChange?.();
  }

  /** Runs the handover loop unless it runs; one that ends as a shard is added is run again for it. */
  #watchHandovers(): void {
    if (this.#watching) return;
    this.#watching = true;
    void this.#handOver().finally(() => {
      this.#watching = false;
      if (this.#leaving.size > 0) this.#watchHandovers();
    });
  }

  /**
   * One loop for every shard being handed over: one Get Conduit Shards per round, whatever their number (Helix
   * points are shared by the replicas). A shard is closed once another session holds it at Twitch, once its own
   * session is gone (nothing left to keep), or at its deadline.
   */
  async #handOver(): Promise<void> {
    const { clock } = this.#o;
    while (this.#settleHandovers(undefined) > 0) {
      const sessions = await this.#assignedSessions(Math.min(...[...this.#leaving.values()].map((l) => l.deadline)));
      if (this.#settleHandovers(sessions) > 0) await clock.sleep(this.#o.handoverPollMs ?? 500);
    }
  }

  /** Closes each shard being handed over that need not wait any more (given Twitch's view when known); returns how many still wait. */
  #settleHandovers(sessions: Map<string, string> | undefined): number {
    const now = this.#o.clock.now();
    for (const [shard, leaving] of this.#leaving) {
      const { id, sessionId, state } = shard.view();
      let outcome: string | undefined;
      if (leaving.ours === null || sessionId !== leaving.ours || (state !== 'assigned' && state !== 'assigning')) outcome = 'no session of ours to keep';
      else if (sessions && sessions.get(id) !== leaving.ours) outcome = sessions.has(id) ? 'another replica assigned it' : 'the shard is not enabled at Twitch';
      else if (now >= leaving.deadline) outcome = 'no other replica assigned it in time';
      if (outcome === undefined) continue;
      this.#leaving.delete(shard);
      this.#o.logger.info('Handed a conduit shard over: closing its WebSocket', { shard: id, outcome });
      void shard.close().then(leaving.closed);
    }
    return this.#leaving.size;
  }

  /** Twitch's view of the shards, or undefined when it cannot be had before `deadline` (the Helix client retries). */
  async #assignedSessions(deadline: number): Promise<Map<string, string> | undefined> {
    const { clock, conduits } = this.#o;
    // Without a view of Twitch's shards, nothing tells that another replica took over: the deadline does.
    if (!conduits.assignedSessions) return undefined;
    const timer = new AbortController();
    const cut = new AbortController();
    void clock.sleep(Math.max(0, deadline - clock.now()), timer.signal).then(() => cut.abort(), () => undefined);
    try {
      return await conduits.assignedSessions(cut.signal);
    } catch {
      return undefined;
    } finally {
      timer.abort();
    }
  }

  /** Re-reads the shared conduit record every `followEveryMs`, until `signal` aborts. */
  async #followRecord(signal: AbortSignal): Promise<void> {
    const follow = this.#o.conduits.follow?.bind(this.#o.conduits);
    if (!follow) return;
    while (!signal.aborted) {
      try {
        await this.#o.clock.sleep(this.#o.followEveryMs ?? 10_000, signal);
        await follow();
      } catch (err) {
        if (!signal.aborted) this.#o.logger.warn('Could not re-read the shared conduit record', { error: toAppError(err) });
      }
    }
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
      for (const s of this.#held()) {
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
