/**
 * `STATE_DIR/authorizations.json`: which users authorized the app, with which scopes, when and how, and when
 * a grant was revoked (README "User authorization"). A local record of what Twitch knows (Get User
 * Authorization is the truth), kept so that `authorizations list`, `/status` and the daemon can say who was
 * asked and who disconnected. It never holds a token. 0600, replaced atomically, changed under a lock shared
 * by the daemon and the CLI.
 */
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { isoTime, type Clock } from '../lib/clock.js';
import { StateDirError } from '../lib/errors.js';
import { waitForLockFile } from '../lib/file-lock.js';
import type { Logger } from '../lib/logger.js';
import { readFileNoFollow } from '../lib/state-dir.js';

/** How long a change waits for another process's change (the lock is held for a few ms per change). */
const LOCK_WAIT_MS = 10_000;

export type GrantHow = 'authorization_code' | 'device_code' | 'grant_event';

export interface GrantRecord {
  userId: string;
  login: string | null;
  scopes: string[];
  grantedAt: string;
  how: GrantHow;
  revokedAt: string | null;
}

const FileSchema = z.object({
  version: z.literal(1),
  users: z.record(
    z.string(),
    z.object({
      login: z.string().nullable(),
      scopes: z.array(z.string()),
      granted_at: z.string(),
      how: z.enum(['authorization_code', 'device_code', 'grant_event']),
      revoked_at: z.string().nullable(),
    }),
  ),
});

export class GrantStore {
  readonly #dir: string;
  readonly #path: string;
  readonly #lock: string;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(options: { stateDir: string; clock: Clock; logger: Logger }) {
    this.#dir = options.stateDir;
    this.#path = join(options.stateDir, 'authorizations.json');
    this.#lock = join(options.stateDir, 'authorizations.lock');
    this.#clock = options.clock;
    this.#logger = options.logger;
  }

  get path(): string {
    return this.#path;
  }

  /** Every record, oldest grant first. A file that is not ours is reported at warn and read as empty. */
  async list(): Promise<GrantRecord[]> {
    return (await this.#read()).records;
  }

  async #read(): Promise<{ records: GrantRecord[]; unreadable: boolean }> {
    let text: string;
    try {
      text = await readFileNoFollow(this.#path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], unreadable: false };
      throw new StateDirError(`Cannot read ${this.#path}: ${(err as Error).message}`, { cause: err });
    }
    let parsed;
    try {
      parsed = FileSchema.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.#logger.warn('Ignoring the authorization record: it is not in the expected shape (Twitch still knows the grants)', { path: this.#path });
      return { records: [], unreadable: true };
    }
    const records = Object.entries(parsed.data.users)
      .map(([userId, u]) => ({ userId, login: u.login, scopes: u.scopes, grantedAt: u.granted_at, how: u.how, revokedAt: u.revoked_at }))
      .sort((a, b) => a.grantedAt.localeCompare(b.grantedAt));
    return { records, unreadable: false };
  }

  /** Records a grant (scopes added to what the user granted before; a revocation is cleared). */
  async recordGrant(grant: { userId: string; login: string | null; scopes: readonly string[]; how: GrantHow }): Promise<GrantRecord> {
    return this.#change((records) => {
      const now = isoTime(this.#clock.now())!;
      const before = records.get(grant.userId);
      const scopes = before && !before.revokedAt ? [...new Set([...before.scopes, ...grant.scopes])].sort() : [...grant.scopes].sort();
      const record: GrantRecord = { userId: grant.userId, login: grant.login ?? before?.login ?? null, scopes, grantedAt: now, how: grant.how, revokedAt: null };
      records.set(grant.userId, record);
      return record;
    });
  }

  /**
   * Records a `user.authorization.grant` event. It names no scopes: an active record (from `authorize`) is kept as
   * it is; otherwise a record with no scopes is started (Twitch's view, Get User Authorization, tells them).
   */
  async recordEvent(event: { userId: string; login: string | null }): Promise<GrantRecord> {
    return this.#change((records) => {
      const before = records.get(event.userId);
      if (before && !before.revokedAt) {
        const kept = { ...before, login: before.login ?? event.login };
        records.set(event.userId, kept);
        return kept;
      }
      const record: GrantRecord = { userId: event.userId, login: event.login, scopes: [], grantedAt: isoTime(this.#clock.now())!, how: 'grant_event', revokedAt: null };
      records.set(event.userId, record);
      return record;
    });
  }

  /** Marks a user's grant revoked (a user.authorization.revoke event); an unknown user gets a revoked record. */
  async markRevoked(userId: string, login: string | null): Promise<GrantRecord> {
    return this.#change((records) => {
      const now = isoTime(this.#clock.now())!;
      const before = records.get(userId);
      const record: GrantRecord = before
        ? { ...before, login: before.login ?? login, revokedAt: now }
        : { userId, login, scopes: [], grantedAt: now, how: 'grant_event', revokedAt: now };
      records.set(userId, record);
      return record;
    });
  }

  /** Reads, edits and replaces the record under the lock; an unreadable record is kept aside as `.bad`, not overwritten. */
  async #change<T>(edit: (records: Map<string, GrantRecord>) => T): Promise<T> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw new StateDirError(`Cannot create the state directory ${this.#dir} (EVENTSUBD_STATE_DIR): ${(err as Error).message}`, { cause: err });
    });
    const lock = await waitForLockFile(this.#lock, { clock: this.#clock, pollMs: 20, maxWaitMs: LOCK_WAIT_MS });
    if (!lock) throw new StateDirError(`Cannot change ${this.#path}: another process has held ${this.#lock} for ${LOCK_WAIT_MS / 1000} s`);
    try {
      const read = await this.#read();
      if (read.unreadable) await rename(this.#path, `${this.#path}.bad`).catch(() => undefined);
      const records = new Map(read.records.map((r) => [r.userId, r]));
      const result = edit(records);
      const users = Object.fromEntries(
        [...records.values()].map((r) => [r.userId, { login: r.login, scopes: r.scopes, granted_at: r.grantedAt, how: r.how, revoked_at: r.revokedAt }]),
      );
      try {
        await writeFileAtomic(this.#path, `${JSON.stringify({ version: 1, users }, null, 2)}\n`);
      } catch (err) {
        throw new StateDirError(`Cannot write ${this.#path}: ${(err as Error).message}`, { cause: err });
      }
      return result;
    } finally {
      await lock.release();
    }
  }
}
