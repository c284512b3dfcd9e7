/**
 * The daemon's conduit (SPEC "Conduit transport", twitch-contract section 6): which one to use at start, its
 * `shard_count`, the assignment of each WebSocket session to its shard, and the replacement of a conduit Twitch
 * deleted behind our back (all shards disabled for 72 hours: https://dev.twitch.tv/docs/eventsub/handling-conduit-events/).
 * It never guesses between conduits it did not create, and never replaces one the operator named.
 *
 * With several replicas (SPEC "Several replicas: Redis", "Conduit shards across replicas") the record is shared
 * and only the leader writes: it creates, adopts or replaces the conduit and sets its `shard_count`. A follower
 * uses the conduit the leader recorded (waiting for it with backoff), never one that answered 404 to it, and
 * moves to the leader's replacement when the record changes or its own PATCH meets the 404.
 */
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/retry.js';
import type { ConduitApi } from '../twitch/types.js';
import type { Conduit } from '../twitch/wire.js';
import { fileConduitRecordStore, type ConduitRecord, type ConduitRecordStore } from './conduit-store.js';

export type ConduitManagerOptions = {
  api: ConduitApi;
  /** EVENTSUBD_CONDUIT_ID: the operator's conduit, used as is and never replaced. */
  configuredId: string | undefined;
  /** EVENTSUBD_CONDUIT_SHARDS: the `shard_count` to set (with several replicas, the total across them). */
  shards: number;
  clock: Clock;
  logger: Logger;
  /**
   * Whether this process may create, adopt or replace the conduit and set its `shard_count`: with several
   * replicas, whether it is the leader now (asked before each such step). Default: always (one process).
   */
  mayWrite?: (() => boolean) | undefined;
  /** How a follower polls the record while the leader has not written one (or not yet replaced a lost conduit). Default 250 ms to 5 s. */
  followBackoff?: { baseMs: number; maxMs: number } | undefined;
} & (
  | {
      /** The state directory: the record is its `conduit.json` (one process). */
      stateDir: string;
      store?: undefined;
    }
  | {
      /** Where the record is kept, e.g. Redis shared by the replicas. */
      store: ConduitRecordStore;
      stateDir?: undefined;
    }
);

type ReplacedListener = (newId: string, oldId: string) => void;

export class ConduitManager {
  readonly #o: ConduitManagerOptions;
  readonly #store: ConduitRecordStore;
  readonly #mayWrite: () => boolean;
  /** Conduits that answered 404 here: a follower never goes back to one, whatever a stale record says. */
  readonly #gone = new Set<string>();
  readonly #listeners = new Set<ReplacedListener>();
  #current: string | undefined;
  /** The record as last read or written: its `previous` ids stay owned. */
  #record: ConduitRecord | undefined;
  #ensuring: Promise<string> | undefined;
  /** The replacement in flight, shared by every shard that met the 404 (one new conduit, not four). */
  #replacing: Promise<string> | undefined;

  constructor(options: ConduitManagerOptions) {
    this.#o = { ...options };
    this.#store = options.store ?? fileConduitRecordStore(options.stateDir);
    this.#mayWrite = options.mayWrite ?? (() => true);
  }

  /** The conduit in use, once `ensure` has settled it. */
  get conduitId(): string | undefined {
    return this.#current;
  }

  /**
   * Settles the conduit to use, by the SPEC's rules: EVENTSUBD_CONDUIT_ID must exist; else the recorded one is
   * adopted, or replaced (recorded, the old id kept in `previous`, a warning) when Twitch no longer has it; with no
   * record a conduit is created and recorded, unless the client already has some. Then `shard_count` is set to
   * `shards` when it differs. Concurrent calls share one run. Returns the conduit id.
   *
   * A follower (`mayWrite()` false) writes nothing and calls no Helix: it takes the configured conduit, or the
   * recorded one, waiting with backoff until the leader has recorded one it has not seen answer 404 (or until it
   * becomes the leader itself, then it goes on as above).
   * @throws AppError CONDUIT_NOT_FOUND (configured id unknown to Twitch), CONDUIT_AMBIGUOUS (no record, but the
   *   client has conduits), CONDUIT_LIMIT_REACHED; StateDirError for a record that cannot be read or written;
   *   the Helix client's errors.
   */
  ensure(signal?: AbortSignal): Promise<string> {
    this.#ensuring ??= this.#ensure(signal).finally(() => {
      this.#ensuring = undefined;
    });
    return this.#ensuring;
  }

  /** Every conduit whose subscriptions are ours (for sync ownership): the current, the configured, the recorded and its predecessors. */
  ownedIds(): string[] {
    const ids = [this.#current, this.#o.configuredId, this.#record?.conduit_id, ...(this.#record?.previous ?? [])];
    return [...new Set(ids.filter((id): id is string => id !== undefined))];
  }

  /**
   * Assigns shard `shardId` to WebSocket session `sessionId` (PATCH conduits/shards, within 10 s of the welcome:
   * contract 6.4). When the conduit is gone (404) it is replaced as `ensure` would, the `onReplaced` listeners are
   * called, and the assignment is tried once more on the new conduit.
   * @throws AppError SHARD_ASSIGN_FAILED (Twitch's per-shard error), CONDUIT_NOT_FOUND (a configured conduit gone,
   *   or the new one gone too); as `ensure`.
   */
  async assignShard(shardId: string, sessionId: string, signal?: AbortSignal): Promise<void> {
    const conduitId = this.#current ?? (await this.ensure(signal));
    try {
      await this.#assign(conduitId, shardId, sessionId, signal);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'CONDUIT_NOT_FOUND') throw err;
      const replacement = await this.#replaceLost(conduitId, err, signal);
      await this.#assign(replacement, shardId, sessionId, signal);
    }
  }

  /** `listener(newId, oldId)` runs after each replacement, once the new conduit is recorded (to re-sync onto it). */
  onReplaced(listener: ReplacedListener): void {
    this.#listeners.add(listener);
  }

  /**
   * Several replicas: re-reads the shared record and, when the leader put another conduit in place of the one in
   * use, moves to it (the `onReplaced` listeners are called). One read of the record, no Helix call: followers
   * call it periodically, since nothing else tells them (their sockets stay assigned to the lost conduit's
   * shards, and Twitch does not close them). Returns the conduit in use.
   */
  async follow(): Promise<string | undefined> {
    const before = this.#current;
    if (this.#o.configuredId !== undefined || before === undefined || this.#replacing || this.#ensuring) return before;
    const record = await this.#store.read();
    // A replacement or an ensure that ran meanwhile settled the conduit itself.
    if (this.#replacing || this.#ensuring || this.#current !== before) return this.#current;
    if (!record || record.conduit_id === before || this.#gone.has(record.conduit_id)) return before;
    this.#record = record;
    this.#gone.add(before);
    this.#o.logger.warn('The leader recorded another conduit in place of the one in use: moving to it', { conduitId: record.conduit_id, previousConduitId: before });
    this.#moved(record.conduit_id, before);
    return record.conduit_id;
  }

  /**
   * The session each enabled WebSocket shard of the conduit in use is assigned to, by shard id (Get Conduit
   * Shards): whether another replica has assigned a shard this one is handing over.
   */
  async assignedSessions(signal?: AbortSignal): Promise<Map<string, string>> {
    const id = this.#current;
    if (id === undefined) return new Map();
    const shards = await this.#o.api.listShards(id, { status: 'enabled' }, { signal });
    const out = new Map<string, string>();
    for (const s of shards) if (s.transport?.method === 'websocket' && s.transport.session_id) out.set(s.id, s.transport.session_id);
    return out;
  }

  async #ensure(signal: AbortSignal | undefined): Promise<string> {
    if (!this.#mayWrite()) {
      const id = await this.#awaitRecorded(signal);
      if (id !== undefined) return id;
    }
    const { api, configuredId } = this.#o;
    this.#record = await this.#store.read();
    const conduits = await api.listConduits({ signal });
    let conduit: Conduit;
    if (configuredId !== undefined) {
      const found = conduits.find((c) => c.id === configuredId);
      if (!found) {
        throw new AppError(
          'CONDUIT_NOT_FOUND',
          `EVENTSUBD_CONDUIT_ID names conduit ${configuredId}, which Twitch does not know for this client ID ` +
            `(its conduits: ${listIds(conduits)}): set it to one of them, or unset it to let eventsubd create one`,
        );
      }
      conduit = found;
    } else if (this.#record) {
      const recorded = this.#record.conduit_id;
      const found = conduits.find((c) => c.id === recorded);
      if (found) conduit = found;
      else {
        // The same single flight as a shard's assignment that met the 404: one replacement, however it is found.
        const gone = new AppError('CONDUIT_NOT_FOUND', `The recorded conduit ${recorded} no longer exists at Twitch`);
        const id = await this.#replaceLost(recorded, gone, signal);
        conduit = conduits.find((c) => c.id === id) ?? { id, shard_count: this.#o.shards };
      }
    } else {
      if (conduits.length > 0) {
        throw new AppError(
          'CONDUIT_AMBIGUOUS',
          `No conduit is recorded in ${this.#store.where} and this client ID already has ${conduits.length}: ` +
            `${listIds(conduits)}. eventsubd does not guess: set EVENTSUBD_CONDUIT_ID to the one to use (or delete those you no longer use)`,
        );
      }
      conduit = await this.#create(signal);
    }
    this.#current = conduit.id;
    if (conduit.shard_count !== this.#o.shards) {
      await api.updateConduit(conduit.id, this.#o.shards, { signal });
      this.#o.logger.info('Set the conduit shard count', { conduitId: conduit.id, from: conduit.shard_count, to: this.#o.shards });
    }
    return conduit.id;
  }

  /** Creates a conduit with `shards` shards and records it as the first one. */
  async #create(signal: AbortSignal | undefined): Promise<Conduit> {
    const conduit = await this.#o.api.createConduit(this.#o.shards, { signal });
    await this.#write({ conduit_id: conduit.id, created_at: this.#now(), previous: [] });
    this.#o.logger.info('Created a conduit and recorded it', { conduitId: conduit.id, shards: this.#o.shards });
    return conduit;
  }

  /** Creates the successor of `lostId` (which Twitch no longer has) and records it, `lostId` kept as owned. */
  async #createReplacing(lostId: string, signal: AbortSignal | undefined): Promise<Conduit> {
    const conduit = await this.#o.api.createConduit(this.#o.shards, { signal });
    const previous = [...new Set([...(this.#record?.previous ?? []), lostId])].filter((id) => id !== conduit.id);
    await this.#write({ conduit_id: conduit.id, created_at: this.#now(), previous });
    this.#o.logger.warn('The recorded conduit no longer exists at Twitch: created a new one and recorded it; the old one stays owned so its leftover subscriptions are pruned', {
      lostConduitId: lostId,
      conduitId: conduit.id,
    });
    return conduit;
  }

  /**
   * The conduit to use instead of `lostId`, which answered 404: the one another caller already put in its place,
   * or the one a replacement in flight is creating, or a new one. A configured conduit is never replaced.
   */
  async #replaceLost(lostId: string, cause: AppError, signal: AbortSignal | undefined): Promise<string> {
    if (this.#o.configuredId !== undefined && lostId === this.#o.configuredId) {
      throw new AppError(
        'CONDUIT_NOT_FOUND',
        `Conduit ${lostId} named by EVENTSUBD_CONDUIT_ID no longer exists at Twitch; eventsubd does not replace a conduit the operator named: ` +
          'create one and set EVENTSUBD_CONDUIT_ID to it, or unset it to let eventsubd create and record one',
        { cause },
      );
    }
    for (;;) {
      if (this.#current !== undefined && this.#current !== lostId) return this.#current;
      this.#replacing ??= this.#replace(lostId, signal).finally(() => {
        this.#replacing = undefined;
      });
      try {
        return await this.#replacing;
      } catch (err) {
        // The shared run was cut by the signal of the caller that started it: a caller still running starts another.
        if (err instanceof AppError && err.code === 'ABORTED' && !signal?.aborted) continue;
        throw err;
      }
    }
  }

  /**
   * A follower's conduit: the configured one, or the one the leader recorded unless it answered 404 here, waited
   * for with backoff. Undefined once this process may write (it became the leader): the caller goes on as one.
   */
  async #awaitRecorded(signal: AbortSignal | undefined): Promise<string | undefined> {
    const { configuredId, clock, logger } = this.#o;
    if (configuredId !== undefined) {
      this.#current = configuredId;
      return configuredId;
    }
    for (let attempt = 1; ; attempt++) {
      if (this.#mayWrite()) return undefined;
      const record = await this.#store.read();
      if (record && !this.#gone.has(record.conduit_id)) {
        this.#record = record;
        this.#current = record.conduit_id;
        return record.conduit_id;
      }
      if (attempt === 1) {
        logger.info('Waiting for the leader to record the conduit to use', { where: this.#store.where, lostConduitId: record?.conduit_id });
      }
      await clock.sleep(backoffDelay(attempt, this.#o.followBackoff ?? { baseMs: 250, maxMs: 5_000 }), signal);
    }
  }

  /**
   * Puts a conduit in place of `lostId`: a follower waits for the one the leader records; the leader adopts one a
   * previous leader already recorded in its place, or creates one.
   */
  async #replace(lostId: string, signal: AbortSignal | undefined): Promise<string> {
    this.#gone.add(lostId);
    let id = this.#mayWrite() ? undefined : await this.#awaitRecorded(signal);
    if (id === undefined) {
      // Several replicas: a leader elected after another replaced the conduit adopts that replacement. One
      // process (no `mayWrite`) wrote the record itself: nothing to read again.
      const record = this.#o.mayWrite ? await this.#store.read() : undefined;
      if (record && record.conduit_id !== lostId && !this.#gone.has(record.conduit_id)) {
        this.#record = record;
        id = record.conduit_id;
      } else {
        id = (await this.#createReplacing(lostId, signal)).id;
      }
    }
    this.#moved(id, lostId);
    return id;
  }

  /** The conduit in use is now `newId`: every `onReplaced` listener is told. */
  #moved(newId: string, oldId: string): void {
    this.#current = newId;
    for (const listener of this.#listeners) {
      try {
        listener(newId, oldId);
      } catch (err) {
        this.#o.logger.error('A conduit replacement listener failed', { error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** One PATCH of one shard; Twitch's per-shard error becomes SHARD_ASSIGN_FAILED. */
  async #assign(conduitId: string, shardId: string, sessionId: string, signal: AbortSignal | undefined): Promise<void> {
    const result = await this.#o.api.updateShards(conduitId, [{ id: shardId, sessionId }], { signal });
    const refused = result.errors.find((e) => e.id === shardId) ?? result.errors[0];
    if (refused) {
      throw new AppError(
        'SHARD_ASSIGN_FAILED',
        `Cannot assign shard ${shardId} of conduit ${conduitId} to its WebSocket session: Twitch answered ${refused.message}` +
          (refused.code ? ` (${refused.code})` : ''),
      );
    }
    this.#o.logger.debug('Assigned a conduit shard', { conduitId, shardId, sessionId });
  }

  async #write(record: ConduitRecord): Promise<void> {
    await this.#store.write(record);
    this.#record = record;
  }

  #now(): string {
    return new Date(this.#o.clock.now()).toISOString();
  }
}

function listIds(conduits: readonly Conduit[]): string {
  return conduits.length === 0 ? 'none' : conduits.map((c) => `${c.id} (${c.shard_count} shards)`).join(', ');
}
