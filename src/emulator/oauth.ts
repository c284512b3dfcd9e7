/**
 * id.twitch.tv: client-credentials grant, validate and revoke
 * (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#client-credentials-grant-flow,
 * https://dev.twitch.tv/docs/authentication/validate-tokens/, https://dev.twitch.tv/docs/authentication/revoke-tokens/),
 * plus twitch-cli's `/auth/token` and `/auth/validate` aliases (its mock-api "auth namespace",
 * https://github.com/twitchdev/twitch-cli/blob/main/docs/mock-api.md#auth-namespace; resolved before these handlers run).
 */
import { authorization, formParams, oauthError, type Reply, type Req } from './http.js';
import type { EmulatorState } from './state.js';
import type { EmulatorStats } from './types.js';
import { DEVICE_GRANT_TYPE, exchangeCode, pollDevice, splitScopes, type UserOAuthDeps } from './user-oauth.js';

export interface OAuthDeps extends UserOAuthDeps {
  state: EmulatorState;
  stats: EmulatorStats;
  tokenTtlSeconds: number;
}

/**
 * `POST /oauth2/token`. Parameters come from the query string or a form body; HTTP Basic is not read
 * (Twitch documents form parameters only, https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#client-credentials-grant-flow;
 * Basic-only credentials get "missing client id", as observed). Check order — an assumption; the messages are
 * the ones observed from Twitch (it does not document them): id missing, secret missing, id unknown, secret wrong,
 * grant type (that last text is a guess).
 */
export function mintToken(deps: OAuthDeps, req: Req): Reply {
  const params = formParams(req);
  const clientId = params.get('client_id');
  const grantType = params.get('grant_type');
  if (!clientId) return oauthError(400, 'missing client id');
  // The device flow's poll carries no client secret (a public client has none).
  if (grantType === DEVICE_GRANT_TYPE) return deps.state.client(clientId) ? pollDevice(deps, clientId, params) : oauthError(400, 'invalid client');
  const secret = params.get('client_secret');
  if (!secret) return oauthError(400, 'missing client secret');
  const client = deps.state.client(clientId);
  if (!client) return oauthError(400, 'invalid client');
  if (client.clientSecret !== secret) return oauthError(403, 'invalid client secret');
  if (grantType === 'authorization_code') return exchangeCode(deps, client, params);
  if (grantType !== 'client_credentials') return oauthError(400, 'invalid grant type');
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

/**
 * `POST /oauth2/revoke` with `client_id` and `token` in a form body or the query
 * (https://dev.twitch.tv/docs/authentication/revoke-tokens/).
 */
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

/**
 * twitch-cli's `POST /auth/authorize?client_id&client_secret&grant_type=user_token&user_id&scope`: a user
 * token for any user with the scopes asked, no consent page
 * (https://github.com/twitchdev/twitch-cli/blob/main/docs/mock-api.md#getting-a-user-access-token). The user
 * counts as having granted the client those scopes, as with `/_emulator/user-tokens`.
 */
export function mockUserToken(deps: OAuthDeps, req: Req): Reply {
  const params = formParams(req);
  const clientId = params.get('client_id');
  const secret = params.get('client_secret');
  const client = clientId ? deps.state.client(clientId) : undefined;
  if (!client || client.clientSecret !== secret) return { status: 400, json: { status: 400, error: 'Bad Request', message: 'Client ID/Secret invalid' } };
  if (params.get('grant_type') !== 'user_token') return { status: 400, json: { status: 400, error: 'Bad Request', message: 'Invalid grant_type' } };
  const userId = params.get('user_id');
  if (!userId) return { status: 400, json: { status: 400, error: 'Bad Request', message: 'Missing user_id' } };
  const scopes = splitScopes(params.get('scope'));
  const token = deps.state.registerUserToken({ clientId: client.clientId, userId, scopes });
  return {
    status: 200,
    json: { access_token: token.value, refresh_token: '', expires_in: deps.state.expiresIn(token), scope: scopes, token_type: 'bearer' },
  };
}
