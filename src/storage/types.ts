/**
 * The storage seam (README.md "Running several replicas"): what the receiver, the forwarder, the event stream and
 * the token manager need from storage, whichever backs it. Files under `STATE_DIR` are the embedded default
 * (one process); Redis (`EVENTSUBD_REDIS_URL`) lets several replicas share the journal, the de-duplication, the
 * cursors, the token record, the locks and the leases.
 */
import type { createClient } from 'redis';

export type { CursorStorage, EventJournal } from '../journal/types.js';
export type { RedisDurability } from '../config/settings.js';

/** A connected node-redis client (RESP3, no modules): what every Redis store takes. */
export type RedisClient = ReturnType<typeof createClient>;

/** `PREFIX` + `:` + name; a prefix that already ends in `:` gets no second one (SPEC "Several replicas: Redis"). */
export function redisKey(prefix: string, name: string): string {
  return prefix.endsWith(':') ? `${prefix}${name}` : `${prefix}:${name}`;
}
