/**
 * The webhook handler: a pure function from a fully read request to a response (no sockets, no node:http).
 * The verification is strict and well ordered, so that nothing is parsed before the HMAC over the raw bytes
 * passes: path → method → closing → required headers → signature shape → HMAC with every secret → JSON → timestamp window →
 * message type. A notification is answered 2xx only once the journal has it on disk.
 */
import type { Clock } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { verifySignature } from '../twitch/signature.js';
import type { Dedup } from './dedup.js';
import { scanNotification, type NotificationSpans } from './fast-body.js';
import { Intake, type StoreResult } from './intake.js';
import {
  parseBody,
  parseRfc3339,
  readRequiredHeaders,
  readSignatureHeader,
  type ParsedBody,
} from './message.js';
import type {
  ConduitShardRef,
  JournalEntry,
  JournalSink,
  PreparedNotification,
  ReceivedSubscription,
  ReceiverMetrics,
  ReceiverOutcome,
  ReceiverRequest,
  ReceiverResponse,
} from './types.js';

/**
 * Twitch's replay window, applied on both sides of our clock: a message more than 10 minutes old is refused
 * (https://dev.twitch.tv/docs/eventsub/#guarding-against-replay-attacks).
 */
export const DEFAULT_REPLAY_WINDOW_MS = 10 * 60_000;

/**
 * The shortest dedup retention that stops every replay the window lets through: a message accepted with a
 * timestamp up to one window ahead of our clock passes the window again until one window after that
 * timestamp, so up to two windows after it was accepted, edge included.
 */
export function minDedupRetentionMs(windowMs: number): number {
  return 2 * windowMs + 1;
}

export interface WebhookHandlerDeps {
  /** The path of EVENTSUB_CALLBACK_URL, e.g. `/webhooks/callback`. */
  webhookPath: string;
  /** Every accepted secret (current first, then previous ones during a rotation); read on each request. */
  secrets: () => readonly string[];
  clock: Clock;
  journal: JournalSink;
  dedup: Dedup;
  /** Default DEFAULT_REPLAY_WINDOW_MS. */
  replayWindowMs?: number;
  /** Where messages are de-duplicated and journaled; built from `journal`, `dedup` and the callbacks when absent. */
  intake?: Intake;
  /** Called after a new revocation was journaled. Errors it throws are logged, never answered. */
  onRevocation?: (subscription: ReceivedSubscription) => void;
  /** Called after a new notification was journaled (the daemon watches `user.authorization.*`); `event()` parses its event. Errors are logged. */
  onNotification?: (subscription: ReceivedSubscription, event: () => unknown) => void;
  /** Called for every valid challenge; `subscription` is absent for a conduit shard's challenge. */
  onVerification?: (subscription: ReceivedSubscription | undefined, conduitShard?: ConduitShardRef) => void;
  /** GET/HEAD routes other than the webhook path (`/healthz`, `/readyz`, `/status`, `/metrics`). */
  routes?: Record<string, () => ReceiverResponse | Promise<ReceiverResponse>>;
  /** True once shutdown began: webhook requests then get 503 + `Connection: close`. */
  isClosing?: () => boolean;
  metrics?: ReceiverMetrics;
  logger?: Logger;
}

/** Answers at once when it can (a refusal, a duplicate), else once the message is durable. */
export type WebhookHandler = (req: ReceiverRequest) => ReceiverResponse | Promise<ReceiverResponse>;

interface Result {
  outcome: ReceiverOutcome;
  response: ReceiverResponse;
}

/** A short text/plain answer; never carries details about secrets. */
export function textResponse(status: number, text: string, headers: Record<string, string> = {}): ReceiverResponse {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers }, body: text };
}

const reject = (outcome: ReceiverOutcome, status: number, text: string, headers?: Record<string, string>): Result => ({
  outcome,
  response: textResponse(status, text, headers),
});
const NO_CONTENT: ReceiverResponse = Object.freeze({ status: 204 });
const ACCEPTED = {
  notification: Object.freeze({ outcome: 'notification', response: NO_CONTENT }),
  revocation: Object.freeze({ outcome: 'revocation', response: NO_CONTENT }),
  duplicate: Object.freeze({ outcome: 'duplicate', response: NO_CONTENT }),
} satisfies Record<string, Result>;
const journalFailed = (): Result => reject('journal_failed', 503, 'journal unavailable');
/** A notification's outcome from what the intake did with it. */
const notificationResult = (stored: StoreResult): Result =>
  // Answered 503 so that Twitch retries: the message is not lost, only late.
  stored === 'stored' ? ACCEPTED.notification : stored === 'duplicate' ? ACCEPTED.duplicate : journalFailed();

/**
 * Builds the handler. It never throws: anything unexpected becomes a 500.
 * @throws RangeError when `webhookPath` does not start with `/` or `replayWindowMs` is not positive.
 */
export function createWebhookHandler(deps: WebhookHandlerDeps): WebhookHandler {
  if (!deps.webhookPath.startsWith('/')) {
    throw new RangeError(`Webhook path must start with '/': current value is '${deps.webhookPath}'`);
  }
  const windowMs = deps.replayWindowMs ?? DEFAULT_REPLAY_WINDOW_MS;
  if (!(windowMs > 0)) throw new RangeError(`Replay window must be positive: current value is ${windowMs}`);
  const logger = deps.logger ?? silentLogger;
  const routes = new Map(Object.entries(deps.routes ?? {}));
  if (deps.dedup.retentionMs < minDedupRetentionMs(windowMs)) {
    throw new RangeError(
      `Dedup retention must be at least ${minDedupRetentionMs(windowMs)} ms for a ${windowMs} ms replay window: current value is ${deps.dedup.retentionMs}`,
    );
  }
  const intake =
    deps.intake ??
    new Intake({
      journal: deps.journal,
      dedup: deps.dedup,
      clock: deps.clock,
      onRevocation: deps.onRevocation,
      onNotification: deps.onNotification,
      logger,
    });

  const fast = intake.takesPrepared;
  /** The last timestamp header parsed: a burst of deliveries shares a few. */
  let lastTimestamp = '';
  let lastSentAt: number | undefined;
  /** `received_at` for the last millisecond asked. */
  let lastNow = Number.NaN;
  let lastIso = '';
  const isoAt = (now: number): string => {
    if (now !== lastNow) {
      lastNow = now;
      lastIso = new Date(now).toISOString();
    }
    return lastIso;
  };

  function handle(req: ReceiverRequest): Result | Promise<Result> {
    if (req.path !== deps.webhookPath) return routeRequest(req);
    if (req.method !== 'POST') return reject('method_not_allowed', 405, 'method not allowed', { Allow: 'POST' });
    if (deps.isClosing?.()) return reject('closing', 503, 'shutting down', { Connection: 'close' });

    const headers = readRequiredHeaders(req.headers);
    if ('invalid' in headers) return reject('bad_request', 400, `missing or invalid header ${headers.invalid}`);
    const signature = readSignatureHeader(req.headers);
    // verifySignature checks the shape (`sha256=` + 64 lowercase hex digits) before any HMAC.
    if (signature === undefined || !verifySignature(deps.secrets(), headers.messageId, headers.timestamp, req.body, signature)) {
      return reject('bad_signature', 403, 'invalid signature');
    }
    // Only an authenticated body is parsed. The fast path takes the common notification (fast-body.ts); for any
    // other body it steps aside and parseBody decides, so both give the same answer and the same record.
    if (fast && headers.messageType === 'notification') {
      const spans = scanNotification(req.body);
      if (spans !== undefined) return checkTimestamp(headers) ?? acceptPrepared(headers.messageId, req.body, spans);
    }
    const body = parseBody(headers.messageType, req.body);
    if (body === undefined) return reject('bad_request', 400, 'invalid body');
    const refused = checkTimestamp(headers);
    if (refused) return refused;
    // An unknown type is answered 400 only after the timestamp check.
    if (body.type === 'unknown') return reject('unknown_type', 400, 'unknown message type');
    if (body.type === 'webhook_callback_verification') return challenge(body);
    return accept(headers.messageId, body);
  }

  /** The refusal for a timestamp that is not RFC 3339 or lies outside the replay window, else undefined. */
  function checkTimestamp(headers: { messageId: string; timestamp: string }): Result | undefined {
    if (headers.timestamp !== lastTimestamp) {
      lastTimestamp = headers.timestamp;
      lastSentAt = parseRfc3339(headers.timestamp);
    }
    const sentAt = lastSentAt;
    if (sentAt === undefined) return reject('bad_request', 400, 'invalid timestamp');
    const skew = deps.clock.now() - sentAt;
    if (Math.abs(skew) <= windowMs) return undefined;
    // Logged with the measured skew, so a drifting clock shows up instead of silently dropping messages.
    logger.warn('Rejected a webhook message outside the replay window', { message_id: headers.messageId, skew_ms: skew });
    return skew > 0 ? reject('stale', 403, 'message too old') : reject('future', 403, 'message timestamp in the future');
  }

  function routeRequest(req: ReceiverRequest): Result | Promise<Result> {
    const route = routes.get(req.path);
    if (!route) return reject('not_found', 404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reject('method_not_allowed', 405, 'method not allowed', { Allow: 'GET, HEAD' });
    }
    const response = route();
    return response instanceof Promise ? response.then(routeResult) : routeResult(response);
  }

  function challenge(body: Extract<ParsedBody, { type: 'webhook_callback_verification' }>): Result {
    notify(() => deps.onVerification?.(body.subscription, body.conduitShard), 'onVerification');
    // The raw challenge, no JSON quoting, text/plain
    // (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request).
    return { outcome: 'challenge', response: { status: 200, headers: { 'Content-Type': 'text/plain' }, body: body.challenge } };
  }

  function accept(messageId: string, body: Extract<ParsedBody, { type: 'notification' | 'revocation' }>): Promise<Result> {
    const entry: JournalEntry = {
      message_id: messageId,
      message_type: body.type,
      received_at: isoAt(deps.clock.now()),
      transport: 'webhook',
      subscription: body.subscription,
    };
    if (body.type === 'notification') {
      if (body.event !== undefined) entry.event = body.event;
      if (body.events !== undefined) entry.events = body.events;
      return intake.store(entry).then(notificationResult);
    }
    return intake.store(entry).then((stored) => (stored === 'stored' ? ACCEPTED.revocation : notificationResult(stored)));
  }

  /** The fast path's accept: the record is assembled from the verified bytes (the same record `accept` writes). */
  function acceptPrepared(messageId: string, body: Buffer, spans: NotificationSpans): Promise<Result> {
    const prepared = new PreparedWebhookNotification(messageId, isoAt(deps.clock.now()), body, spans);
    return intake.storePrepared(prepared).then(notificationResult);
  }

  function notify(call: () => unknown, name: string): void {
    try {
      const r = call();
      if (r instanceof Promise) r.catch((err: unknown) => logger.error(`${name} callback failed`, { err }));
    } catch (err) {
      logger.error(`${name} callback failed`, { err });
    }
  }

  const finish = (result: Result): ReceiverResponse => {
    try {
      deps.metrics?.outcome(result.outcome);
    } catch (err) {
      logger.error('Receiver metrics failed', { err });
    }
    return result.response;
  };
  return (req) => {
    let result: Result | Promise<Result>;
    try {
      result = handle(req);
    } catch (err) {
      result = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (!(result instanceof Promise)) return finish(result);
    return result.then(finish, (err: unknown) => {
      logger.error('Webhook handler failed', { err, path: req.path });
      return finish(reject('internal_error', 500, 'internal error'));
    });
  };
}

const routeResult = (response: ReceiverResponse): Result => ({ outcome: 'route', response });

/**
 * A notification serialised by the fast path: the record's JSON after `{"seq":N,`, in the field order
 * `accept` gives the slow path's entry (message_id, message_type, received_at, transport, subscription with
 * id, type, version, condition, status; then event, events), with `condition`, `event` and `events` copied
 * from the verified body as they were sent.
 */
class PreparedWebhookNotification implements PreparedNotification {
  readonly message_id: string;
  readonly received_at: string;
  readonly subscription: ReceivedSubscription;
  readonly tail: Buffer;
  /** Where `event` lies in `tail` (start 0: none). */
  readonly #eventStart: number = 0;
  readonly #eventEnd: number = 0;

  constructor(messageId: string, receivedAt: string, body: Buffer, spans: NotificationSpans) {
    this.message_id = messageId;
    this.received_at = receivedAt;
    const sub = (this.subscription = spans.subscription);
    const head =
      `"message_id":${JSON.stringify(messageId)},"message_type":"notification","received_at":"${receivedAt}","transport":"webhook",` +
      `"subscription":{"id":${JSON.stringify(sub.id)},"type":${JSON.stringify(sub.type)},"version":${JSON.stringify(sub.version)},"condition":`;
    const close = sub.status === undefined ? '}' : `,"status":${JSON.stringify(sub.status)}}`;
    const [c0, c1] = spans.condition;
    const headBytes = Buffer.byteLength(head);
    const closeBytes = Buffer.byteLength(close);
    let length = headBytes + (c1 - c0) + closeBytes + 1;
    if (spans.event) length += EVENT_KEY.length + spans.event[1] - spans.event[0];
    if (spans.events) length += EVENTS_KEY.length + spans.events[1] - spans.events[0];
    const tail = (this.tail = Buffer.allocUnsafe(length));
    let at = tail.write(head, 0, 'utf8');
    at += body.copy(tail, at, c0, c1);
    at += tail.write(close, at, 'utf8');
    if (spans.event) {
      at += tail.write(EVENT_KEY, at, 'latin1');
      this.#eventStart = at;
      at += body.copy(tail, at, spans.event[0], spans.event[1]);
      this.#eventEnd = at;
    }
    if (spans.events) {
      at += tail.write(EVENTS_KEY, at, 'latin1');
      at += body.copy(tail, at, spans.events[0], spans.events[1]);
    }
    tail[at] = 0x7d; // }
  }

  event(): unknown {
    return this.#eventStart === 0 ? undefined : JSON.parse(this.tail.toString('utf8', this.#eventStart, this.#eventEnd));
  }
}
const EVENT_KEY = ',"event":';
const EVENTS_KEY = ',"events":';
