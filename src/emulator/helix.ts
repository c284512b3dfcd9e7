/**
 * Helix's front door for `/helix/eventsub/subscriptions`, `/helix/authorization/users` and `/helix/users`: bearer auth, Client-Id match (the 401 causes of
 * https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription), the per-client token bucket, and
 * `Ratelimit-*` headers on every answer, errors included (https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits).
 */
import type { Clock } from '../lib/clock.js';
import type { Buckets, RateHeaders } from './bucket.js';
import { authorization, helixError, type Reply, type Req } from './http.js';
import { createSubscription } from './helix-create.js';
import { deleteSubscription, listSubscriptions } from './helix-list.js';
import { getUsers } from './helix-users.js';
import type { Conduits } from './conduits.js';
import type { EmulatorState, StoredSubscription, TokenRecord } from './state.js';
import type { EmulatorStats } from './types.js';

export interface HelixDeps {
  state: EmulatorState;
  stats: EmulatorStats;
  clock: Clock;
  buckets: Buckets;
  pageSize: number;
  maxTotalCost: number;
  /** The conduits: `/helix/eventsub/conduits*` and the conduit transport of creates. */
  conduits: Conduits;
  /** Called once the 202 of a webhook create has been written: starts (or skips) the verification. */
  onCreated(subscription: StoredSubscription): void;
}

/** Handles any Helix request: authentication, then the bucket, then the route. */
export function handleHelix(deps: HelixDeps, req: Req): Reply {
  const now = deps.clock.now();
  const caller = authenticate(deps, req);
  if ('status' in caller) return withHeaders(caller, deps.buckets.fullHeaders(now));
  const bucket = deps.buckets.get(bucketKey(caller), now);
  if (!bucket.take(now)) {
    deps.stats.helix.rateLimited += 1;
    return withHeaders(helixError(429, 'Too Many Requests'), bucket.headers(now));
  }
  return withHeaders(route(deps, req, caller), bucket.headers(now));
}

/**
 * Rate-limit headers for a scripted `status` fault: the caller's bucket as it stands (nothing taken), or a
 * full one without a valid caller. A scripted 429 reports Remaining 0 so that it reads as the bucket's 429;
 * the 3-per-condition 429 is produced by real subscriptions instead.
 */
export function faultHeaders(deps: HelixDeps, req: Req, status: number): RateHeaders {
  const now = deps.clock.now();
  const caller = authenticate(deps, req);
  const headers = 'status' in caller ? deps.buckets.fullHeaders(now) : deps.buckets.get(bucketKey(caller), now).headers(now);
  return status === 429 ? { ...headers, 'ratelimit-remaining': '0' } : headers;
}

function route(deps: HelixDeps, req: Req, caller: TokenRecord): Reply {
  if (req.path === '/helix/users') return getUsers(deps.state, req, caller);
  if (req.path === '/helix/authorization/users') {
    return req.method === 'GET' ? userAuthorizations(deps, req, caller) : { ...helixError(405, 'Method Not Allowed'), headers: { allow: 'GET' } };
  }
  if (req.path === '/helix/eventsub/conduits' || req.path === '/helix/eventsub/conduits/shards') return deps.conduits.handle(req, caller);
  if (req.path !== '/helix/eventsub/subscriptions') return helixError(404, 'Not Found');
  switch (req.method) {
    case 'POST':
      return createSubscription(deps, req, caller);
    case 'GET':
      return listSubscriptions(deps, req, caller);
    case 'DELETE':
      return deleteSubscription(deps, req, caller);
    default:
      return { ...helixError(405, 'Method Not Allowed'), headers: { allow: 'GET, POST, DELETE' } };
  }
}

/**
 * `GET /helix/authorization/users?user_id=...` (1 to 10, app token): the scopes each user has granted the
 * client, all grants together (https://dev.twitch.tv/docs/api/reference/#get-user-authorization). A user who
 * never authorized the client is left out (Twitch's answer for them is not documented).
 */
function userAuthorizations(deps: HelixDeps, req: Req, caller: TokenRecord): Reply {
  if (caller.kind !== 'app') return helixError(401, 'Must provide a valid app access token');
  const ids = req.query.getAll('user_id').filter((id) => id.length > 0);
  if (ids.length === 0 || ids.length > 10) return helixError(400, 'Between 1 and 10 user_id parameters are required');
  const data = ids.flatMap((userId) => {
    const grant = deps.state.grants.grantOf(caller.clientId, userId);
    return grant ? [{ user_id: userId, user_name: grant.login, user_login: grant.login, scopes: [...grant.scopes].sort() }] : [];
  });
  return { status: 200, json: { data } };
}

/** The caller's valid token, or the 401 Twitch gives (its messages are observed in the wild, not documented). */
function authenticate(deps: HelixDeps, req: Req): TokenRecord | Reply {
  const auth = authorization(req);
  if (!auth || auth.scheme !== 'bearer') return helixError(401, 'OAuth token is missing');
  const token = deps.state.validToken(auth.token);
  if (!token) return helixError(401, 'Invalid OAuth token');
  if (req.headers['client-id'] !== token.clientId) return helixError(401, 'Client ID and OAuth token do not match');
  return token;
}

/**
 * Separate buckets for app requests (per client) and user requests (per client and user),
 * https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits.
 */
function bucketKey(token: TokenRecord): string {
  return token.kind === 'app' ? `app:${token.clientId}` : `user:${token.clientId}:${token.userId ?? ''}`;
}

function withHeaders(reply: Reply, headers: RateHeaders): Reply {
  return { ...reply, headers: { ...reply.headers, ...headers } };
}
