/** Random identifiers and timestamps in Twitch's formats. */
import { randomInt, randomUUID } from 'node:crypto';

const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `length` random lowercase alphanumerics: the shape of Twitch client IDs and access tokens (30). */
export function randomAlnum(length = 30): string {
  let out = '';
  for (let i = 0; i < length; i++) out += LOWER_ALNUM[randomInt(LOWER_ALNUM.length)];
  return out;
}

/** A subscription or message ID (UUID v4, as Twitch uses). */
export function randomId(): string {
  return randomUUID();
}

/**
 * RFC 3339 UTC with nanosecond precision, as in `created_at` and `Twitch-Eventsub-Message-Timestamp`
 * (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#list-of-request-headers): the clock gives
 * milliseconds, the six digits below them are random.
 */
export function rfc3339Nano(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  const extra = String(randomInt(1_000_000)).padStart(6, '0');
  return iso.replace(/Z$/, `${extra}Z`);
}
