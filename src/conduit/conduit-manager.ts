/**
 * The daemon's conduit (SPEC "Conduit transport", twitch-contract section 6): which one to use at start, its
 * `shard_count`, the assignment of each WebSocket session to its shard, and the replacement of a conduit Twitch
 * deleted behind our back (all shards disabled for 72 hours: https://dev.twitch.tv/docs/eventsub/handling-conduit-events/).
 * It never guesses between conduits it did not create, and never replaces one the operator named.
 */
import type { Clock } from '../lib/clock.js';
import { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { ConduitApi } from '../twitch/types.js';
import type { Conduit } from '../twitch/wire.js';
import { conduitRecordPath, readConduitRecord, writeConduitRecord, type ConduitRecord } from './conduit-store.js';

export interface ConduitManagerOptions {
  api: ConduitApi;
  stateDir: string;
  /** EVENTSUBD_CONDUIT_ID: the operator's conduit, used as is and never replaced. */
  configuredId: string | undefined;
  /** EVENTSUBD_CONDUIT_SHARDS: the `shard_count` to set. */
  shards: number;
  clock: Clock;
  logger: Logger;
}

type ReplacedListener = (newId: string, oldId: string) => void;

export class ConduitManager {
  readonly #o: ConduitManagerOptions;
  readonly #listeners = new Set<ReplacedListener>();
  #current: string | undefined;
  /** The record as last read or written: its `previous` ids stay owned. */
  #record: ConduitRecord | undefined;
  #ensuring: Promise<string> | undefined;
  /** The replacement in flight, shared by every shard that met the 404 (one new conduit, not four). */
  #replacing: Promise<string> | undefined;

  constructor(options: ConduitManagerOptions) {
    this.#o = { ...options };
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

  async #ensure(signal: AbortSignal | undefined): Promise<string> {
    const { api, configuredId } = this.#o;
    this.#record = await readConduitRecord(this.#o.stateDir);
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
          `No conduit is recorded in ${conduitRecordPath(this.#o.stateDir)} and this client ID already has ${conduits.length}: ` +
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

  async #replace(lostId: string, signal: AbortSignal | undefined): Promise<string> {
    const conduit = await this.#createReplacing(lostId, signal);
    this.#current = conduit.id;
    for (const listener of this.#listeners) {
      try {
        listener(conduit.id, lostId);
      } catch (err) {
        this.#o.logger.error('A conduit replacement listener failed', { error: err instanceof Error ? err.message : String(err) });
      }
    }
    return conduit.id;
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
    await writeConduitRecord(this.#o.stateDir, record);
    this.#record = record;
  }

  #now(): string {
    return new Date(this.#o.clock.now()).toISOString();
  }
}

function listIds(conduits: readonly Conduit[]): string {
  return conduits.length === 0 ? 'none' : conduits.map((c) => `${c.id} (${c.shard_count} shards)`).join(', ');
}
