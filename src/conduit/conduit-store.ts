/**
 * `STATE_DIR/conduit.json`: the conduit this daemon created (SPEC "Conduit transport"), and the ids of the
 * conduits it replaced (deleted by Twitch behind its back), kept as owned so that their leftover subscriptions
 * are pruned. Written atomically, mode 0600, read without following a link. The daemon writes it; the CLI reads
 * it (`subscriptions sync` and `conduit status` in conduit mode).
 *
 * With several replicas the same record lives in Redis instead (src/storage/redis-conduit-store.ts, the same
 * JSON): both are a `ConduitRecordStore`, which is all the ConduitManager knows.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { StateDirError } from '../lib/errors.js';
import { readFileNoFollow } from '../lib/state-dir.js';

export interface ConduitRecord {
  /** The conduit in use. */
  conduit_id: string;
  /** When this daemon created it (ISO 8601), or first recorded it. */
  created_at: string;
  /** Conduits used before this one (deleted by Twitch, then replaced): still owned, their subscriptions pruned. */
  previous: string[];
}

const RecordSchema = z.object({
  conduit_id: z.string().min(1),
  created_at: z.string(),
  previous: z.array(z.string().min(1)).default([]),
});

/** Where the conduit record is kept: a file (one process) or a Redis key shared by the replicas. */
export interface ConduitRecordStore {
  /** Where the record lives, for messages: a path, or a Redis key. */
  readonly where: string;
  /**
   * The record, or undefined when there is none.
   * @throws an AppError when it exists but cannot be read or is not a conduit record (the daemon must not guess:
   *   it would create a second conduit), or when the store cannot be reached.
   */
  read(): Promise<ConduitRecord | undefined>;
  /** Replaces the record. @throws an AppError when it cannot be written. */
  write(record: ConduitRecord): Promise<void>;
}

export function conduitRecordPath(stateDir: string): string {
  return join(stateDir, 'conduit.json');
}

/** The file `STATE_DIR/conduit.json` as a ConduitRecordStore. */
export function fileConduitRecordStore(stateDir: string): ConduitRecordStore {
  return {
    where: conduitRecordPath(stateDir),
    read: () => readConduitRecord(stateDir),
    write: (record) => writeConduitRecord(stateDir, record),
  };
}

/**
 * Parses the record's JSON text, or explains in one line what is wrong with it (`where` names the file or key).
 * Shared by the file and the Redis store, so that both hold exactly the same JSON.
 */
export function parseConduitRecord(text: string, where: string): ConduitRecord | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `${where} is not valid JSON: fix it, or remove it and set EVENTSUBD_CONDUIT_ID`;
  }
  const parsed = RecordSchema.safeParse(json);
  if (!parsed.success) {
    return `${where} is not a conduit record (conduit_id, created_at, previous): fix it, or remove it and set EVENTSUBD_CONDUIT_ID`;
  }
  return parsed.data;
}

/** The record's JSON text, as both stores write it. */
export function formatConduitRecord(record: ConduitRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

/**
 * The record, or undefined when there is none.
 * @throws StateDirError (STATE_DIR_UNUSABLE) when it exists but cannot be read or is not a conduit record: the
 *   daemon must not guess (it would create a second conduit), the operator fixes or removes the file.
 */
export async function readConduitRecord(stateDir: string): Promise<ConduitRecord | undefined> {
  const path = conduitRecordPath(stateDir);
  let text: string;
  try {
    text = await readFileNoFollow(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateDirError(`Cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parseConduitRecord(text, path);
  if (typeof parsed === 'string') throw new StateDirError(parsed);
  return parsed;
}

/** Replaces the record atomically (0600). @throws StateDirError when it cannot be written. */
export async function writeConduitRecord(stateDir: string, record: ConduitRecord): Promise<void> {
  const path = conduitRecordPath(stateDir);
  try {
    await writeFileAtomic(path, formatConduitRecord(record));
  } catch (err) {
    throw new StateDirError(`Cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}
