/**
 * How an app token is obtained: a supplied token is validated; otherwise a cached token of our client is
 * validated and adopted, or a new one is minted under the cross-process lock (re-reading the cache first,
 * since another process may have just minted). Single flight is the caller's job (TokenManager).
 */
import { isoTime, type Clock } from '../lib/clock.js';
import { AppError, TokenRefusedError, toAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { retry } from '../lib/retry.js';
import { AppToken } from '../twitch/tokens.js';
import type { OAuthApi } from '../twitch/types.js';
import type { ValidateResponse } from '../twitch/wire.js';
import type { CachedToken, TokenStore } from './token-cache.js';
import { fingerprintOf, isExpiring } from './token-policy.js';

/** Counters exposed as `TokenManager.stats`. */
export interface TokenStats {
  mints: number;
  validations: number;
  revocations: number;
  rotations: number;
}

export interface AcquirerDeps {
  clientId: string;
  oauth: OAuthApi;
  cache: TokenStore;
  clock: Clock;
  logger: Logger;
  canMint: boolean;
  random: () => number;
  mintAttempts: number;
  stats: TokenStats;
}

/** Failures worth another attempt: Twitch or the network misbehaved. Everything else is final. */
const RETRYABLE = new Set(['TWITCH_HTTP_ERROR', 'TWITCH_UNREACHABLE', 'TWITCH_BAD_RESPONSE', 'TWITCH_RATE_LIMITED']);

export class TokenAcquirer {
  readonly #d: AcquirerDeps;
  /** Fingerprints of tokens known dead or refused: never adopted from the cache again. */
  readonly #bad = new Set<string>();

  constructor(deps: AcquirerDeps) {
    this.#d = deps;
  }

  /** Never adopt this token from the cache again (Helix or /validate said 401, or it was revoked). */
  markBad(fingerprint: string): void {
    this.#bad.add(fingerprint);
  }

  /** `GET /validate`, counted. Resolves null on 401. */
  async validate(value: string, signal?: AbortSignal): Promise<ValidateResponse | null> {
    const answer = await this.#d.oauth.validate(value, signal);
    this.#d.stats.validations++;
    return answer;
  }

  /**
   * Validates TWITCH_ACCESS_TOKEN (network failures retried).
   * @throws TokenRefusedError USER_TOKEN_REFUSED, TOKEN_CLIENT_MISMATCH, or TOKEN_INVALID on 401.
   */
  validateSupplied(value: string, signal: AbortSignal): Promise<AppToken> {
    return this.#withRetries(signal, async () => {
      const answer = await this.validate(value, signal);
      if (answer === null) {
        throw new TokenRefusedError(
          'TOKEN_INVALID',
          'The token in TWITCH_ACCESS_TOKEN is invalid or expired (401 on /validate); it is never replaced: supply a new one, or unset it to let eventsubd mint app tokens',
        );
      }
      return AppToken.fromValidation(value, answer, {
        expectedClientId: this.#d.clientId,
        now: this.#d.clock.now(),
        origin: 'supplied',
      });
    });
  }

  /**
   * A usable app token from the cache or a fresh mint (`forceMint` skips the cache), retried
   * `mintAttempts` times on Twitch/network failures. `replacing`: the fingerprint of the token being
   * replaced (it is expiring), never adopted again from the cache: /validate's whole-second `expires_in`
   * can make it look usable for up to a second longer than the cache's exact expiry says, and adopting it
   * then would turn the rotation into a loop of /validate calls until the cache's deadline passes.
   * @throws TwitchAuthError (never retried); AppError TOKEN_UNAVAILABLE without a secret or after the
   *   last attempt; StateDirError; AbortedError.
   */
  acquire(signal: AbortSignal, options: { forceMint?: boolean; replacing?: string | undefined } = {}): Promise<AppToken> {
    return this.#withRetries(signal, () => this.#acquireOnce(signal, options.forceMint ?? false, options.replacing));
  }

  async #acquireOnce(signal: AbortSignal, forceMint: boolean, replacing: string | undefined): Promise<AppToken> {
    const { cache } = this.#d;
    const read = async (): Promise<CachedToken | undefined> => {
      const cached = await cache.read();
      return cached && replacing !== undefined && fingerprintOf(cached.accessToken) === replacing ? undefined : cached;
    };
    if (!forceMint) {
      const adopted = await this.#adopt(await read(), signal, false);
      if (adopted) return adopted;
    }
    if (!this.#d.canMint) {
      throw new AppError(
        'TOKEN_UNAVAILABLE',
        'No app token: set TWITCH_CLIENT_SECRET so that eventsubd can mint one (or TWITCH_ACCESS_TOKEN to supply one); the token cache holds no usable token',
      );
    }
    return cache.withLock(async () => {
      if (!forceMint) {
        const adopted = await this.#adopt(await read(), signal, true);
        if (adopted) return adopted;
      }
      return this.#mint(signal);
    }, signal);
  }

  /**
   * Adopts a cached token if it is ours, not within its rotation margin and proven an app token of our
   * client by /validate. A refused or dead one is discarded (file removed) and remembered as bad.
   */
  async #adopt(cached: CachedToken | undefined, signal: AbortSignal, locked: boolean): Promise<AppToken | undefined> {
    const { clientId, clock, logger } = this.#d;
    if (!cached) return undefined;
    const fingerprint = fingerprintOf(cached.accessToken);
    if (cached.clientId !== clientId) {
      logger.warn('Ignoring the cached token: it was minted for another client ID', { code: 'TOKEN_CLIENT_MISMATCH', fingerprint });
      return undefined;
    }
    if (this.#bad.has(fingerprint)) {
      if (locked) await this.#d.cache.remove();
      return undefined;
    }
    if (isExpiring(cached, clock.now())) return undefined;
    const answer = await this.validate(cached.accessToken, signal);
    let refusal: string = 'TOKEN_INVALID';
    let token: AppToken | undefined;
    if (answer !== null) {
      try {
        token = AppToken.fromValidation(cached.accessToken, answer, {
          expectedClientId: clientId,
          now: clock.now(),
          obtainedAt: cached.obtainedAt,
          origin: 'cache',
        });
      } catch (err) {
        if (!(err instanceof TokenRefusedError)) throw err;
        refusal = err.code;
      }
    }
    if (!token) {
      logger.warn('Discarding the cached token: /validate refused it', { code: refusal, fingerprint });
      this.#bad.add(fingerprint);
      if (locked) await this.#d.cache.remove();
      else await this.#discard(cached.accessToken, signal);
      return undefined;
    }
    if (isExpiring(token, clock.now())) return undefined;
    logger.debug('Using the cached app token', { fingerprint, expiresAt: isoOrNever(token.expiresAt) });
    return token;
  }

  /** Removes the cache file if it still holds `value` (another process may have replaced it meanwhile). */
  async #discard(value: string, signal: AbortSignal): Promise<void> {
    const { cache } = this.#d;
    await cache.withLock(async () => {
      if ((await cache.read())?.accessToken === value) await cache.remove();
    }, signal);
  }

  /** Mints and writes the cache. A failed write is logged: the token still works from memory. */
  async #mint(signal: AbortSignal): Promise<AppToken> {
    const { oauth, cache, logger, stats } = this.#d;
    const token = await oauth.mint(signal);
    stats.mints++;
    logger.info('Minted an app token', { fingerprint: token.fingerprint, expiresAt: isoOrNever(token.expiresAt) });
    try {
      await cache.write(token);
    } catch (err) {
      logger.warn('Could not write the token cache; the token is kept in memory only', { error: toAppError(err) });
    }
    return token;
  }

  async #withRetries(signal: AbortSignal, attempt: () => Promise<AppToken>): Promise<AppToken> {
    const attempts = Math.max(1, this.#d.mintAttempts);
    try {
      return await retry(attempt, {
        clock: this.#d.clock,
        signal,
        attempts,
        backoff: { baseMs: 500, maxMs: 5_000, random: this.#d.random },
        isRetriable: (err) => RETRYABLE.has(toAppError(err).code),
        onRetry: (err, n, delay) => this.#d.logger.warn('Obtaining an app token failed; retrying', { error: toAppError(err), attempt: n, retryInMs: delay }),
      });
    } catch (err) {
      const e = toAppError(err);
      // Only the last of `attempts` retriable failures gets here with a retriable code.
      if (!RETRYABLE.has(e.code)) throw e;
      throw new AppError('TOKEN_UNAVAILABLE', `No app token after ${attempts} attempts: ${e.message}`, { cause: e });
    }
  }
}

/** ISO time for logs; a never-expiring token says so. */
export function isoOrNever(ms: number): string {
  return isoTime(ms) ?? 'never';
}
