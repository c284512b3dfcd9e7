/**
 * The EventSub WebSocket envelope (`{metadata, payload}`) and close codes, as Twitch sends them
 * (https://dev.twitch.tv/docs/eventsub/websocket-reference/ and twitch-contract.md 8.2, 8.5).
 */
import { randomBytes } from 'node:crypto';
import { randomId, rfc3339Nano } from './ids.js';

/** The close codes of https://dev.twitch.tv/docs/eventsub/handling-websocket-events/#close-message, with Twitch's reasons. */
export const EVENTSUB_CLOSE_REASONS = Object.freeze({
  4000: 'internal server error',
  4001: 'sent inbound traffic',
  4002: 'failed ping-pong',
  4003: 'connection unused',
  4004: 'reconnect grace time expired',
  4005: 'network timeout',
  4006: 'network error',
  4007: 'invalid reconnect',
} as const);

export type EventSubCloseCode = keyof typeof EVENTSUB_CLOSE_REASONS;

export function isEventSubCloseCode(code: number): code is EventSubCloseCode {
  return Object.prototype.hasOwnProperty.call(EVENTSUB_CLOSE_REASONS, code);
}

export type EventSubMessageType = 'session_welcome' | 'session_keepalive' | 'session_reconnect' | 'notification' | 'revocation';

export interface EventSubEnvelope {
  metadata: {
    message_id: string;
    message_type: EventSubMessageType;
    message_timestamp: string;
    subscription_type?: string;
    subscription_version?: string;
  };
  payload: object;
}

/**
 * One envelope with a fresh `message_id` (or `messageId`) and an RFC 3339 nanosecond `message_timestamp` taken
 * from `nowMs`; `subscription` (for notifications and revocations) adds `subscription_type` and `subscription_version`.
 */
export function eventSubEnvelope(
  messageType: EventSubMessageType,
  payload: object,
  options: { nowMs: number; subscription?: { type: string; version: string }; messageId?: string },
): EventSubEnvelope {
  const metadata: EventSubEnvelope['metadata'] = {
    message_id: options.messageId ?? randomId(),
    message_type: messageType,
    message_timestamp: rfc3339Nano(options.nowMs),
  };
  if (options.subscription) {
    metadata.subscription_type = options.subscription.type;
    metadata.subscription_version = options.subscription.version;
  }
  return { metadata, payload };
}

/** A `notification` frame: `payload` is `{subscription, event}`, the same objects as a webhook body. */
export function notificationEnvelope(
  subscription: { type: string; version: string } & Record<string, unknown>,
  event: object,
  nowMs: number,
  messageId?: string,
): EventSubEnvelope {
  return eventSubEnvelope('notification', { subscription, event }, { nowMs, subscription, ...(messageId === undefined ? {} : { messageId }) });
}

/** A `revocation` frame: `subscription.status` carries the reason. */
export function revocationEnvelope(subscription: { type: string; version: string } & Record<string, unknown>, nowMs: number, messageId?: string): EventSubEnvelope {
  return eventSubEnvelope('revocation', { subscription }, { nowMs, subscription, ...(messageId === undefined ? {} : { messageId }) });
}

/** A session id in the shape of Twitch's (`AQoQILE98gtqShGmLD7AM6yJThAB`: 28 URL-safe characters). */
export function randomSessionId(): string {
  return `AQoQ${randomBytes(18).toString('base64url')}`;
}

/** The one-time token a reconnect URL carries. */
export function randomReconnectToken(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * `?keepalive_timeout_seconds=`: the default when absent, an integer clamped to 10-600 (Twitch clamps an
 * out-of-range number, twitch-contract 8.1), null when it is not an integer.
 */
export function parseKeepalive(value: string | null, defaultSeconds: number): number | null {
  if (value === null) return defaultSeconds;
  if (!/^-?\d{1,9}$/.test(value)) return null;
  return Math.min(600, Math.max(10, Number(value)));
}
