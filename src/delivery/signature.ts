/**
 * The forward signature (README.md "Delivery to your application"): `Eventsubd-Signature: sha256=<hex>`,
 * the HMAC-SHA256 of the raw request body keyed with `EVENTSUBD_FORWARD_SECRET`. Unlike Twitch's signature
 * it covers the body only: the body already carries the seq and the message id.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header name, lower case as Node reports it. */
export const FORWARD_SIGNATURE_HEADER = 'eventsubd-signature';

const SIGNATURE = /^sha256=([0-9a-f]{64})$/;

/** `sha256=` + the lower-case hex HMAC-SHA256 of `body` keyed with `secret`. */
export function signForward(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Whether `header` is exactly `sha256=` + 64 lower-case hex digits and matches the HMAC of the raw `body`
 * (compared in constant time). For consumers of the forwarder: pass the body bytes as received, before any
 * JSON parsing. A missing or malformed header is `false`, never an exception.
 */
export function verifyForwardSignature(secret: string, body: string | Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const m = SIGNATURE.exec(header);
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(m[1] as string, 'hex'));
}
