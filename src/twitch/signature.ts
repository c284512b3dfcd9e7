/**
 * EventSub webhook signatures (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message):
 * `sha256=` + hex HMAC-SHA256(secret, id + timestamp + raw body).
 * Always over the raw bytes: parsing and re-serialising the JSON breaks the HMAC.
 */
import { createHash, createHmac, hash, timingSafeEqual } from 'node:crypto';

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
  const message = body.length <= ONE_SHOT_MAX_BYTES ? innerMessage(messageId, timestamp, body) : undefined;
  let ok = false;
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    const mac = message === undefined ? digest(secret, messageId, timestamp, body) : oneShotDigest(secret, message);
    if (timingSafeEqual(mac, given)) ok = true;
  }
  return ok;
}

/*
 * The same HMAC (RFC 2104) from two one-shot SHA-256 digests over key pads computed once per secret:
 * H((K ^ opad) || H((K ^ ipad) || message)). `createHmac` sets up a new OpenSSL context for every message, which
 * the receiver's profile put at 2-3 µs of its ~50 µs per notification; `crypto.hash` (Node 20.12+) reuses the
 * digest. Bodies larger than ONE_SHOT_MAX_BYTES keep `createHmac`, which hashes them without a copy.
 */
const BLOCK_BYTES = 64;
const DIGEST_BYTES = 32;
const ONE_SHOT_MAX_BYTES = 64 * 1024;
interface Pads {
  /** K ^ ipad: copied into the scratch buffer's first block, before the message, for each digest. */
  readonly ipad: Buffer;
  /** K ^ opad, then room for the inner digest. */
  readonly outer: Buffer;
}
/** Pads by secret: a handful (current and previous secrets); cleared if a caller ever passes many. */
const padsBySecret = new Map<string, Pads>();
const MAX_CACHED_SECRETS = 16;
/** The inner hash's input: a block for K ^ ipad, then id + timestamp + body (reused: verification is synchronous). */
let scratch = Buffer.allocUnsafe(BLOCK_BYTES + 4096);

function padsFor(secret: string): Pads {
  let pads = padsBySecret.get(secret);
  if (pads !== undefined) return pads;
  let key = Buffer.from(secret, 'utf8');
  if (key.length > BLOCK_BYTES) key = createHash('sha256').update(key).digest();
  const ipad = Buffer.alloc(BLOCK_BYTES);
  const outer = Buffer.alloc(BLOCK_BYTES + DIGEST_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) {
    const k = i < key.length ? key[i]! : 0;
    ipad[i] = k ^ 0x36;
    outer[i] = k ^ 0x5c;
  }
  if (padsBySecret.size >= MAX_CACHED_SECRETS) padsBySecret.clear();
  padsBySecret.set(secret, (pads = { ipad, outer }));
  return pads;
}

/** Writes id + timestamp (UTF-8, as `createHmac().update(string)` takes them) + body after the scratch's first block. */
function innerMessage(messageId: string, timestamp: string, body: Uint8Array): Buffer {
  const need = BLOCK_BYTES + 3 * (messageId.length + timestamp.length) + body.length;
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, 2 * scratch.length));
  let at = BLOCK_BYTES;
  at += scratch.write(messageId, at, 'utf8');
  at += scratch.write(timestamp, at, 'utf8');
  scratch.set(body, at);
  return scratch.subarray(0, at + body.length);
}

function oneShotDigest(secret: string, message: Buffer): Buffer {
  const { ipad, outer } = padsFor(secret);
  ipad.copy(message, 0);
  hash('sha256', message, 'buffer').copy(outer, BLOCK_BYTES);
  return hash('sha256', outer, 'buffer');
}
