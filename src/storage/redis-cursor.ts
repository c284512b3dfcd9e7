/**
 * A named consumer's position in the journal, in Redis (SPEC "Several replicas: Redis"): `PREFIX:cursor:<name>`
 * holds the seq as a decimal string. Only the leader forwards, but leadership moves: an old leader's save that
 * arrives after the new leader's must not rewind the cursor, so a save only ever moves it forward (one server-side
 * script compares and sets).
 */
import { AppError } from '../lib/errors.js';
import { redisUnavailable as unavailable, type RedisClient } from './redis-token-store.js';
import { redisKey, type CursorStorage } from './types.js';

export interface RedisCursorOptions {
  /** Connected. */
  client: RedisClient;
  /** `EVENTSUBD_REDIS_PREFIX`. */
  prefix: string;
  /** Letters, digits, `-` and `_`, as for the file cursor (`forwarder`). */
  name: string;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** What the key must hold: a non-negative integer, at most 16 digits (a safe integer). */
const SEQ = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Sets KEYS[1] to ARGV[1] unless it already holds a larger seq. A value that is not a seq is an error, not
 * overwritten: the operator must see it (the same rule as `load()`). Returns 1 when it moved, 0 when not.
 */
const SAVE_MAX = `
local current = redis.call('GET', KEYS[1])
if current then
  if not string.match(current, '^%d+$') or string.len(current) > 16 then
    return redis.error_reply('NOT_A_SEQ')
  end
  if tonumber(current) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;

/** One named consumer cursor (`load()` / `save(seq)`) in Redis; `save` never moves it backwards. */
export class RedisCursor implements CursorStorage {
  readonly #client: RedisClient;
  readonly #key: string;

  /** @throws AppError STATE_DIR_UNUSABLE when `name` is not a usable cursor name (as `CursorStore`). */
  constructor(options: RedisCursorOptions) {
    if (!NAME.test(options.name)) {
      throw new AppError('STATE_DIR_UNUSABLE', `Cannot use '${options.name}' as a cursor name: use 1-64 letters, digits, '-' or '_'`);
    }
    this.#client = options.client;
    this.#key = redisKey(options.prefix, `cursor:${options.name}`);
  }

  /** The cursor's key (`PREFIX:cursor:<name>`). */
  get key(): string {
    return this.#key;
  }

  /**
   * The saved seq; 0 when none was saved yet.
   * @throws AppError STATE_DIR_UNUSABLE (as the file cursor's corrupt file) when the key holds anything but a
   *   non-negative integer: guessing would skip or repeat deliveries, so a person decides; REDIS_UNAVAILABLE.
   */
  async load(): Promise<number> {
    let raw: string | null;
    try {
      raw = await this.#client.get(this.#key);
    } catch (err) {
      throw unavailable(`Cannot read the cursor ${this.#key} from Redis`, err);
    }
    if (raw === null) return 0;
    if (!SEQ.test(raw)) throw this.#notASeq(raw);
    return Number(raw);
  }

  /**
   * Moves the cursor to `seq`, unless it already is at or past it.
   * @throws AppError STATE_DIR_UNUSABLE when `seq` is not a non-negative integer, or when the key holds
   *   something else than a seq; REDIS_UNAVAILABLE.
   */
  async save(seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new AppError('STATE_DIR_UNUSABLE', `Cannot save the cursor as 'seq' must be a non-negative integer: current value is ${seq}`);
    }
    try {
      await this.#client.eval(SAVE_MAX, { keys: [this.#key], arguments: [String(seq)] });
    } catch (err) {
      if (err instanceof Error && err.message.includes('NOT_A_SEQ')) {
        throw this.#notASeq(await this.#client.get(this.#key).catch(() => null), err);
      }
      throw unavailable(`Cannot save the cursor ${this.#key} in Redis`, err);
    }
  }

  #notASeq(raw: string | null, cause?: unknown): AppError {
    const shown = raw === null ? 'unreadable' : JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);
    return new AppError(
      'STATE_DIR_UNUSABLE',
      `Cannot use the cursor ${this.#key} in Redis: it must hold a non-negative integer: current value is ${shown}; ` +
        'set it to the last seq delivered, or delete it to deliver again from the oldest record kept',
      { cause },
    );
  }
}
