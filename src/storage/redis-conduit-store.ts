/**
 * The conduit record shared by the replicas (SPEC "Several replicas: Redis", "Conduit shards across replicas"):
 * the key `PREFIX:conduit` holds the same JSON as `STATE_DIR/conduit.json` (conduit-store.ts). The leader writes
 * it (create, adopt, replace); followers read it to learn which conduit their shards belong to.
 */
import { formatConduitRecord, parseConduitRecord, type ConduitRecord, type ConduitRecordStore } from '../conduit/conduit-store.js';
import { AppError, StateDirError } from '../lib/errors.js';
import { redisKey } from './types.js';

/** What the store needs of a connected node-redis client (`createClient(...)` from 'redis'). */
export interface RedisStringCommands {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
}

export interface RedisConduitStoreOptions {
  client: RedisStringCommands;
  /** EVENTSUBD_REDIS_PREFIX. */
  prefix: string;
}

export class RedisConduitStore implements ConduitRecordStore {
  readonly #client: RedisStringCommands;
  readonly #key: string;

  constructor(options: RedisConduitStoreOptions) {
    this.#client = options.client;
    this.#key = redisKey(options.prefix, 'conduit');
  }

  /** The key, for messages: `Redis key eventsubd:abc:conduit`. */
  get where(): string {
    return `Redis key ${this.#key}`;
  }

  /**
   * The record, or undefined when the key does not exist.
   * @throws AppError REDIS_UNAVAILABLE when Redis does not answer; StateDirError (STATE_DIR_UNUSABLE) when the key
   *   holds something else than a conduit record (the daemon must not guess: it would create a second conduit).
   */
  async read(): Promise<ConduitRecord | undefined> {
    let text: string | null;
    try {
      text = await this.#client.get(this.#key);
    } catch (err) {
      throw unavailable(`Cannot read ${this.where}`, err);
    }
    if (text === null) return undefined;
    const parsed = parseConduitRecord(text, this.where);
    if (typeof parsed === 'string') throw new StateDirError(parsed);
    return parsed;
  }

  /** Replaces the record. @throws AppError REDIS_UNAVAILABLE when Redis does not answer. */
  async write(record: ConduitRecord): Promise<void> {
    try {
      await this.#client.set(this.#key, formatConduitRecord(record));
    } catch (err) {
      throw unavailable(`Cannot write ${this.where}`, err);
    }
  }
}

/** The client's message says what failed (connection refused, NOAUTH...); node-redis never puts the password in it. */
function unavailable(what: string, err: unknown): AppError {
  const reason = err instanceof Error ? err.message : String(err);
  return new AppError('REDIS_UNAVAILABLE', `${what}: ${reason}`, { cause: err });
}
