/**
 * Revocation (https://dev.twitch.tv/docs/authentication/revoke-tokens/): `eventsubd token revoke`, and the
 * quiet revoke of the old token after a rotation.
 */
import { toAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { AppToken } from '../twitch/tokens.js';
import type { OAuthApi } from '../twitch/types.js';
import type { TokenStats } from './token-acquirer.js';
import type { TokenStore } from './token-cache.js';
import { fingerprintOf } from './token-policy.js';

export interface RevokeDeps {
  clientId: string;
  oauth: OAuthApi;
  cache: TokenStore;
  logger: Logger;
  stats: TokenStats;
  /** Remembers a revoked token so it is never adopted from the cache again. */
  markBad(fingerprint: string): void;
}

/** A token known by value, possibly never proven an app token (read from the cache). */
export interface TokenRef {
  value: string;
  fingerprint: string;
}

export function refOf(token: AppToken): TokenRef {
  return { value: token.reveal(), fingerprint: token.fingerprint };
}

/**
 * Under the lock: revokes `current` (a minted or cached token) and the cached token of our client, then
 * removes the cache file.
 * @returns the fingerprint of the first token revoked, or undefined when there was none.
 * @throws the revoke call's error; the cache is then left as it was.
 */
export async function revokeAll(deps: RevokeDeps, current: AppToken | undefined, signal?: AbortSignal): Promise<string | undefined> {
  const targets = new Map<string, string>();
  if (current && current.origin !== 'supplied') targets.set(current.fingerprint, current.reveal());
  await deps.cache.withLock(async () => {
    const cached = await deps.cache.read();
    if (cached?.clientId === deps.clientId) targets.set(fingerprintOf(cached.accessToken), cached.accessToken);
    for (const [fingerprint, value] of targets) {
      await deps.oauth.revoke(value, signal);
      deps.stats.revocations++;
      deps.markBad(fingerprint);
      deps.logger.info('Revoked an app token', { fingerprint });
    }
    if (cached) await deps.cache.remove();
  }, signal);
  return targets.keys().next().value;
}

/** Revokes the token a rotation replaced. A failure is logged at warn, never thrown: the new token works. */
export async function revokeQuietly(deps: RevokeDeps, previous: TokenRef, signal?: AbortSignal): Promise<void> {
  deps.markBad(previous.fingerprint);
  try {
    await deps.oauth.revoke(previous.value, signal);
    deps.stats.revocations++;
    deps.logger.info('Revoked the previous app token', { fingerprint: previous.fingerprint });
  } catch (err) {
    deps.logger.warn('Could not revoke the previous app token', { fingerprint: previous.fingerprint, error: toAppError(err) });
  }
}
