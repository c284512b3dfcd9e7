/**
 * Pure rules of the token lifecycle: when a token is due for rotation, and how its state is reported.
 */
import { createHash } from 'node:crypto';
import type { AppError } from '../lib/errors.js';
import type { AppToken } from '../twitch/tokens.js';

/** The smallest rotation margin (ms) for a token that lives long enough to afford it. */
export const MIN_ROTATION_MARGIN_MS = 3_600_000;

/** `expiresAt` of a token that never expires (validate's `expires_in: 0`). */
export const NEVER_EXPIRES = Number.MAX_SAFE_INTEGER;

export interface TokenTimes {
  /** Epoch ms. */
  obtainedAt: number;
  /** Epoch ms. */
  expiresAt: number;
}

/**
 * How long (ms) before expiry a token is replaced: 10% of its lifetime, at least one hour, but never more
 * than half the lifetime (so that a short-lived token is still used for a while).
 */
export function rotationMargin(token: TokenTimes): number {
  const lifetime = Math.max(0, token.expiresAt - token.obtainedAt);
  return Math.min(Math.max(Math.floor(lifetime / 10), MIN_ROTATION_MARGIN_MS), Math.floor(lifetime / 2));
}

/** Epoch ms at which the token enters its rotation margin; Infinity for a never-expiring token. */
export function rotationDeadline(token: TokenTimes): number {
  if (token.expiresAt >= NEVER_EXPIRES) return Infinity;
  return token.expiresAt - rotationMargin(token);
}

/** True when `now` is within the token's rotation margin (or past its expiry). */
export function isExpiring(token: TokenTimes, now: number): boolean {
  return now >= rotationDeadline(token);
}

/** The same short id as `AppToken.fingerprint`, for a raw value read from the cache. */
export function fingerprintOf(value: string): string {
  return 'sha256:' + createHash('sha256').update(value).digest('hex').slice(0, 8);
}

export type TokenState = 'ok' | 'missing' | 'refused' | 'expiring';

/** What `eventsubd token status` and the daemon's health report show. Times are epoch ms. */
export interface TokenStatus {
  state: TokenState;
  origin?: AppToken['origin'];
  fingerprint?: string;
  obtainedAt?: number;
  expiresAt?: number;
  validatedAt?: number;
  lastError?: { code: string; message: string };
}

/** The status of a usable token: `expiring` within its rotation margin, `ok` otherwise. */
export function statusOf(token: AppToken, now: number, lastError?: AppError): TokenStatus {
  return {
    state: isExpiring(token, now) ? 'expiring' : 'ok',
    origin: token.origin,
    fingerprint: token.fingerprint,
    obtainedAt: token.obtainedAt,
    expiresAt: token.expiresAt,
    ...(token.validatedAt === undefined ? {} : { validatedAt: token.validatedAt }),
    ...(lastError ? { lastError: briefError(lastError) } : {}),
  };
}

export function briefError(err: AppError): { code: string; message: string } {
  return { code: err.code, message: err.message };
}

/** The codes that mean "this token must not be used": never retried. */
export function isRefusal(err: AppError): boolean {
  return err.code === 'USER_TOKEN_REFUSED' || err.code === 'TOKEN_CLIENT_MISMATCH' || err.code === 'TOKEN_INVALID';
}
