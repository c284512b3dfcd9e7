/**
 * Pure parsing of the frames an EventSub WebSocket sends (https://dev.twitch.tv/docs/eventsub/websocket-reference/,
 * twitch-contract.md 8.2): a text frame is `{metadata, payload}`, its payload shaped by `metadata.message_type`.
 * Validated with zod, once, here; the shard trusts what comes out. Unknown keys are dropped (Twitch adds fields
 * without notice: "Some clients see an extra `session.recovery_url`").
 */
import { z } from 'zod';
import type { ReceivedSubscription } from '../receiver/types.js';

/** One frame, read: what the shard acts on. `malformed` says why in words that quote nothing of the frame. */
export type ShardFrame =
  | { kind: 'session_welcome'; messageId: string; sessionId: string; keepaliveSeconds: number }
  | { kind: 'session_keepalive'; messageId: string }
  | { kind: 'session_reconnect'; messageId: string; sessionId: string; reconnectUrl: string }
  | {
      kind: 'notification' | 'revocation';
      messageId: string;
      timestamp: string;
      subscription: ReceivedSubscription;
      event?: unknown;
      events?: unknown[];
    }
  | { kind: 'unknown'; messageId: string; messageType: string }
  | { kind: 'malformed'; reason: string; messageId?: string; messageType?: string };

/** Longest `message_id` and `message_type` accepted (Twitch sends a UUID and a short word). */
const MAX_ID_CHARS = 256;
const MAX_TYPE_CHARS = 64;

const Metadata = z.object({
  message_id: z.string().min(1).max(MAX_ID_CHARS),
  message_type: z.string().min(1).max(MAX_TYPE_CHARS),
  message_timestamp: z.string().min(1).max(64).optional(),
});

const Envelope = z.object({ metadata: Metadata, payload: z.record(z.string(), z.unknown()) });

/**
 * `keepalive_timeout_seconds` is 10-600 from Twitch; any positive integer up to a day is taken, so that a test
 * server may ask for 1 s. Longer would be a server bug the shard need not trust.
 */
const Welcome = z.object({
  session: z.object({ id: z.string().min(1).max(MAX_ID_CHARS), keepalive_timeout_seconds: z.number().int().min(1).max(86_400) }),
});

/** https://dev.twitch.tv/docs/eventsub/handling-websocket-events/#reconnect-message: a ws:// or wss:// URL, used exactly as given. */
const Reconnect = z.object({
  session: z.object({
    id: z.string().min(1).max(MAX_ID_CHARS),
    reconnect_url: z.string().refine(isWebSocketUrl),
  }),
});

const SubscriptionShape = z.object({
  id: z.string().min(1),
  type: z.string().min(1),
  version: z.string().min(1),
  condition: z.record(z.string(), z.unknown()),
  status: z.string().optional(),
});

const EventObject = z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v));

const Notification = z
  .object({ subscription: SubscriptionShape, event: EventObject.optional(), events: z.array(z.unknown()).optional() })
  .refine((p) => p.event !== undefined || p.events !== undefined);

const Revocation = z.object({ subscription: SubscriptionShape });

function isWebSocketUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'ws:' || url.protocol === 'wss:';
  } catch {
    return false;
  }
}

/** Reads one text frame. Never throws: anything that is not a frame of the contract comes back `malformed`. */
export function parseShardFrame(text: string): ShardFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'malformed', reason: 'not JSON' };
  }
  const envelope = Envelope.safeParse(json);
  if (!envelope.success) return { kind: 'malformed', reason: 'not an envelope with metadata.message_id, metadata.message_type and a payload object', ...known(json) };
  const { metadata, payload } = envelope.data;
  const messageId = metadata.message_id;
  const messageType = metadata.message_type;
  const bad = (reason: string): ShardFrame => ({ kind: 'malformed', reason, messageId, messageType });
  switch (messageType) {
    case 'session_welcome': {
      const p = Welcome.safeParse(payload);
      if (!p.success) return bad('a welcome without session.id and an integer keepalive_timeout_seconds');
      return { kind: 'session_welcome', messageId, sessionId: p.data.session.id, keepaliveSeconds: p.data.session.keepalive_timeout_seconds };
    }
    case 'session_keepalive':
      return { kind: 'session_keepalive', messageId };
    case 'session_reconnect': {
      const p = Reconnect.safeParse(payload);
      if (!p.success) return bad('a session_reconnect without session.id and a ws:// or wss:// reconnect_url');
      return { kind: 'session_reconnect', messageId, sessionId: p.data.session.id, reconnectUrl: p.data.session.reconnect_url };
    }
    case 'notification':
    case 'revocation': {
      if (metadata.message_timestamp === undefined) return bad(`a ${messageType} without metadata.message_timestamp`);
      if (messageType === 'revocation') {
        const p = Revocation.safeParse(payload);
        if (!p.success) return bad('a revocation without a valid subscription');
        return { kind: 'revocation', messageId, timestamp: metadata.message_timestamp, subscription: subscriptionOf(p.data.subscription) };
      }
      const p = Notification.safeParse(payload);
      if (!p.success) return bad('a notification without a valid subscription and an event object or events array');
      const out: ShardFrame = { kind: 'notification', messageId, timestamp: metadata.message_timestamp, subscription: subscriptionOf(p.data.subscription) };
      if (p.data.event !== undefined) out.event = p.data.event;
      if (p.data.events !== undefined) out.events = p.data.events;
      return out;
    }
    default:
      return { kind: 'unknown', messageId, messageType };
  }
}

function subscriptionOf(s: z.infer<typeof SubscriptionShape>): ReceivedSubscription {
  const out: ReceivedSubscription = { id: s.id, type: s.type, version: s.version, condition: s.condition };
  if (s.status !== undefined) out.status = s.status;
  return out;
}

/** The message id and type of a frame that failed validation, when they at least are sane strings (for the log). */
function known(json: unknown): { messageId?: string; messageType?: string } {
  const metadata = typeof json === 'object' && json !== null ? (json as { metadata?: unknown }).metadata : undefined;
  if (typeof metadata !== 'object' || metadata === null) return {};
  const { message_id: id, message_type: type } = metadata as { message_id?: unknown; message_type?: unknown };
  const out: { messageId?: string; messageType?: string } = {};
  if (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_CHARS) out.messageId = id;
  if (typeof type === 'string' && type.length > 0 && type.length <= MAX_TYPE_CHARS) out.messageType = type;
  return out;
}

/**
 * What a close code means to the shard, and how loudly to say it
 * (https://dev.twitch.tv/docs/eventsub/handling-websocket-events/#close-message, twitch-contract.md 8.5). Every
 * code leads to a fresh connection to the configured URL after a backoff; only the log differs: 4001 and 4002
 * mean the shard itself broke the protocol (a bug), 4003 that the assignment came too late.
 */
export function closeMeaning(code: number): { level: 'warn' | 'error'; meaning: string } {
  switch (code) {
    case 4000:
      return { level: 'warn', meaning: 'internal server error' };
    case 4001:
      return { level: 'error', meaning: 'Twitch saw inbound traffic from the shard, which sends only pongs and closes: a bug' };
    case 4002:
      return { level: 'error', meaning: 'Twitch saw no pong to its ping: a bug or a stalled process' };
    case 4003:
      return { level: 'warn', meaning: 'connection unused: the shard was not assigned in time after the welcome' };
    case 4004:
      return { level: 'warn', meaning: 'reconnect grace time expired: the move to the reconnect URL did not complete' };
    case 4005:
      return { level: 'warn', meaning: 'network timeout' };
    case 4006:
      return { level: 'warn', meaning: 'network error' };
    case 4007:
      return { level: 'warn', meaning: 'invalid reconnect: starting a fresh connection to the configured URL' };
    case 1006:
      return { level: 'warn', meaning: 'connection dropped without a close frame' };
    case 1009:
      return { level: 'warn', meaning: 'a frame was larger than the shard accepts' };
    default:
      return { level: 'warn', meaning: 'closed by the server' };
  }
}
