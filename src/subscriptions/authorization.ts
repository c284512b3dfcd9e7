/**
 * Which declared subscriptions wait for a user's authorization, and what each user must grant: the scope
 * table (twitch/scopes.ts) applied to the desired subscriptions and what the users have granted the client
 * (Get User Authorization). Pure: the callers fetch the grants.
 */
import { missingGrants, needsAuthorization } from '../twitch/scopes.js';
import type { DesiredSubscription } from '../twitch/subscription.js';

/** One user's missing grant and the subscriptions that wait for it. */
export interface PendingGrant {
  userId: string;
  /** The condition fields that name the user (e.g. `moderator_user_id`). */
  fields: string[];
  /** What to ask for, sorted. */
  scopes: string[];
  waiting: DesiredSubscription[];
}

/** The users the declared subscriptions tie to a grant (to ask Twitch about), sorted. */
export function usersToCheck(desired: readonly DesiredSubscription[]): string[] {
  const users = new Set<string>();
  for (const d of desired) for (const m of missingGrants(d, () => undefined)) users.add(m.userId);
  return [...users].sort();
}

/** For each user, what the declared subscriptions still need of them, given `granted` (user → scopes). */
export function pendingGrants(desired: readonly DesiredSubscription[], granted: ReadonlyMap<string, ReadonlySet<string>>): PendingGrant[] {
  const byUser = new Map<string, PendingGrant>();
  for (const d of desired) {
    for (const m of missingGrants(d, (userId) => granted.get(userId))) {
      const p = byUser.get(m.userId) ?? { userId: m.userId, fields: [], scopes: [], waiting: [] };
      if (!p.fields.includes(m.field)) p.fields.push(m.field);
      for (const s of m.scopes) if (!p.scopes.includes(s)) p.scopes.push(s);
      p.waiting.push(d);
      byUser.set(m.userId, p);
    }
  }
  return [...byUser.values()].map((p) => ({ ...p, scopes: p.scopes.sort() })).sort((a, b) => a.userId.localeCompare(b.userId));
}

/** True when any declared subscription needs a user's grant (then the daemon also listens to grants and revocations). */
export function anyNeedsAuthorization(desired: readonly DesiredSubscription[]): boolean {
  return desired.some((d) => needsAuthorization(d.type, d.version));
}

/** The command that lets `userId` grant `scopes`, to print where something waits for it. */
export function authorizeCommand(userId: string): string {
  return `eventsubd authorize --user ${userId}`;
}

/** How many distinct subscriptions wait (one naming two waiting users counts once). */
export function waitingCount(pending: readonly PendingGrant[]): number {
  return new Set(pending.flatMap((p) => p.waiting)).size;
}

/** The subscriptions eventsubd adds while a declared type needs a user's grant (condition: `client_id`). */
export const IMPLICIT_TYPES = ['user.authorization.grant', 'user.authorization.revoke'] as const;

/** True for one of the implicit subscriptions of `clientId` delivered to `callbackUrl` (for `subscriptions list`). */
export function isImplicit(sub: { type: string; version: string; condition: Readonly<Record<string, unknown>>; transport: { callback?: string | undefined } }, clientId: string | undefined, callbackUrl: string | undefined): boolean {
  return (
    (IMPLICIT_TYPES as readonly string[]).includes(sub.type) && sub.version === '1' && sub.condition.client_id === clientId && sub.transport.callback === callbackUrl
  );
}
