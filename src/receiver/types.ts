/**
 * The receiver's seams: the transport-free request/response pair the handler works on, and the journal
 * interface it appends to (implemented by `src/journal/`, which the receiver never imports).
 */

/** One HTTP request, already read in full by the adapter. Header names are lower-case. */
export interface ReceiverRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  /** A header sent more than once is an array (the adapter uses `headersDistinct`). */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body bytes, never re-serialised: the HMAC is over them (https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message). */
  body: Buffer;
}

/** What to answer. The adapter adds `Content-Length`. */
export interface ReceiverResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** The subscription as recorded in the journal: only what identifies it, plus its status. */
export interface ReceivedSubscription {
  id: string;
  type: string;
  version: string;
  condition: Record<string, unknown>;
  status?: string;
}

/** One accepted notification or revocation, as handed to the journal (README.md "The journal"). */
export interface JournalEntry {
  message_id: string;
  message_type: 'notification' | 'revocation';
  /** ISO 8601 (ms), the receiver's clock when the request was handled. */
  received_at: string;
  /** What brought it: a webhook request, or a conduit's WebSocket shard (then `shard` is the shard id). */
  transport?: 'webhook' | 'conduit';
  shard?: string;
  subscription: ReceivedSubscription;
  event?: unknown;
  /** Batched deliveries (`drop.entitlement.grant`), journaled as sent. */
  events?: unknown[];
}

/** Durable append: resolves only once the entry is on disk; rejects when it could not be stored. */
export interface JournalSink {
  /** Resolves once durable; with `undefined` when the store's shared de-duplication already holds the message id (another replica stored it). */
  append(entry: JournalEntry): Promise<{ seq: number } | undefined>;
  /**
   * The receiver's fast path, for a store that takes a record already serialised (the file journal):
   * `tail` is the record's JSON after `{"seq":N,`. Resolves with the seq once durable.
   */
  appendPrepared?(tail: Buffer, receivedAt: string): Promise<number>;
}

/** A notification the fast path serialised itself (fast-body.ts), for `Intake.storePrepared`. */
export interface PreparedNotification {
  message_id: string;
  received_at: string;
  subscription: ReceivedSubscription;
  /** The record's JSON after `{"seq":N,`, UTF-8, as `JournalSink.appendPrepared` takes it. */
  tail: Buffer;
  /** The notification's `event`, parsed when a callback asks for it. */
  event(): unknown;
}

/** The `conduit_shard` of a conduit webhook shard's challenge (https://dev.twitch.tv/docs/eventsub/handling-conduit-events/). */
export interface ConduitShardRef {
  conduit_id: string;
  shard: string;
}

/** Every outcome the handler and the adapter report to `metrics.outcome()`. */
export const RECEIVER_OUTCOMES = [
  'challenge',
  'notification',
  'revocation',
  'duplicate',
  'journal_failed',
  'bad_signature',
  'bad_request',
  'stale',
  'future',
  'unknown_type',
  'closing',
  'not_found',
  'method_not_allowed',
  'route',
  'internal_error',
  'too_large',
  'busy',
  'aborted',
  'too_slow',
] as const;
export type ReceiverOutcome = (typeof RECEIVER_OUTCOMES)[number];

/** Counts requests by outcome (the daemon exports them on `/metrics`). */
export interface ReceiverMetrics {
  outcome(name: ReceiverOutcome): void;
}
