/**
 * What follows a change of a user's authorization in the emulated Twitch
 * (https://dev.twitch.tv/docs/eventsub/eventsub-subscription-types/#userauthorizationgrant, #userauthorizationrevoke,
 * https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#revoking-your-subscription):
 * - a new grant sends `user.authorization.grant` to the client's enabled subscriptions of that type;
 * - a user who disconnects the app loses the grant; every subscription that needed it (the user is named in the
 *   condition field its type's authorization ties to a user) is revoked with `authorization_revoked`, its
 *   revocation sent, and `user.authorization.revoke` goes to the client's enabled subscriptions of that type.
 */
import { authorizationFor } from '../twitch/scopes.js';
import type { WebhookDeliveries } from './deliveries.js';
import { LIVE_STATUSES, type EmulatorState, type StoredSubscription } from './state.js';

export interface AuthorizationEventDeps {
  state: EmulatorState;
  deliveries: WebhookDeliveries;
}

/** The client's enabled `user.authorization.<kind>` subscriptions for its own client ID. */
function listeners(deps: AuthorizationEventDeps, clientId: string, kind: 'grant' | 'revoke'): StoredSubscription[] {
  return deps.state
    .subscriptionsOf(clientId)
    .filter((s) => s.wire.type === `user.authorization.${kind}` && s.wire.status === 'enabled' && s.wire.condition.client_id === clientId);
}

/** Announces a grant (a first grant, or more scopes). */
export function announceGrant(deps: AuthorizationEventDeps, clientId: string, user: { userId: string; login: string }): void {
  const event = { client_id: clientId, user_id: user.userId, user_login: user.login, user_name: user.login };
  for (const sub of listeners(deps, clientId, 'grant')) deps.deliveries.notify(sub, event);
}

/**
 * The user disconnects the app. Returns the subscriptions revoked, or undefined when the user had no grant.
 */
export function disconnectUser(deps: AuthorizationEventDeps, clientId: string, userId: string): StoredSubscription[] | undefined {
  const grant = deps.state.grants.withdraw(clientId, userId);
  if (!grant) return undefined;
  const revoked = deps.state.subscriptionsOf(clientId).filter((s) => LIVE_STATUSES.has(s.wire.status) && dependsOn(s, userId));
  for (const sub of revoked) deps.deliveries.revoke(sub, 'authorization_revoked');
  const event = { client_id: clientId, user_id: userId, user_login: grant.login, user_name: grant.login };
  for (const sub of listeners(deps, clientId, 'revoke')) deps.deliveries.notify(sub, event);
  return revoked;
}

function dependsOn(sub: StoredSubscription, userId: string): boolean {
  const entry = authorizationFor(sub.wire.type, sub.wire.version);
  return entry?.requirements.some((r) => sub.wire.condition[r.user] === userId) ?? false;
}
