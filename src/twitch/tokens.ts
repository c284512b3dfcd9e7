/**
 * Token types. `AppToken` is nominal (a class with a private field): the only ways to obtain one are the
 * client-credentials grant (`AppToken.fromClientCredentials`) and a `/validate` answer that proves an app
 * token of our client (`AppToken.fromValidation`). The Helix EventSub client (webhook and conduit transports
 * alike) takes nothing else, so a user token cannot reach it without a compile error
 * (test/integration/app-token-types.test.ts proves it).
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { TokenRefusedError } from '../lib/errors.js';
import type { TokenResponse, ValidateResponse } from './wire.js';

export interface AppTokenInit {
  clientId: string;
  /** Epoch ms when the token was obtained. */
  obtainedAt: number;
  /** Epoch ms when Twitch will stop accepting it (0-lifetime tokens: Number.MAX_SAFE_INTEGER). */
  expiresAt: number;
  /** Epoch ms of the last successful /validate, or undefined if never validated. */
  validatedAt?: number | undefined;
  /** Where it came from: minted here, read from the cache, or supplied in TWITCH_ACCESS_TOKEN. */
  origin: 'minted' | 'cache' | 'supplied';
}

export class AppToken {
  readonly #value: string;
  readonly clientId: string;
  readonly obtainedAt: number;
  readonly expiresAt: number;
  readonly validatedAt: number | undefined;
  readonly origin: AppTokenInit['origin'];

  private constructor(value: string, init: AppTokenInit) {
    this.#value = value;
    this.clientId = init.clientId;
    this.obtainedAt = init.obtainedAt;
    this.expiresAt = init.expiresAt;
    this.validatedAt = init.validatedAt;
    this.origin = init.origin;
  }

  /** A token just minted with the client-credentials grant is an app token by construction. */
  static fromClientCredentials(response: TokenResponse, clientId: string, now: number): AppToken {
    return new AppToken(response.access_token, {
      clientId,
      obtainedAt: now,
      expiresAt: expiryFrom(now, response.expires_in),
      validatedAt: now,
      origin: 'minted',
    });
  }

  /**
   * Proves, from a `/validate` answer, that `value` is an app token of `expectedClientId`.
   * @throws TokenRefusedError USER_TOKEN_REFUSED when the answer names a user;
   *   TOKEN_CLIENT_MISMATCH when it names another client.
   */
  static fromValidation(
    value: string,
    validation: ValidateResponse,
    init: { expectedClientId: string; now: number; obtainedAt?: number; origin: 'cache' | 'supplied' },
  ): AppToken {
    assertAppTokenOf(validation, init.expectedClientId);
    return new AppToken(value, {
      clientId: validation.client_id,
      obtainedAt: init.obtainedAt ?? init.now,
      expiresAt: expiryFrom(init.now, validation.expires_in),
      validatedAt: init.now,
      origin: init.origin,
    });
  }

  /** The bearer value. Only for an Authorization header, the revoke body and the cache file. */
  reveal(): string {
    return this.#value;
  }

  /** A short, non-reversible id for logs and status ("sha256:1a2b3c4d"). */
  get fingerprint(): string {
    return 'sha256:' + createHash('sha256').update(this.#value).digest('hex').slice(0, 8);
  }

  /** The same token with a newer validation time and remaining life. */
  revalidated(validation: ValidateResponse, now: number): AppToken {
    assertAppTokenOf(validation, this.clientId);
    return new AppToken(this.#value, {
      clientId: this.clientId,
      obtainedAt: this.obtainedAt,
      expiresAt: expiryFrom(now, validation.expires_in),
      validatedAt: now,
      origin: this.origin,
    });
  }

  /** True when `other` carries the same secret value. */
  sameValueAs(other: AppToken): boolean {
    return this.#value === other.#value;
  }

  toJSON(): Record<string, unknown> {
    return { fingerprint: this.fingerprint, clientId: this.clientId, expiresAt: this.expiresAt };
  }

  toString(): string {
    return `AppToken(${this.fingerprint})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * Throws the refusal that a validation answer deserves, if any. A `user_id` that is present and non-empty
 * means a user token (https://dev.twitch.tv/docs/authentication/validate-tokens/).
 */
export function assertAppTokenOf(validation: ValidateResponse, expectedClientId: string): void {
  if (validation.user_id) {
    throw new TokenRefusedError(
      'USER_TOKEN_REFUSED',
      'Refusing a user access token for EventSub: webhook and conduit calls need an app token from the client-credentials grant',
    );
  }
  if (validation.client_id !== expectedClientId) {
    throw new TokenRefusedError(
      'TOKEN_CLIENT_MISMATCH',
      `Refusing a token issued to another client: TWITCH_CLIENT_ID is ${expectedClientId}, the token belongs to ${validation.client_id}`,
    );
  }
}

/**
 * `expires_in` of 0 marks a legacy non-expiring token: Twitch's docs do not say so, but twitch-rs/twitch_oauth2
 * reads 0 as "no expiry" (`ValidatedToken`, src/tokens.rs).
 */
function expiryFrom(now: number, expiresInSeconds: number): number {
  return expiresInSeconds === 0 ? Number.MAX_SAFE_INTEGER : now + expiresInSeconds * 1000;
}
