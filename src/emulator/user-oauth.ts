/**
 * id.twitch.tv's user flows, emulated: the authorization code grant flow
 * (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#authorization-code-grant-flow) and the device
 * code grant flow (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#device-code-grant-flow).
 * There is no browser and no login: who consents at the authorize page (or approves a device code) is set
 * through the control API, or with `emulator_user_id` in the page's query, as a test would click.
 * The error messages are Twitch's as observed (they are not documented); where none was seen, the message is
 * ours and says so.
 */
import { formParams, oauthError, type Reply, type Req } from './http.js';
import { DEVICE_CODE_TTL_S, DEVICE_POLL_INTERVAL_S, type Consent } from './grants.js';
import type { EmulatorState, TokenRecord } from './state.js';
import type { EmulatorClient } from './types.js';

/** A user access token lives about four hours (the docs' example answer: 14124 s). */
export const USER_TOKEN_TTL_S = 14_124;
export const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

export interface UserOAuthDeps {
  state: EmulatorState;
  /** Base URL of the emulator, for the device flow's verification URI. */
  url: () => string;
  /** A user granted the client scopes (first grant or more scopes): `user.authorization.grant` goes out. */
  onGrant: (clientId: string, user: { userId: string; login: string }) => void;
}

const html = (status: number, text: string): Reply => ({ status, headers: { 'content-type': 'text/html; charset=utf-8' }, text });

/**
 * `GET /oauth2/authorize?response_type=code&client_id&redirect_uri&scope&state[&force_verify]`: answers as the
 * consenting user would, with a 302 to `redirect_uri` carrying `code`, the granted `scope` and `state`, or
 * `error=access_denied`. Test-only query parameters: `emulator_user_id` (and `emulator_login`) consent as that
 * user; `emulator_decision=deny` refuses. Without a consent set, a page says how to set one.
 */
export function authorizePage(deps: UserOAuthDeps, req: Req): Reply {
  const q = req.query;
  const clientId = q.get('client_id') ?? '';
  const client = deps.state.client(clientId);
  if (!client) return html(400, 'invalid client');
  if (q.get('response_type') !== 'code') return html(400, 'unsupported response_type (the emulator serves the authorization code flow)');
  const registered = client.redirectUris ?? [];
  const redirect = q.get('redirect_uri');
  if (!redirect || !registered.includes(redirect)) {
    // Twitch sends a mismatch to the app's first registered URL, not to the one asked for.
    if (!registered[0]) return html(400, 'redirect_mismatch: the app has no OAuth Redirect URL');
    const first = new URL(registered[0]);
    first.searchParams.set('error', 'redirect_mismatch');
    first.searchParams.set('error_description', 'Parameter redirect_uri does not match registered URI');
    return { status: 302, headers: { location: first.toString() } };
  }
  const requested = splitScopes(q.get('scope'));
  const consent = consentFrom(q) ?? deps.state.grants.consentOf(clientId);
  if (!consent) {
    return html(200, 'No user consents in the emulator yet: POST /_emulator/consent {"user_id": "..."} (or add emulator_user_id=... to this URL)');
  }
  const state = q.get('state');
  const back = new URL(redirect);
  if (consent === 'deny') {
    back.searchParams.set('error', 'access_denied');
    back.searchParams.set('error_description', 'The user denied you access');
  } else {
    const scopes = consent.scopes ? requested.filter((s) => consent.scopes!.includes(s)) : requested;
    const code = deps.state.grants.issueCode({ clientId, redirectUri: redirect, userId: consent.userId, login: consent.login, scopes });
    back.searchParams.set('code', code);
    back.searchParams.set('scope', scopes.join(' '));
  }
  if (state !== null) back.searchParams.set('state', state);
  return { status: 302, headers: { location: back.toString() } };
}

/** `POST /oauth2/device` with `client_id` and `scopes` (space-separated): a device code and a user code. */
export function startDevice(deps: UserOAuthDeps, req: Req): Reply {
  const params = formParams(req);
  const clientId = params.get('client_id');
  if (!clientId) return oauthError(400, 'missing client id');
  if (!deps.state.client(clientId)) return oauthError(400, 'invalid client');
  const record = deps.state.grants.startDevice(clientId, splitScopes(params.get('scopes')));
  return {
    status: 200,
    json: {
      device_code: record.deviceCode,
      expires_in: DEVICE_CODE_TTL_S,
      interval: DEVICE_POLL_INTERVAL_S,
      user_code: record.userCode,
      verification_uri: `${deps.url()}/activate?device-code=${record.userCode}`,
    },
  };
}

/**
 * `GET /activate?device-code=CODE&emulator_user_id=U` (or `emulator_decision=deny`): the user's answer to a
 * device code, as twitch.tv/activate takes it.
 */
export function activatePage(deps: UserOAuthDeps, req: Req): Reply {
  const record = deps.state.grants.deviceByUserCode(req.query.get('device-code') ?? '');
  if (!record) return html(400, 'This code is unknown or has expired');
  const consent = consentFrom(req.query) ?? deps.state.grants.consentOf(record.clientId);
  if (!consent) return html(200, 'No user consents in the emulator yet: POST /_emulator/device {"user_code": "...", "user_id": "..."}');
  record.decision = consent === 'deny' ? 'deny' : { userId: consent.userId, login: consent.login };
  return html(200, consent === 'deny' ? 'Access denied.' : 'Device connected.');
}

/** `grant_type=authorization_code`: the code of the authorize page for a user token, once. */
export function exchangeCode(deps: UserOAuthDeps, client: EmulatorClient, params: URLSearchParams): Reply {
  const code = deps.state.grants.redeemCode(params.get('code') ?? '', client.clientId);
  if (code === 'invalid') return oauthError(400, 'Invalid authorization code');
  if (params.get('redirect_uri') !== code.redirectUri) return oauthError(400, 'Parameter redirect_uri does not match registeredURI');
  return grantAndIssue(deps, client.clientId, code, code.scopes);
}

/** `grant_type=urn:ietf:params:oauth:grant-type:device_code`: one poll of a device code. */
export function pollDevice(deps: UserOAuthDeps, clientId: string, params: URLSearchParams): Reply {
  const deviceCode = params.get('device_code');
  if (!deviceCode) return oauthError(400, 'missing device_code');
  const record = deps.state.grants.device(deviceCode, clientId);
  if (record === 'invalid') return oauthError(400, 'invalid device code');
  if (record.decision === undefined) return oauthError(400, 'authorization_pending');
  record.used = true;
  // What Twitch answers to a refusal is not documented; this message is ours (RFC 8628's error code).
  if (record.decision === 'deny') return oauthError(400, 'access_denied');
  return grantAndIssue(deps, clientId, record.decision, record.scopes);
}

function grantAndIssue(deps: UserOAuthDeps, clientId: string, user: { userId: string; login: string }, scopes: string[]): Reply {
  const before = deps.state.grants.grantOf(clientId, user.userId)?.scopes.size ?? -1;
  deps.state.grants.grant(clientId, user, scopes);
  const token: TokenRecord = deps.state.issueUserToken(clientId, user, scopes);
  const grew = (deps.state.grants.grantOf(clientId, user.userId)?.scopes.size ?? 0) > before;
  return {
    status: 200,
    json: { access_token: token.value, expires_in: USER_TOKEN_TTL_S, refresh_token: `r${token.value}`, scope: scopes, token_type: 'bearer' },
    after: grew ? () => deps.onGrant(clientId, user) : undefined,
  };
}

/** The consent a test put in the page's query (`emulator_user_id`, `emulator_login`, `emulator_decision=deny`). */
function consentFrom(q: URLSearchParams): Consent | undefined {
  if (q.get('emulator_decision') === 'deny') return 'deny';
  const userId = q.get('emulator_user_id');
  return userId ? { userId, login: q.get('emulator_login') ?? `user${userId}` } : undefined;
}

/** Scopes as the flows send them: space-separated (`+` in a query is already a space). */
export function splitScopes(value: string | null): string[] {
  return [...new Set((value ?? '').split(/\s+/).filter(Boolean))];
}

