/**
 * Which declared subscriptions wait for a user's authorization, and what each user must grant: the scope
 * table (twitch/scopes.ts) applied to the desired subscriptions and what the users have granted the client
 * (Get User Authorization). Pure: the callers fetch the grants.
 */
import { missingGrants, needsAuthorization } from '../twitch/scopes.js';
import { isOwned, type DeclaredSubscription, type DesiredSubscription, type Ownership } from '../twitch/subscription.js';

/**
 * One user's missing grant and the subscriptions that wait for it. Grants do not depend on the transport, so
 * the declared entries (no target yet) work as well as the desired ones (`D`).
 */
export interface PendingGrant<D extends DeclaredSubscription = DesiredSubscription> {
  userId: string;
  /** The condition fields that name the user (e.g. `moderator_user_id`). */
  fields: string[];
  /** What to ask for, sorted. */
  scopes: string[];
  waiting: D[];
}

/** The users the declared subscriptions tie to a grant (to ask Twitch about), sorted. */
export function usersToCheck(desired: readonly DeclaredSubscription[]): string[] {
  const users = new Set<string>();
  for (const d of desired) for (const m of missingGrants(d, () => undefined)) users.add(m.userId);
  return [...users].sort();
}

/** For each user, what the declared subscriptions still need of them, given `granted` (user → scopes). */
export function pendingGrants<D extends DeclaredSubscription>(desired: readonly D[], granted: ReadonlyMap<string, ReadonlySet<string>>): PendingGrant<D>[] {
  const byUser = new Map<string, PendingGrant<D>>();
  for (const d of desired) {
    for (const m of missingGrants(d, (userId) => granted.get(userId))) {
      const p: PendingGrant<D> = byUser.get(m.userId) ?? { userId: m.userId, fields: [], scopes: [], waiting: [] };
      if (!p.fields.includes(m.field)) p.fields.push(m.field);
      for (const s of m.scopes) if (!p.scopes.includes(s)) p.scopes.push(s);
      p.waiting.push(d);
      byUser.set(m.userId, p);
    }
  }
  return [...byUser.values()].map((p) => ({ ...p, scopes: p.scopes.sort() })).sort((a, b) => a.userId.localeCompare(b.userId));
}

/** True when any declared subscription needs a user's grant (then the daemon also listens to grants and revocations). */
export function anyNeedsAuthorization(desired: readonly DeclaredSubscription[]): boolean {
  return desired.some((d) => needsAuthorization(d.type, d.version));
}

/** The command that lets `userId` grant `scopes`, to print where something waits for it. */
export function authorizeCommand(userId: string): string {
  return `eventsubd authorize --user ${userId}`;
}

/** How many distinct subscriptions wait (one naming two waiting users counts once). */
export function waitingCount(pending: readonly PendingGrant<DeclaredSubscription>[]): number {
  return new Set(pending.flatMap((p) => p.waiting)).size;
}

/** The subscriptions eventsubd adds while a declared type needs a user's grant (condition: `client_id`). */
export const IMPLICIT_TYPES = ['user.authorization.grant', 'user.authorization.revoke'] as const;

/**
 * True for one of the implicit subscriptions of `clientId` on a target this daemon owns (its webhook callback or
 * one of its conduits), for `subscriptions list`.
 */
export function isImplicit(
  sub: { type: string; version: string; condition: Readonly<Record<string, unknown>>; transport: { method: string; callback?: string | undefined; conduit_id?: string | undefined } },
  clientId: string | undefined,
  ownership: Ownership,
): boolean {
  return (IMPLICIT_TYPES as readonly string[]).includes(sub.type) && sub.version === '1' && sub.condition.client_id === clientId && isOwned(sub, ownership);
}
