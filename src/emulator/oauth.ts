/**
 * id.twitch.tv: client-credentials grant, validate and revoke (contract sections 1-3), plus twitch-cli's
 * `/auth/token` and `/auth/validate` aliases (contract 10.1, resolved before these handlers run).
 */
import { authorization, formParams, oauthError, type Reply, type Req } from './http.js';
import type { EmulatorState } from './state.js';
import type { EmulatorStats } from './types.js';

export interface OAuthDeps {
  state: EmulatorState;
  stats: EmulatorStats;
  tokenTtlSeconds: number;
}

/**
 * `POST /oauth2/token`. Parameters come from the query string or a form body; HTTP Basic is not read
 * (contract 1, so Basic-only credentials get "missing client id"). Check order — an assumption, Twitch
 * documents only the messages: id missing, secret missing, id unknown, secret wrong, grant type.
 */
export function mintToken(deps: OAuthDeps, req: Req): Reply {
  const params = formParams(req);
  const clientId = params.get('client_id');
  const secret = params.get('client_secret');
  if (!clientId) return oauthError(400, 'missing client id');
  if (!secret) return oauthError(400, 'missing client secret');
  const client = deps.state.client(clientId);
  if (!client) return oauthError(400, 'invalid client');
  if (client.clientSecret !== secret) return oauthError(403, 'invalid client secret');
  if (params.get('grant_type') !== 'client_credentials') return oauthError(400, 'invalid grant type');
  const token = deps.state.mintAppToken(clientId);
  deps.stats.mints += 1;
  return {
    status: 200,
    json: { access_token: token.value, expires_in: deps.tokenTtlSeconds, token_type: 'bearer' },
  };
}

/**
 * `GET /oauth2/validate` with `OAuth <t>` or `Bearer <t>`. An app token's `scopes` is serialised as null on
 * purpose (twitchdev/issues#1145): clients must normalise it.
 */
export function validateToken(deps: OAuthDeps, req: Req): Reply {
  deps.stats.validations += 1;
  const auth = authorization(req);
  const token = auth && (auth.scheme === 'oauth' || auth.scheme === 'bearer') ? deps.state.validToken(auth.token) : undefined;
  if (!token) return oauthError(401, 'invalid access token');
  const expiresIn = deps.state.expiresIn(token);
  if (token.kind === 'app') {
    return { status: 200, json: { client_id: token.clientId, scopes: null, expires_in: expiresIn } };
  }
  return {
    status: 200,
    json: {
      client_id: token.clientId,
      login: token.login,
      scopes: [...token.scopes],
      user_id: token.userId,
      expires_in: expiresIn,
    },
  };
}

/** `POST /oauth2/revoke` with `client_id` and `token` in a form body or the query (contract 3). */
export function revokeToken(deps: OAuthDeps, req: Req): Reply {
  const params = formParams(req);
  const clientId = params.get('client_id');
  if (!clientId) return oauthError(400, 'missing client id');
  if (!deps.state.client(clientId)) return oauthError(404, 'client does not exist');
  const value = params.get('token') ?? '';
  const token = deps.state.validToken(value);
  if (!token || token.clientId !== clientId) return oauthError(400, 'Invalid token');
  deps.state.invalidate(value);
  deps.stats.revocations += 1;
  return { status: 200 };
}
