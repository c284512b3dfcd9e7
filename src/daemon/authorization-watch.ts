/**
 * The daemon's side of user authorization (README "User authorization"): which declared subscriptions wait for
 * a user's grant, the hourly hold on creates Twitch refused for it, and what `user.authorization.grant` and
 * `user.authorization.revoke` notifications change
 * (https://dev.twitch.tv/docs/eventsub/eventsub-subscription-types/#userauthorizationgrant).
 * - A create refused for a missing grant is held: the next syncs do not send it again for an hour, unless
 *   Twitch shows the grant (the sync asks) or a grant event for one of its users arrives.
 * - Each user and scope set is logged once while it waits, not at every sync.
 * - A grant event records the grant, releases the user's holds and asks for a sync within seconds; a revoke
 *   event marks the grant revoked and asks for a sync, which reports the revoked subscriptions blocked.
 */
import { isoTime, type Clock } from '../lib/clock.js';
import { toAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Registry } from '../lib/metrics.js';
import type { GrantStore } from '../auth/grant-store.js';
import { authorizeCommand, waitingCount, type PendingGrant } from '../subscriptions/authorization.js';
import { describeSubscription, type DesiredSubscription } from '../twitch/subscription.js';

/** How long a create refused for a missing grant is held back (SPEC: at most once an hour). */
export const AUTHORIZATION_RETRY_MS = 3_600_000;
/** The wait between a grant or revoke event and the sync it asks for: lets Twitch settle. */
export const AUTHORIZATION_SYNC_DELAY_MS = 1_000;

export interface AuthorizationWatchOptions {
  clientId: string;
  grants: GrantStore;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** Asks for a sync after a delay (the scheduler, once built). */
  requestSync: (delayMs: number, reason: string) => void;
}

interface Hold {
  users: ReadonlySet<string>;
  /** When the create may be sent again regardless. */
  retryAt: number;
}

/** A user's authorization event, from the notification's `event` (strings, `user_login` null for a deleted user). */
interface AuthorizationEvent {
  client_id: string;
  user_id: string;
  user_login: string | null;
}

export class AuthorizationWatch {
  readonly #o: AuthorizationWatchOptions;
  /** describeSubscription(d) → its hold. */
  readonly #holds = new Map<string, Hold>();
  #missing: readonly PendingGrant[] = [];
  /** Users whose missing grant was logged, as `user scopes`: logged again only once it changed. */
  #logged = new Set<string>();
  /** Users who disconnected the app since start, until they grant again. */
  readonly #revoked = new Map<string, { login: string | null; at: number }>();
  readonly #events;

  constructor(options: AuthorizationWatchOptions) {
    this.#o = options;
    const r = options.registry;
    r.gauge('eventsubd_authorization_missing_users', 'Users whose grant declared subscriptions wait for, as the last sync found', (g) =>
      g.set(this.#missing.length),
    );
    r.gauge('eventsubd_authorization_waiting_subscriptions', 'Declared subscriptions that wait for a user\'s grant, as the last sync found', (g) =>
      g.set(waitingCount(this.#missing)),
    );
    this.#events = r.counter('eventsubd_authorization_events_total', 'user.authorization.grant and .revoke notifications for this client, by kind');
  }

  /** For the sync: true while a create refused for a missing grant is held back. */
  held = (d: DesiredSubscription): boolean => {
    const hold = this.#holds.get(describeSubscription(d));
    return hold !== undefined && hold.retryAt > this.#o.clock.now();
  };

  /** After each sync: what waits now. Holds start (or restart, once expired) for what waits. */
  onSync(missing: readonly PendingGrant[]): void {
    const now = this.#o.clock.now();
    const waiting = new Map<string, Set<string>>();
    for (const p of missing) {
      for (const d of p.waiting) {
        const key = describeSubscription(d);
        const users = waiting.get(key) ?? new Set<string>();
        users.add(p.userId);
        waiting.set(key, users);
      }
    }
    for (const key of [...this.#holds.keys()]) if (!waiting.has(key)) this.#holds.delete(key);
    for (const [key, users] of waiting) {
      const hold = this.#holds.get(key);
      if (!hold || hold.retryAt <= now) this.#holds.set(key, { users, retryAt: now + AUTHORIZATION_RETRY_MS });
    }
    const logged = new Set<string>();
    for (const p of missing) {
      const id = `${p.userId} ${p.scopes.join(' ')}`;
      logged.add(id);
      if (this.#logged.has(id)) continue;
      this.#o.logger.warn('Declared subscriptions wait for a user to authorize the app', {
        code: 'AUTHORIZATION_MISSING',
        user_id: p.userId,
        fields: p.fields,
        scopes: p.scopes,
        subscriptions: p.waiting.length,
        run: authorizeCommand(p.userId),
      });
    }
    this.#logged = logged;
    this.#missing = missing;
  }

  /** A `user.authorization.grant` or `.revoke` notification (already journaled). Others' clients are ignored. */
  onNotification(type: string, event: unknown): void {
    const kind = type === 'user.authorization.grant' ? 'grant' : type === 'user.authorization.revoke' ? 'revoke' : undefined;
    if (!kind) return;
    const e = authorizationEvent(event);
    if (!e || e.client_id !== this.#o.clientId) return;
    this.#events.inc({ kind });
    void (kind === 'grant' ? this.#onGrant(e) : this.#onRevoke(e)).catch((err: unknown) =>
      this.#o.logger.warn('Could not record the authorization event in authorizations.json', { user_id: e.user_id, kind, error: toAppError(err) }),
    );
  }

  async #onGrant(e: AuthorizationEvent): Promise<void> {
    const { logger, grants } = this.#o;
    this.#revoked.delete(e.user_id);
    for (const [key, hold] of this.#holds) if (hold.users.has(e.user_id)) this.#holds.delete(key);
    logger.info('A user authorized the app; syncing their waiting subscriptions', { user_id: e.user_id, login: e.user_login });
    this.#o.requestSync(AUTHORIZATION_SYNC_DELAY_MS, 'authorization granted');
    await grants.recordEvent({ userId: e.user_id, login: e.user_login });
  }

  async #onRevoke(e: AuthorizationEvent): Promise<void> {
    const { logger, grants, clock } = this.#o;
    this.#revoked.set(e.user_id, { login: e.user_login, at: clock.now() });
    logger.warn('A user disconnected the app: Twitch revokes the subscriptions that need their grant until they authorize again', {
      code: 'AUTHORIZATION_MISSING',
      user_id: e.user_id,
      run: authorizeCommand(e.user_id),
    });
    this.#o.requestSync(AUTHORIZATION_SYNC_DELAY_MS, 'authorization revoked');
    await grants.markRevoked(e.user_id, e.user_login);
  }

  /** `/status` `authorization`: who must grant what, and who disconnected since start. */
  status(): Record<string, unknown> {
    return {
      missing: this.#missing.map((p) => ({
        user_id: p.userId,
        fields: p.fields,
        scopes: p.scopes,
        subscriptions: p.waiting.map((d) => describeSubscription(d)),
        command: authorizeCommand(p.userId),
        retry_at: isoTime(Math.max(0, ...p.waiting.map((d) => this.#holds.get(describeSubscription(d))?.retryAt ?? 0)) || undefined),
      })),
      revoked: [...this.#revoked].map(([userId, r]) => ({ user_id: userId, login: r.login, revoked_at: isoTime(r.at) })),
    };
  }

}

function authorizationEvent(event: unknown): AuthorizationEvent | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as Record<string, unknown>;
  if (typeof e.client_id !== 'string' || typeof e.user_id !== 'string' || e.user_id === '') return undefined;
  return { client_id: e.client_id, user_id: e.user_id, user_login: typeof e.user_login === 'string' ? e.user_login : null };
}
