/**
 * `eventsubd token status`: what the cache (or TWITCH_ACCESS_TOKEN) holds, checked with one `/validate`.
 * Never mints, never writes, never removes: a status command changes nothing.
 */
import type { Clock } from '../lib/clock.js';
import { TokenRefusedError } from '../lib/errors.js';
import { AppToken } from '../twitch/tokens.js';
import type { TokenAcquirer } from './token-acquirer.js';
import type { TokenStore } from './token-cache.js';
import { briefError, fingerprintOf, statusOf, type TokenStatus } from './token-policy.js';

export interface InspectDeps {
  clientId: string;
  suppliedToken?: string | undefined;
  cache: TokenStore;
  clock: Clock;
  acquirer: Pick<TokenAcquirer, 'validate'>;
}

/**
 * The status of the token a command would use. `refused` carries the reason in `lastError`
 * (USER_TOKEN_REFUSED, TOKEN_CLIENT_MISMATCH, or TOKEN_INVALID for a 401).
 * @throws the validate call's error when Twitch cannot be reached; StateDirError when the cache is unreadable.
 */
export async function inspectToken(deps: InspectDeps, signal?: AbortSignal): Promise<TokenStatus> {
  const { clientId, suppliedToken, cache } = deps;
  if (suppliedToken !== undefined) {
    return checkValue(deps, { value: suppliedToken, origin: 'supplied' }, signal);
  }
  const cached = await cache.read();
  if (!cached) return { state: 'missing' };
  const base = {
    origin: 'cache' as const,
    fingerprint: fingerprintOf(cached.accessToken),
    obtainedAt: cached.obtainedAt,
    expiresAt: cached.expiresAt,
    ...(cached.validatedAt === undefined ? {} : { validatedAt: cached.validatedAt }),
  };
  if (cached.clientId !== clientId) {
    const err = new TokenRefusedError(
      'TOKEN_CLIENT_MISMATCH',
      `The cached token was minted for another client ID (${cached.clientId}); the next command will mint one for ${clientId}`,
    );
    return { state: 'refused', ...base, lastError: briefError(err) };
  }
  const status = await checkValue(deps, { value: cached.accessToken, origin: 'cache', obtainedAt: cached.obtainedAt }, signal);
  return status.state === 'refused' ? { ...base, ...status } : status;
}

async function checkValue(
  deps: InspectDeps,
  token: { value: string; origin: 'cache' | 'supplied'; obtainedAt?: number },
  signal: AbortSignal | undefined,
): Promise<TokenStatus> {
  const fingerprint = fingerprintOf(token.value);
  const answer = await deps.acquirer.validate(token.value, signal);
  if (answer === null) {
    const err = new TokenRefusedError('TOKEN_INVALID', 'Twitch rejected the token (401 on /validate): it is invalid, expired or revoked');
    return { state: 'refused', origin: token.origin, fingerprint, lastError: briefError(err) };
  }
  try {
    const now = deps.clock.now();
    const proven = AppToken.fromValidation(token.value, answer, {
      expectedClientId: deps.clientId,
      now,
      origin: token.origin,
      ...(token.obtainedAt === undefined ? {} : { obtainedAt: token.obtainedAt }),
    });
    return statusOf(proven, now);
  } catch (err) {
    if (!(err instanceof TokenRefusedError)) throw err;
    return { state: 'refused', origin: token.origin, fingerprint, lastError: briefError(err) };
  }
}
