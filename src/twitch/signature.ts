/**
 * EventSub webhook signatures (twitch-contract.md 7.2): `sha256=` + hex HMAC-SHA256(secret, id + timestamp + raw body).
 * Always over the raw bytes: parsing and re-serialising the JSON breaks the HMAC.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_PREFIX = 'sha256=';
const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/;

/** Returns the `Twitch-Eventsub-Message-Signature` header value for a message. */
export function signMessage(secret: string, messageId: string, timestamp: string, body: Uint8Array | string): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(messageId);
  hmac.update(timestamp);
  hmac.update(body);
  return SIGNATURE_PREFIX + hmac.digest('hex');
}

/**
 * True when `signature` is exactly `sha256=` + 64 lowercase hex characters and matches one of `secrets`.
 * Every secret is checked (no early exit on a match), each with a constant-time compare.
 */
export function verifySignature(
  secrets: readonly string[],
  messageId: string,
  timestamp: string,
  body: Uint8Array,
  signature: string,
): boolean {
  if (!SIGNATURE_PATTERN.test(signature)) return false;
  const given = Buffer.from(signature, 'latin1');
  let ok = false;
  for (const secret of secrets) {
    const expected = Buffer.from(signMessage(secret, messageId, timestamp, body), 'latin1');
    if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}
