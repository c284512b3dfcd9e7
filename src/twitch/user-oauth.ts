/**
 * The two user flows `eventsubd authorize` runs, on id.twitch.tv: the authorization code grant flow
 * (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#authorization-code-grant-flow) and the
 * device code grant flow (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#device-code-grant-flow).
 * What they yield is a user access token, which eventsubd uses only to prove the grant (`/validate`) and
 * revokes at once: it is a plain string here, never an `AppToken`, so it cannot reach an EventSub call.
 */
import type { Dispatcher } from 'undici';
import { AppError, TwitchBadResponseError } from '../lib/errors.js';
import { joinUrl, pathOf, postForm, twitchMessageOf, type HttpResult } from './http.js';
import { DeviceCodeResponse, UserTokenResponse } from './wire.js';

export const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

export interface UserOAuthOptions {
  /** OAuth base, e.g. `https://id.twitch.tv/oauth2` (TWITCH_AUTH_URL). */
  authUrl: string;
  clientId: string;
  clientSecret: string | undefined;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number | undefined;
}

/** A user token just obtained: the value (never logged) and the scopes the answer named. */
export interface UserTokenGrant {
  accessToken: string;
  scopes: string[];
}

/** One poll of the device flow: not yet, or the token. */
export type DevicePoll = { state: 'pending'; slowDown: boolean } | { state: 'done'; token: UserTokenGrant };

export class UserOAuthClient {
  readonly #o: UserOAuthOptions;

  constructor(options: UserOAuthOptions) {
    this.#o = options;
  }

  /** The URL of Twitch's authorize page for `scopes`, with `force_verify` so that the user sees what they grant. */
  authorizeUrl(init: { redirectUri: string; scopes: readonly string[]; state: string }): string {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: this.#o.clientId,
      redirect_uri: init.redirectUri,
      scope: init.scopes.join(' '),
      force_verify: 'true',
      state: init.state,
    });
    return `${this.#o.authUrl}/authorize?${query.toString()}`;
  }

  /**
   * Exchanges the code of the authorize redirect (`redirectUri` exactly as sent to the authorize page).
   * @throws AppError AUTHORIZATION_FAILED naming Twitch's message (invalid or used code, redirect mismatch,
   *   wrong secret, a public client); TwitchBadResponseError for a malformed 200.
   */
  async exchangeCode(code: string, redirectUri: string, signal?: AbortSignal): Promise<UserTokenGrant> {
    const secret = this.#o.clientSecret;
    if (!secret) throw new AppError('CONFIG_INVALID', 'TWITCH_CLIENT_SECRET is required for the authorization code flow (or use --device)');
    const form = new URLSearchParams({ client_id: this.#o.clientId, client_secret: secret, code, grant_type: 'authorization_code', redirect_uri: redirectUri });
    const res = await this.#post('/token', form, signal);
    if (res.status === 200) return this.#token(res);
    const message = twitchMessageOf(res, [secret, code]);
    throw new AppError('AUTHORIZATION_FAILED', `Twitch refused the authorization code: ${res.status} ${message}${hint(message)}`);
  }

  /**
   * Starts the device flow for `scopes`.
   * @throws AppError AUTHORIZATION_FAILED when Twitch refuses it; TwitchBadResponseError for a malformed 200.
   */
  async startDevice(scopes: readonly string[], signal?: AbortSignal): Promise<DeviceCodeResponse> {
    const res = await this.#post('/device', new URLSearchParams({ client_id: this.#o.clientId, scopes: scopes.join(' ') }), signal);
    if (res.status !== 200) throw new AppError('AUTHORIZATION_FAILED', `Twitch refused to start the device flow: ${res.status} ${twitchMessageOf(res)}`);
    const parsed = DeviceCodeResponse.safeParse(res.body);
    if (!parsed.success) throw badShape(this.#path('/device'), res);
    return parsed.data;
  }

  /**
   * One poll. `authorization_pending` (and `slow_down`, RFC 8628's, should Twitch send it) mean not yet;
   * Twitch puts them in `message` of a 400 (with `error` as a fallback).
   * @throws AppError AUTHORIZATION_DENIED when the user refused; AUTHORIZATION_FAILED for an expired, used or
   *   unknown device code and any other refusal.
   */
  async pollDevice(deviceCode: string, scopes: readonly string[], signal?: AbortSignal): Promise<DevicePoll> {
    const form = new URLSearchParams({ client_id: this.#o.clientId, scopes: scopes.join(' '), device_code: deviceCode, grant_type: DEVICE_GRANT_TYPE });
    const res = await this.#post('/token', form, signal);
    if (res.status === 200) return { state: 'done', token: this.#token(res) };
    const message = twitchMessageOf(res, [deviceCode]);
    const body = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as { message?: unknown; error?: unknown };
    const reason = typeof body.message === 'string' ? body.message : typeof body.error === 'string' ? body.error : '';
    if (reason === 'authorization_pending') return { state: 'pending', slowDown: false };
    if (reason === 'slow_down') return { state: 'pending', slowDown: true };
    if (reason === 'access_denied') throw new AppError('AUTHORIZATION_DENIED', 'The user refused the authorization at the activation page');
    throw new AppError('AUTHORIZATION_FAILED', `The device code flow failed: ${res.status} ${message}`);
  }

  #token(res: HttpResult): UserTokenGrant {
    const parsed = UserTokenResponse.safeParse(res.body);
    if (!parsed.success) throw badShape(this.#path('/token'), res);
    return { accessToken: parsed.data.access_token, scopes: parsed.data.scope };
  }

  #path(path: string): string {
    return pathOf(joinUrl(this.#o.authUrl, path));
  }

  #post(path: string, form: URLSearchParams, signal: AbortSignal | undefined): Promise<HttpResult> {
    return postForm(this.#o.authUrl, path, form, { dispatcher: this.#o.dispatcher, signal, timeoutMs: this.#o.timeoutMs });
  }
}

/** What to do about the code exchange errors Twitch is known to answer (their messages are observed, not documented). */
function hint(message: string): string {
  if (/redirect_uri/i.test(message)) return ': TWITCH_REDIRECT_URL must be one of the app\'s OAuth Redirect URLs in the Twitch console, character for character';
  if (/client secret/i.test(message)) return ': check TWITCH_CLIENT_SECRET';
  if (/authorization code/i.test(message)) return ': a code works once and only for a short time; run eventsubd authorize again';
  return '';
}

function badShape(path: string, res: HttpResult): TwitchBadResponseError {
  return new TwitchBadResponseError(`POST ${path} answered ${res.status} with a body that is not the documented shape`);
}
