/**
 * Webhook messages for the daemon's end-to-end tests: signed the way Twitch signs them (through the
 * emulator's `deliverWebhook`), or built by hand for hostile input (raw undici requests, raw TCP).
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { request } from 'undici';
import { deliverWebhook, type DeliverResult, type WebhookMessageType } from '../../src/emulator/index.js';
import { signMessage } from '../../src/twitch/signature.js';
import {
  BROADCASTER,
  CALLBACK,
  DEFAULT_SUBSCRIPTIONS,
  WEBHOOK_PATH,
  WEBHOOK_SECRET,
  type DesiredEntry,
  type Fixture,
  type HttpAnswer,
} from './harness.js';

/** A subscription object for a message body, as Twitch sends it. */
export function wireSubscription(entry: DesiredEntry, over: { id?: string; status?: string } = {}): Record<string, unknown> {
  return {
    id: over.id ?? randomUUID(),
    status: over.status ?? 'enabled',
    type: entry.type,
    version: entry.version,
    condition: entry.condition,
    transport: { method: 'webhook', callback: CALLBACK },
    created_at: new Date().toISOString(),
    cost: 0,
  };
}

/** Sends a signed message (notification by default) to the daemon's webhook path, the way Twitch does. */
export function send(
  fixture: Fixture,
  options: {
    messageType?: WebhookMessageType;
    subscription?: Record<string, unknown>;
    event?: unknown;
    messageId?: string;
    timestamp?: string;
    secret?: string;
    challenge?: string;
  } = {},
): Promise<DeliverResult> {
  return deliverWebhook({
    url: fixture.webhookUrl,
    secret: options.secret ?? WEBHOOK_SECRET,
    messageType: options.messageType ?? 'notification',
    subscription: (options.subscription ?? wireSubscription(DEFAULT_SUBSCRIPTIONS[0]!)) as { type: string; version: string },
    event: options.event ?? { broadcaster_user_id: BROADCASTER, n: randomUUID() },
    ...(options.messageId ? { messageId: options.messageId } : {}),
    ...(options.timestamp ? { timestamp: options.timestamp } : {}),
    ...(options.challenge ? { challenge: options.challenge } : {}),
    dispatcher: fixture.agent,
  });
}

/** The Twitch headers of a message signed over exactly `body` (override any of them afterwards). */
export function signedHeaders(
  body: string | Buffer,
  options: { messageId?: string; timestamp?: string; messageType?: string; secret?: string } = {},
): Record<string, string> {
  const messageId = options.messageId ?? randomUUID();
  const timestamp = options.timestamp ?? new Date().toISOString();
  return {
    'content-type': 'application/json',
    'twitch-eventsub-message-id': messageId,
    'twitch-eventsub-message-timestamp': timestamp,
    'twitch-eventsub-message-type': options.messageType ?? 'notification',
    'twitch-eventsub-message-retry': '0',
    'twitch-eventsub-message-signature': signMessage(options.secret ?? WEBHOOK_SECRET, messageId, timestamp, body),
  };
}

/** A notification body (compact JSON) for the first default subscription. */
export function notificationBody(event: Record<string, unknown> = { broadcaster_user_id: BROADCASTER, n: randomUUID() }): string {
  return JSON.stringify({ subscription: wireSubscription(DEFAULT_SUBSCRIPTIONS[0]!), event });
}

/** POSTs `body` with exactly `headers` to the webhook path (or `path`), through undici. */
export async function post(
  fixture: Fixture,
  headers: Record<string, string>,
  body: string | Buffer,
  options: { path?: string; method?: string } = {},
): Promise<HttpAnswer> {
  const res = await request(fixture.origin + (options.path ?? WEBHOOK_PATH), {
    method: (options.method ?? 'POST') as 'POST',
    headers,
    body,
    dispatcher: fixture.agent,
    headersTimeout: 10_000,
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/**
 * Raw TCP: connects to the daemon, writes `chunks` (then half-closes when `end`), and resolves with every byte
 * received until the server closes the connection or `waitMs` passes (then the socket is destroyed).
 */
export function rawExchange(
  fixture: Fixture,
  chunks: ReadonlyArray<string | Buffer>,
  options: { end?: boolean; waitMs?: number } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(fixture.port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => socket.destroy(), options.waitMs ?? 5_000);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    socket.on('error', () => {}); // EPIPE/ECONNRESET once a refused body is cut off: what came back is what counts
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
      if (options.end) socket.end();
    });
  });
}

/** The status code of a raw HTTP/1.1 answer, or 0 when nothing came back. */
export function rawStatus(answer: string): number {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(answer);
  return m ? Number(m[1]) : 0;
}
