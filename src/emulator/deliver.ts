/**
 * Sends one EventSub webhook message the way Twitch does
 * (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#list-of-request-headers, #verifying-the-event-message): JSON body, the
 * `Twitch-Eventsub-*` headers, an HMAC signature over id + timestamp + raw body. Used by the emulator's
 * verification and by `eventsubd trigger`.
 */
import { safeUrl } from '../lib/url.js';
import { request, type Dispatcher } from 'undici';
import { systemClock, type Clock } from '../lib/clock.js';
import { AbortedError, AppError } from '../lib/errors.js';
import { signMessage } from '../twitch/signature.js';
import { randomAlnum, randomId, rfc3339Nano } from './ids.js';
import type { WireSubscription } from './types.js';

export type WebhookMessageType = 'notification' | 'webhook_callback_verification' | 'revocation';

/**
 * How long a delivery may take. Twitch documents only that a slow answer times out after "a few seconds"
 * (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/); twitch-cli's client uses 10 s
 * (internal/events/trigger/forward_event.go), and so does this one.
 */
export const DELIVERY_TIMEOUT_MS = 10_000;

export interface DeliverOptions {
  /** Where to POST (any URL: the caller decides what is allowed). */
  url: string;
  /** The subscription's secret: the HMAC key. */
  secret: string;
  messageType: WebhookMessageType;
  /** The `subscription` object of the body; `type` and `version` also fill the headers. */
  subscription: WireSubscription | { type: string; version: string; [key: string]: unknown };
  /** The `event` of a notification (default `{}`); ignored for other message types. */
  event?: unknown;
  /** The `events` of a batched notification (drop.entitlement.grant): sent instead of `event`. */
  events?: readonly unknown[];
  /** The challenge of a verification; random when absent. */
  challenge?: string;
  /** Default: a random UUID. */
  messageId?: string;
  /** Sent verbatim in the header and signed verbatim. Default: now, RFC 3339 with nanoseconds. */
  timestamp?: string;
  dispatcher?: Dispatcher;
  /** Default systemClock: the default timestamp and the timeout. */
  clock?: Clock;
  signal?: AbortSignal;
  /** Default DELIVERY_TIMEOUT_MS, measured on `clock`. */
  timeoutMs?: number;
}

export interface DeliverResult {
  status: number;
  /** The raw response body. */
  body: string;
  headers: Record<string, string | string[] | undefined>;
  messageId: string;
  timestamp: string;
  /** The challenge sent, for a verification. */
  challenge?: string;
}

/**
 * POSTs a signed message and returns the receiver's answer, whatever its status. Redirects are not followed.
 * @throws AppError WEBHOOK_DELIVERY_FAILED on a network error or timeout; AbortedError when `signal` aborts.
 */
export async function deliverWebhook(options: DeliverOptions): Promise<DeliverResult> {
  const clock = options.clock ?? systemClock;
  const messageId = options.messageId ?? randomId();
  const timestamp = options.timestamp ?? rfc3339Nano(clock.now());
  const { body, challenge } = buildBody(options);
  const headers = {
    'content-type': 'application/json',
    'twitch-eventsub-message-id': messageId,
    'twitch-eventsub-message-retry': '0',
    'twitch-eventsub-message-type': options.messageType,
    'twitch-eventsub-message-signature': signMessage(options.secret, messageId, timestamp, body),
    'twitch-eventsub-message-timestamp': timestamp,
    'twitch-eventsub-subscription-type': options.subscription.type,
    'twitch-eventsub-subscription-version': options.subscription.version,
  };

  const timer = new AbortController();
  const timedOut = new AbortController();
  clock.sleep(options.timeoutMs ?? DELIVERY_TIMEOUT_MS, timer.signal).then(
    () => timedOut.abort(),
    () => undefined,
  );
  const signal = options.signal ? AbortSignal.any([options.signal, timedOut.signal]) : timedOut.signal;
  try {
    const res = await request(options.url, { method: 'POST', headers, body, dispatcher: options.dispatcher, signal });
    const text = await res.body.text();
    return { status: res.statusCode, body: text, headers: res.headers, messageId, timestamp, ...(challenge === undefined ? {} : { challenge }) };
  } catch (err) {
    if (options.signal?.aborted) throw new AbortedError({ cause: err });
    const why = timedOut.signal.aborted ? `timed out after ${options.timeoutMs ?? DELIVERY_TIMEOUT_MS} ms` : 'failed';
    throw new AppError('WEBHOOK_DELIVERY_FAILED', `Webhook delivery of ${options.messageType} to ${safeUrl(options.url)} ${why}`, { cause: err });
  } finally {
    timer.abort();
  }
}

function buildBody(options: DeliverOptions): { body: string; challenge?: string } {
  const subscription = options.subscription;
  switch (options.messageType) {
    case 'webhook_callback_verification': {
      const challenge = options.challenge ?? randomAlnum(32);
      return { body: JSON.stringify({ challenge, subscription }), challenge };
    }
    case 'revocation':
      return { body: JSON.stringify({ subscription }) };
    case 'notification':
      if (options.events !== undefined) return { body: JSON.stringify({ subscription, events: options.events }) };
      return { body: JSON.stringify({ subscription, event: options.event ?? {} }) };
  }
}


