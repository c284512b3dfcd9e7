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
import { Intake } from './intake.js';
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
const SIGNATURE_SHAPE = /^sha256=[0-9a-f]{64}$/;

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
  /** Called after a new notification was journaled (the daemon watches `user.authorization.*`). Errors are logged. */
  onNotification?: (subscription: ReceivedSubscription, event: unknown) => void;
  /** Called for every valid challenge; `subscription` is absent for a conduit shard's challenge. */
  onVerification?: (subscription: ReceivedSubscription | undefined, conduitShard?: ConduitShardRef) => void;
  /** GET/HEAD routes other than the webhook path (`/healthz`, `/readyz`, `/status`, `/metrics`). */
  routes?: Record<string, () => ReceiverResponse | Promise<ReceiverResponse>>;
  /** True once shutdown began: webhook requests then get 503 + `Connection: close`. */
  isClosing?: () => boolean;
  metrics?: ReceiverMetrics;
  logger?: Logger;
}

export type WebhookHandler = (req: ReceiverRequest) => Promise<ReceiverResponse>;

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
const accepted = (outcome: ReceiverOutcome): Result => ({ outcome, response: { status: 204 } });

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

  async function handle(req: ReceiverRequest): Promise<Result> {
    if (req.path !== deps.webhookPath) return routeRequest(req);
    if (req.method !== 'POST') return reject('method_not_allowed', 405, 'method not allowed', { Allow: 'POST' });
    if (deps.isClosing?.()) return reject('closing', 503, 'shutting down', { Connection: 'close' });

    const headers = readRequiredHeaders(req.headers);
    if ('invalid' in headers) return reject('bad_request', 400, `missing or invalid header ${headers.invalid}`);
    const signature = readSignatureHeader(req.headers);
    if (signature === undefined || !SIGNATURE_SHAPE.test(signature)) {
      return reject('bad_signature', 403, 'invalid signature');
    }
    const secrets = deps.secrets().filter((s) => s.length > 0);
    if (!verifySignature(secrets, headers.messageId, headers.timestamp, req.body, signature)) {
      return reject('bad_signature', 403, 'invalid signature');
    }
    // Only an authenticated body is parsed. An unknown type is answered 400 after the timestamp check.
    const body = parseBody(headers.messageType, req.body);
    if (body === undefined) return reject('bad_request', 400, 'invalid body');

    const sentAt = parseRfc3339(headers.timestamp);
    if (sentAt === undefined) return reject('bad_request', 400, 'invalid timestamp');
    const skew = deps.clock.now() - sentAt;
    if (Math.abs(skew) > windowMs) {
      // Logged with the measured skew, so a drifting clock shows up instead of silently dropping messages.
      logger.warn('Rejected a webhook message outside the replay window', { message_id: headers.messageId, skew_ms: skew });
      return skew > 0 ? reject('stale', 403, 'message too old') : reject('future', 403, 'message timestamp in the future');
    }

    if (body.type === 'unknown') return reject('unknown_type', 400, 'unknown message type');
    if (body.type === 'webhook_callback_verification') return challenge(body);
    return accept(headers.messageId, body);
  }

  async function routeRequest(req: ReceiverRequest): Promise<Result> {
    const route = routes.get(req.path);
    if (!route) return reject('not_found', 404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reject('method_not_allowed', 405, 'method not allowed', { Allow: 'GET, HEAD' });
    }
    return { outcome: 'route', response: await route() };
  }

  function challenge(body: Extract<ParsedBody, { type: 'webhook_callback_verification' }>): Result {
    notify(() => deps.onVerification?.(body.subscription, body.conduitShard), 'onVerification');
    // The raw challenge, no JSON quoting, text/plain
    // (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request).
    return { outcome: 'challenge', response: { status: 200, headers: { 'Content-Type': 'text/plain' }, body: body.challenge } };
  }

  async function accept(messageId: string, body: Extract<ParsedBody, { type: 'notification' | 'revocation' }>): Promise<Result> {
    const entry: JournalEntry = {
      message_id: messageId,
      message_type: body.type,
      received_at: new Date(deps.clock.now()).toISOString(),
      transport: 'webhook',
      subscription: body.subscription,
    };
    if (body.type === 'notification') {
      if (body.event !== undefined) entry.event = body.event;
      if (body.events !== undefined) entry.events = body.events;
    }
    const stored = await intake.store(entry);
    // Answered 503 so that Twitch retries: the message is not lost, only late.
    if (stored === 'failed') return reject('journal_failed', 503, 'journal unavailable');
    if (stored === 'duplicate') return accepted('duplicate');
    return accepted(body.type === 'revocation' ? 'revocation' : 'notification');
  }

  function notify(call: () => unknown, name: string): void {
    try {
      const r = call();
      if (r instanceof Promise) r.catch((err: unknown) => logger.error(`${name} callback failed`, { err }));
    } catch (err) {
      logger.error(`${name} callback failed`, { err });
    }
  }

  return async (req) => {
    let result: Result;
    try {
      result = await handle(req);
    } catch (err) {
      logger.error('Webhook handler failed', { err, path: req.path });
      result = reject('internal_error', 500, 'internal error');
    }
    try {
      deps.metrics?.outcome(result.outcome);
    } catch (err) {
      logger.error('Receiver metrics failed', { err });
    }
    return result.response;
  };
}
