/**
 * Shared pieces for the receiver tests: an in-memory JournalSink (optionally failing or held), signed
 * requests in Twitch's format, the example bodies of twitch-contract.md 7.7, and a handler wired to fakes.
 */
import { Dedup } from '../../src/receiver/dedup.js';
import { createWebhookHandler, type WebhookHandlerDeps } from '../../src/receiver/handler.js';
import type { JournalEntry, JournalSink, ReceivedSubscription, ReceiverRequest } from '../../src/receiver/types.js';
import { signMessage } from '../../src/twitch/signature.js';
import { FakeClock } from '../helpers/fake-clock.js';

export const SECRET = 's3cRe7-this-is-a-test-secret';
export const OTHER_SECRET = 'another-secret-0123456789';
export const WEBHOOK_PATH = '/webhooks/callback';

/** An in-memory journal. `failing` makes appends reject; `hold()` keeps them pending until released. */
export class FakeJournal implements JournalSink {
  readonly entries: JournalEntry[] = [];
  calls = 0;
  failing = false;
  #held: Array<() => void> | undefined;

  async append(entry: JournalEntry): Promise<{ seq: number }> {
    this.calls += 1;
    if (this.#held) await new Promise<void>((resolve) => this.#held?.push(resolve));
    if (this.failing) throw new Error('disk full');
    this.entries.push(structuredClone(entry));
    return { seq: this.entries.length };
  }

  /** Holds every append from now on; the returned function releases them all (and stops holding). */
  hold(): () => void {
    this.#held = [];
    return () => {
      const waiting = this.#held ?? [];
      this.#held = undefined;
      for (const release of waiting) release();
    };
  }

  get waiting(): number {
    return this.#held?.length ?? 0;
  }
}

/** RFC 3339 with nanoseconds, deterministic: the ms from the clock plus `123456`. */
export function nanoTimestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/Z$/, '123456Z');
}

export const SUB_STREAM_ONLINE = {
  id: 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4',
  type: 'stream.online',
  version: '1',
  status: 'enabled',
  cost: 0,
  condition: { broadcaster_user_id: '1337' },
  transport: { method: 'webhook', callback: 'https://example.com/webhooks/callback' },
  created_at: '2019-11-16T10:11:12.634234626Z',
};

export function notificationBody(eventId = '9001', sub: object = SUB_STREAM_ONLINE): string {
  return JSON.stringify({
    subscription: sub,
    event: { id: eventId, broadcaster_user_id: '1337', broadcaster_user_login: 'cool_user', type: 'live' },
  });
}

export const CHALLENGE = 'pogchamp-kappa-360noscope-vohiyo';

export function verificationBody(): string {
  return JSON.stringify({
    challenge: CHALLENGE,
    subscription: { ...SUB_STREAM_ONLINE, status: 'webhook_callback_verification_pending', cost: 1 },
  });
}

export function revocationBody(status = 'authorization_revoked'): string {
  return JSON.stringify({
    subscription: {
      id: 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4',
      status,
      type: 'channel.follow',
      version: '2',
      cost: 0,
      condition: { broadcaster_user_id: '12826', moderator_user_id: '12826' },
      transport: { method: 'webhook', callback: 'https://example.com/webhooks/callback' },
      created_at: '2019-11-16T10:11:12.634234626Z',
    },
  });
}

export interface SignedOptions {
  body: string | Buffer;
  type?: string;
  messageId?: string;
  timestamp?: string;
  secret?: string;
  /** Replaces the computed signature header (undefined value: header left out). */
  signature?: string | string[] | undefined;
  headers?: Record<string, string | string[] | undefined>;
  method?: string;
  path?: string;
}

let counter = 0;

/** A request signed the way Twitch signs it (contract 7.2). */
export function signedRequest(clock: { now(): number }, options: SignedOptions): ReceiverRequest {
  const messageId = options.messageId ?? `msg-${++counter}`;
  const timestamp = options.timestamp ?? nanoTimestamp(clock.now());
  const body = Buffer.from(options.body);
  const signature = 'signature' in options ? options.signature : signMessage(options.secret ?? SECRET, messageId, timestamp, body);
  return {
    method: options.method ?? 'POST',
    path: options.path ?? WEBHOOK_PATH,
    headers: {
      'content-type': 'application/json',
      'twitch-eventsub-message-id': messageId,
      'twitch-eventsub-message-timestamp': timestamp,
      'twitch-eventsub-message-type': options.type ?? 'notification',
      'twitch-eventsub-message-retry': '0',
      'twitch-eventsub-message-signature': signature,
      ...options.headers,
    },
    body,
  };
}

export function makeHandler(overrides: Partial<WebhookHandlerDeps> = {}) {
  const clock = new FakeClock();
  const journal = new FakeJournal();
  const dedup = new Dedup({ clock });
  const revoked: ReceivedSubscription[] = [];
  const verified: unknown[][] = [];
  const outcomes: string[] = [];
  const handler = createWebhookHandler({
    webhookPath: WEBHOOK_PATH,
    secrets: () => [SECRET],
    clock,
    journal,
    dedup,
    onRevocation: (sub) => revoked.push(sub),
    onVerification: (...args) => verified.push(args),
    metrics: { outcome: (name) => outcomes.push(name) },
    ...overrides,
  });
  return { handler, clock, journal, dedup, revoked, verified, outcomes };
}
