/**
 * EventSub webhook signatures (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message):
 * `sha256=` + hex HMAC-SHA256(secret, id + timestamp + raw body).
 * Always over the raw bytes: parsing and re-serialising the JSON breaks the HMAC.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_PREFIX = 'sha256=';
const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/;

/** Returns the `Twitch-Eventsub-Message-Signature` header value for a message. */
export function signMessage(secret: string, messageId: string, timestamp: string, body: Uint8Array | string): string {
  return SIGNATURE_PREFIX + digest(secret, messageId, timestamp, body).toString('hex');
}

/** HMAC-SHA256(secret, id + timestamp + body) as raw bytes (one update for the two headers: they are short). */
function digest(secret: string, messageId: string, timestamp: string, body: Uint8Array | string): Buffer {
  return createHmac('sha256', secret).update(messageId + timestamp).update(body).digest();
}

/**
 * True when `signature` is exactly `sha256=` + 64 lowercase hex characters and matches one of `secrets`.
 * Every secret is checked (no early exit on a match), each with a constant-time compare of the 32 bytes; an
 * empty secret never matches.
 */
export function verifySignature(
  secrets: readonly string[],
  messageId: string,
  timestamp: string,
  body: Uint8Array,
  signature: string,
): boolean {
  if (!SIGNATURE_PATTERN.test(signature)) return false;
  const given = Buffer.from(signature.slice(SIGNATURE_PREFIX.length), 'hex');
  let ok = false;
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    if (timingSafeEqual(digest(secret, messageId, timestamp, body), given)) ok = true;
  }
  return ok;
}
