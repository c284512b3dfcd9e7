/**
 * The OAuth endpoints of id.twitch.tv: client-credentials mint
 * (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#client-credentials-grant-flow), validate
 * (https://dev.twitch.tv/docs/authentication/validate-tokens/) and revoke
 * (https://dev.twitch.tv/docs/authentication/revoke-tokens/). No retries here: the token manager decides
 * what to do with a failure.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../lib/clock.js';
import { ConfigError, TwitchAuthError, TwitchBadResponseError, TwitchHttpError } from '../lib/errors.js';
import { httpRequest, joinUrl, pathOf, postForm, twitchMessageOf, type HttpResult } from './http.js';
import { AppToken } from './tokens.js';
import type { OAuthApi } from './types.js';
import { TokenResponse, ValidateResponse } from './wire.js';

export interface OAuthClientOptions {
  /** OAuth base, e.g. `https://id.twitch.tv/oauth2` (TWITCH_AUTH_URL). */
  authUrl: string;
  clientId: string;
  /** Needed only to mint. */
  clientSecret?: string | undefined;
  dispatcher?: Dispatcher | undefined;
  clock: Clock;
  /** Per-request headers/body timeout in ms. Default 10 000. */
  timeoutMs?: number | undefined;
}

/** `OAuthApi` over undici. Secrets travel in form bodies only, never in a URL or a Basic header. */
export class OAuthClient implements OAuthApi {
  readonly #opts: OAuthClientOptions;

  constructor(options: OAuthClientOptions) {
    this.#opts = { ...options };
  }

  /**
   * `POST {authUrl}/token` with the client-credentials grant.
   * @throws ConfigError (CONFIG_INVALID) when no client secret is configured;
   *   TwitchAuthError (TWITCH_AUTH_FAILED) on 400/403; TwitchHttpError on any other non-200;
   *   TwitchBadResponseError on a malformed 200; TwitchUnreachableError on network errors.
   */
  async mint(signal?: AbortSignal): Promise<AppToken> {
    const { clientId, clientSecret, clock } = this.#opts;
    if (!clientSecret) {
      throw new ConfigError('Cannot mint an app token as TWITCH_CLIENT_SECRET is not set', {
        setting: 'TWITCH_CLIENT_SECRET',
      });
    }
    const form = new URLSearchParams({
      client_id: clientId,
      client_secret: clientSecret,
      grant_type: 'client_credentials',
    });
    const res = await this.#post('/token', form, signal);
    if (res.status === 200) {
      const parsed = TokenResponse.safeParse(res.body);
      if (!parsed.success) throw badShape('POST', this.#path('/token'), res);
      return AppToken.fromClientCredentials(parsed.data, clientId, clock.now());
    }
    const message = twitchMessageOf(res, [clientSecret]);
    if (res.status === 400 || res.status === 403) throw new TwitchAuthError(res.status, message);
    throw this.#httpError('POST', '/token', res, message);
  }

  /**
   * `GET {authUrl}/validate` with `Authorization: OAuth <value>`.
   * @returns the parsed answer, or null when Twitch says 401 (the token is dead).
   * @throws TwitchBadResponseError on a malformed 200; TwitchHttpError on other statuses.
   */
  async validate(tokenValue: string, signal?: AbortSignal): Promise<ValidateResponse | null> {
    const url = joinUrl(this.#opts.authUrl, '/validate');
    const res = await httpRequest({
      method: 'GET',
      url,
      headers: { authorization: `OAuth ${tokenValue}` },
      dispatcher: this.#opts.dispatcher,
      signal,
      timeoutMs: this.#opts.timeoutMs,
    });
    if (res.status === 401) return null;
    if (res.status === 200) {
      const parsed = ValidateResponse.safeParse(res.body);
      if (!parsed.success) throw badShape('GET', pathOf(url), res);
      return parsed.data;
    }
    throw this.#httpError('GET', '/validate', res, twitchMessageOf(res, [tokenValue]));
  }

  /**
   * `POST {authUrl}/revoke` with `client_id` and `token` in the form body. A 400 ("Invalid token": already
   * dead) resolves quietly.
   * @throws TwitchHttpError on other non-200 statuses (404: the client ID does not exist).
   */
  async revoke(tokenValue: string, signal?: AbortSignal): Promise<void> {
    const form = new URLSearchParams({ client_id: this.#opts.clientId, token: tokenValue });
    const res = await this.#post('/revoke', form, signal);
    if (res.status === 200 || res.status === 400) return;
    throw this.#httpError('POST', '/revoke', res, twitchMessageOf(res, [tokenValue]));
  }

  #post(path: string, form: URLSearchParams, signal: AbortSignal | undefined): Promise<HttpResult> {
    return postForm(this.#opts.authUrl, path, form, { dispatcher: this.#opts.dispatcher, signal, timeoutMs: this.#opts.timeoutMs });
  }

  #httpError(method: string, path: string, res: HttpResult, twitchMessage: string): TwitchHttpError {
    return new TwitchHttpError({
      status: res.status,
      twitchMessage,
      method,
      path: this.#path(path),
    });
  }

  #path(path: string): string {
    return pathOf(joinUrl(this.#opts.authUrl, path));
  }
}

function badShape(method: string, path: string, res: HttpResult): TwitchBadResponseError {
  return new TwitchBadResponseError(`${method} ${path} answered ${res.status} with a body that is not the documented shape`);
}
