/**
 * Pure parsing of a webhook delivery (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#list-of-request-headers;
 * a conduit shard's challenge: https://dev.twitch.tv/docs/eventsub/handling-conduit-events/): the required headers, the JSON
 * body by message type, and the RFC 3339 timestamp.
 */
import { isUtf8 } from 'node:buffer';
import type { ConduitShardRef, ReceivedSubscription } from './types.js';

export const HEADER_MESSAGE_ID = 'twitch-eventsub-message-id';
export const HEADER_TIMESTAMP = 'twitch-eventsub-message-timestamp';
export const HEADER_MESSAGE_TYPE = 'twitch-eventsub-message-type';
export const HEADER_SIGNATURE = 'twitch-eventsub-message-signature';

/** Longest accepted header values, in characters (Twitch sends a UUID and a 30-character timestamp). */
export const HEADER_LIMITS = Object.freeze({
  [HEADER_MESSAGE_ID]: 256,
  [HEADER_TIMESTAMP]: 64,
  [HEADER_MESSAGE_TYPE]: 64,
});

export type MessageType = 'webhook_callback_verification' | 'notification' | 'revocation';
const MESSAGE_TYPES: readonly string[] = ['webhook_callback_verification', 'notification', 'revocation'];

export function isMessageType(value: string): value is MessageType {
  return MESSAGE_TYPES.includes(value);
}

export interface RequiredHeaders {
  messageId: string;
  timestamp: string;
  messageType: string;
}

type Headers = Record<string, string | string[] | undefined>;

/** The three required headers, or the name of the first one that is missing, repeated, empty or too long. */
export function readRequiredHeaders(headers: Headers): RequiredHeaders | { invalid: string } {
  const values: string[] = [];
  for (const [name, max] of Object.entries(HEADER_LIMITS)) {
    const value = headers[name];
    if (typeof value !== 'string' || value.length === 0 || value.length > max) return { invalid: name };
    values.push(value);
  }
  const [messageId = '', timestamp = '', messageType = ''] = values;
  return { messageId, timestamp, messageType };
}

/** The signature header when sent exactly once, else undefined. Its shape is checked by the caller. */
export function readSignatureHeader(headers: Headers): string | undefined {
  const value = headers[HEADER_SIGNATURE];
  return typeof value === 'string' ? value : undefined;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Epoch milliseconds of an RFC 3339 date-time (fraction up to nanoseconds, truncated to ms), or undefined
 * when it is not one: wrong shape, out-of-range field, or a day the month does not have.
 */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  let offsetMin = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return utc - offsetMin * 60_000;
}

export type ParsedBody =
  | { type: 'webhook_callback_verification'; challenge: string; subscription?: ReceivedSubscription; conduitShard?: ConduitShardRef }
  | { type: 'notification'; subscription: ReceivedSubscription; event?: unknown; events?: unknown[] }
  | { type: 'revocation'; subscription: ReceivedSubscription }
  | { type: 'unknown' };

/**
 * Decodes (strict UTF-8, a leading BOM ignored) and parses the raw body, then validates it for the message
 * `type`: every message needs a `subscription` with non-empty string `id`, `type`, `version`, an object
 * `condition` and, when present, a string `status`; a notification needs an object `event` or an array `events`;
 * a challenge needs a non-empty string `challenge` and a `subscription` or a `conduit_shard` (non-empty string
 * `conduit_id` and `shard`). Unknown fields are allowed and dropped. An unknown type gives `{ type: 'unknown' }`
 * when the body is a JSON object. Returns undefined for invalid UTF-8, invalid JSON, a non-object, or a missing
 * or mistyped field. Hand-written rather than zod: it runs for every request the receiver accepts.
 */
export function parseBody(type: string, raw: Uint8Array): ParsedBody | undefined {
  const json = parseJsonObject(Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  if (json === undefined) return undefined;
  if (!isMessageType(type)) return { type: 'unknown' };
  switch (type) {
    case 'notification': {
      const subscription = readSubscription(json['subscription']);
      const { event, events } = json;
      if (subscription === undefined) return undefined;
      if (event !== undefined && !isObject(event)) return undefined;
      if (events !== undefined && !Array.isArray(events)) return undefined;
      if (event === undefined && events === undefined) return undefined;
      const out: ParsedBody = { type, subscription };
      if (event !== undefined) out.event = event;
      if (events !== undefined) out.events = events as unknown[];
      return out;
    }
    case 'revocation': {
      const subscription = readSubscription(json['subscription']);
      return subscription === undefined ? undefined : { type, subscription };
    }
    case 'webhook_callback_verification': {
      const { challenge, subscription: rawSubscription, conduit_shard: rawShard } = json;
      if (!isNonEmptyString(challenge)) return undefined;
      const subscription = rawSubscription === undefined ? undefined : readSubscription(rawSubscription);
      const conduitShard = rawShard === undefined ? undefined : readConduitShard(rawShard);
      if ((rawSubscription !== undefined && subscription === undefined) || (rawShard !== undefined && conduitShard === undefined)) {
        return undefined;
      }
      if (subscription === undefined && conduitShard === undefined) return undefined;
      const out: ParsedBody = { type, challenge };
      if (subscription) out.subscription = subscription;
      if (conduitShard) out.conduitShard = conduitShard;
      return out;
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonObject(raw: Buffer): Record<string, unknown> | undefined {
  let json: unknown;
  try {
    // isUtf8 + toString is several times faster than a fatal TextDecoder, which is kept for a leading BOM.
    const text = raw[0] === 0xef ? utf8.decode(raw) : isUtf8(raw) ? raw.toString('utf8') : undefined;
    if (text === undefined) return undefined;
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isObject(json) ? json : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function readSubscription(value: unknown): ReceivedSubscription | undefined {
  if (!isObject(value)) return undefined;
  const { id, type, version, status, condition } = value;
  if (!isNonEmptyString(id) || !isNonEmptyString(type) || !isNonEmptyString(version) || !isObject(condition)) return undefined;
  if (status !== undefined && typeof status !== 'string') return undefined;
  const out: ReceivedSubscription = { id, type, version, condition };
  if (status !== undefined) out.status = status;
  return out;
}

function readConduitShard(value: unknown): ConduitShardRef | undefined {
  if (!isObject(value)) return undefined;
  const { conduit_id, shard } = value;
  return isNonEmptyString(conduit_id) && isNonEmptyString(shard) ? { conduit_id, shard } : undefined;
}
