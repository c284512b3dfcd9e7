/**
 * `eventsubd authorize`, the engine: let one user grant the app scopes through the authorization code flow
 * (a browser and the redirect listener) or the device code flow (no inbound HTTP), then prove the grant with
 * `/validate`, revoke the user token at once, record the grant, and check that Twitch still shows it
 * (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/, https://dev.twitch.tv/docs/api/reference/#get-user-authorization).
 * The user token is a local variable of `#finish`: it never reaches a file, a log, the output or the token manager.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { AppError, TokenRefusedError, throwIfAborted } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { OAuthApi, UserAuthorizationApi } from '../twitch/types.js';
import type { UserOAuthClient, UserTokenGrant } from '../twitch/user-oauth.js';
import type { GrantHow, GrantStore } from './grant-store.js';
import { listenForRedirect, pageOf, type CallbackResult } from './redirect-listener.js';

/** The `state` of an authorize URL is valid this long (README "User authorization"). */
export const STATE_TTL_MS = 10 * 60_000;

export interface AuthorizeDeps {
  clientId: string;
  userOAuth: UserOAuthClient;
  /** `/validate` and `/revoke` of id.twitch.tv. */
  oauth: Pick<OAuthApi, 'validate' | 'revoke'>;
  /** Get User Authorization with the app token. */
  twitch: UserAuthorizationApi;
  grants: GrantStore;
  clock: Clock;
  logger: Logger;
  /** Where instructions for the person at the keyboard go (stderr: stdout may be JSON). */
  tell: (line: string) => void;
  signal: AbortSignal;
}

/** What one run asks: scopes, and the user expected to give them (by id or login), when known. */
export interface AuthorizeRequest {
  scopes: string[];
  expected?: { userId?: string | undefined; login?: string | undefined } | undefined;
}

export interface AuthorizeOutcome {
  userId: string;
  login: string | null;
  how: GrantHow;
  /** The scopes Twitch shows granted to the app after the user token was revoked. */
  granted: string[];
  /** Of the scopes asked, those Twitch does not show (the user granted fewer, or the grant did not persist). */
  missing: string[];
  /** False when the user who consented is not the one expected. */
  expectedUser: boolean;
}

/**
 * The authorization code flow on `redirectUrl`.
 * @throws ConfigError naming TWITCH_REDIRECT_URL (not loopback, port in use); AppError AUTHORIZATION_DENIED,
 *   AUTHORIZATION_FAILED (no callback within STATE_TTL_MS, a refused code); TokenRefusedError
 *   TOKEN_CLIENT_MISMATCH; AbortedError.
 */
export async function authorizeWithCode(deps: AuthorizeDeps, req: AuthorizeRequest, redirectUrl: string): Promise<AuthorizeOutcome> {
  const state = randomBytes(16).toString('hex');
  const listener = await listenForRedirect<AuthorizeOutcome | AppError>({
    redirectUrl: new URL(redirectUrl),
    state,
    onCallback: (query) => onCallback(deps, req, query, redirectUrl),
  });
  try {
    deps.tell(`Open this URL in a browser where the user who must authorize is signed in to Twitch${who(req)}:`);
    deps.tell(deps.userOAuth.authorizeUrl({ redirectUri: redirectUrl, scopes: req.scopes, state }));
    deps.tell(`Waiting up to ${STATE_TTL_MS / 60_000} minutes for Twitch to redirect to ${redirectUrl} ...`);
    const timer = new AbortController();
    const expired = deps.clock.sleep(STATE_TTL_MS, AbortSignal.any([timer.signal, deps.signal])).then(
      () => 'expired' as const,
      () => 'aborted' as const,
    );
    const result = await Promise.race([listener.outcome, expired]);
    timer.abort();
    throwIfAborted(deps.signal);
    if (result === 'expired' || result === 'aborted') {
      throw new AppError(
        'AUTHORIZATION_FAILED',
        `No answer from Twitch at ${redirectUrl} within ${STATE_TTL_MS / 60_000} minutes: check that TWITCH_REDIRECT_URL is registered as an OAuth Redirect URL of the app exactly (Twitch sends a mismatch to the app's first registered URL), then run eventsubd authorize again`,
      );
    }
    if (result instanceof AppError) throw result;
    return result;
  } finally {
    await listener.close();
  }
}

async function onCallback(deps: AuthorizeDeps, req: AuthorizeRequest, query: URLSearchParams, redirectUrl: string): Promise<CallbackResult<AuthorizeOutcome | AppError>> {
  const error = query.get('error');
  if (error) {
    const err =
      error === 'access_denied'
        ? new AppError('AUTHORIZATION_DENIED', 'The user refused the authorization at Twitch\'s page')
        : new AppError('AUTHORIZATION_FAILED', `Twitch answered the authorization with ${error}: ${query.get('error_description') ?? ''}`.trim());
    return { status: 200, page: pageOf('Not authorized', err.message + '. You can close this window.'), outcome: err };
  }
  const code = query.get('code');
  if (!code) return { status: 400, page: pageOf('No code', 'Twitch\'s answer carries no code.'), outcome: new AppError('AUTHORIZATION_FAILED', 'Twitch\'s redirect carried no code') };
  try {
    const token = await deps.userOAuth.exchangeCode(code, redirectUrl, deps.signal);
    const outcome = await finish(deps, req, token, 'authorization_code');
    const line = `${outcome.login ?? outcome.userId} authorized ${deps.clientId.slice(0, 6)}… with ${outcome.granted.join(', ') || 'no scope'}`;
    return { status: 200, page: pageOf('Authorized', `${line}. eventsubd has revoked the token it was given and kept no token. You can close this window.`), outcome };
  } catch (err) {
    const e = err instanceof AppError ? err : new AppError('AUTHORIZATION_FAILED', (err as Error).message, { cause: err });
    return { status: 200, page: pageOf('Not authorized', `${e.message}. See the terminal.`), outcome: e };
  }
}

/**
 * The device code flow: the user opens the verification URI (anywhere) and enters the code; polled at the
 * interval Twitch gives (5 s more on `slow_down`) until done or `expires_in` passes.
 * @throws AppError AUTHORIZATION_DENIED, AUTHORIZATION_FAILED (expired or refused code); TokenRefusedError; AbortedError.
 */
export async function authorizeWithDevice(deps: AuthorizeDeps, req: AuthorizeRequest): Promise<AuthorizeOutcome> {
  const started = await deps.userOAuth.startDevice(req.scopes, deps.signal);
  deps.tell(`On any device, open ${started.verification_uri} as the user who must authorize${who(req)}, and enter the code ${started.user_code}.`);
  const deadline = deps.clock.now() + started.expires_in * 1000;
  let interval = Math.max(1, started.interval) * 1000;
  for (;;) {
    await deps.clock.sleep(interval, deps.signal);
    if (deps.clock.now() >= deadline) {
      throw new AppError('AUTHORIZATION_FAILED', `The code ${started.user_code} expired after ${started.expires_in} s without an answer: run eventsubd authorize --device again`);
    }
    const poll = await deps.userOAuth.pollDevice(started.device_code, req.scopes, deps.signal);
    if (poll.state === 'done') return finish(deps, req, poll.token, 'device_code');
    if (poll.slowDown) interval += 5_000;
  }
}

/** Proves the grant, revokes the token whatever happens, records, and checks Twitch's view. */
async function finish(deps: AuthorizeDeps, req: AuthorizeRequest, token: UserTokenGrant, how: GrantHow): Promise<AuthorizeOutcome> {
  let user: { userId: string; login: string | null };
  try {
    const v = await deps.oauth.validate(token.accessToken, deps.signal);
    if (!v) throw new AppError('AUTHORIZATION_FAILED', 'The user token Twitch just gave does not validate');
    if (v.client_id !== deps.clientId) {
      throw new TokenRefusedError('TOKEN_CLIENT_MISMATCH', `The user token belongs to client ${v.client_id}, not to TWITCH_CLIENT_ID: nothing was recorded`);
    }
    if (!v.user_id) throw new AppError('AUTHORIZATION_FAILED', 'The token Twitch gave names no user: nothing was recorded');
    user = { userId: v.user_id, login: v.login ?? null };
    await deps.grants.recordGrant({ ...user, scopes: v.scopes, how });
  } finally {
    // Revoked at once, however the proof went: eventsubd keeps no user token (the grant outlives it).
    await deps.oauth.revoke(token.accessToken).catch((err: unknown) =>
      deps.logger.warn('Could not revoke the user token; it expires by itself within hours', { error: err as Error }),
    );
  }
  const view = (await deps.twitch.userAuthorizations([user.userId], { signal: deps.signal }))[0];
  const granted = [...(view?.scopes ?? [])].sort();
  const missing = req.scopes.filter((s) => !granted.includes(s));
  const expected = req.expected;
  const expectedUser =
    !expected || ((expected.userId === undefined || expected.userId === user.userId) && (expected.login === undefined || expected.login.toLowerCase() === user.login?.toLowerCase()));
  if (!view) deps.logger.warn('Twitch does not show the grant after the user token was revoked', { user_id: user.userId });
  return { ...user, how, granted, missing, expectedUser };
}

function who(req: AuthorizeRequest): string {
  const e = req.expected;
  if (!e?.userId && !e?.login) return '';
  return ` (user ${[e.login, e.userId].filter(Boolean).join(', id ')})`;
}
