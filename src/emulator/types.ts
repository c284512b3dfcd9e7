/**
 * The emulator's public types. The shapes are a contract with the demo, the CLI (`eventsubd emulate`) and
 * every integration test: change them only together with those users.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { SentMessage } from './conduits.js';
import type { SendEventsOptions } from './send-events.js';
import type { WsReconnectInfo, WsSessionInfo } from './ws-control.js';
import type { WsSessions } from './ws-sessions.js';

/** A registered Twitch application. */
export interface EmulatorClient {
  clientId: string;
  clientSecret: string;
  /**
   * The app's registered OAuth Redirect URLs (at most 10), compared character for character. Default
   * `['http://localhost:3000']`, the default of TWITCH_REDIRECT_URL and twitch-cli.
   */
  redirectUris?: string[];
}

export interface EmulatorOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (a random free port). */
  port?: number;
  /** Default systemClock; used for token expiry, the rate-limit bucket and timestamps. */
  clock?: Clock;
  /** Default: one generated client (30 lowercase alphanumerics id, 30 character secret). */
  clients?: Partial<EmulatorClient>[];
  /** Lifetime of minted and registered tokens, in seconds. Default 5_011_271 (~58 days, the docs' example). */
  tokenTtlSeconds?: number;
  /** Helix points per client: `limit` points refilled continuously over `windowMs`. Default 800 per 60_000 ms. */
  bucket?: { limit: number; windowMs: number };
  /** Subscriptions per page of GET /eventsub/subscriptions. Default 100. */
  pageSize?: number;
  /** `max_total_cost` of every client (app token). Default 10_000. */
  maxTotalCost?: number;
  /**
   * Loopback origin such as 'http://127.0.0.1:8080': webhook callbacks are POSTed there instead of the public
   * https callback, keeping the callback's path and query. Anything but a loopback origin is refused.
   */
  deliverTo?: string;
  /**
   * What happens after a webhook create is answered: 'deliver' sends the signed challenge to `deliverTo`;
   * 'accept' marks the subscription enabled without sending; 'reject' marks it
   * webhook_callback_verification_failed. Default: 'deliver' when `deliverTo` is set, else 'accept'.
   */
  verification?: 'deliver' | 'accept' | 'reject';
  /** For outbound webhook deliveries; undici's global dispatcher when absent. */
  dispatcher?: Dispatcher;
  /**
   * Keeps the state (clients, tokens, grants, consents, subscriptions, registered users) in this file: loaded
   * at start when it exists, rewritten atomically after each change. The clients of `clients` win over the
   * file's clients of the same ID; without `clients`, the file's clients are used (one is generated when it
   * has none). A corrupt file is a ConfigError naming --state.
   */
  stateFile?: string;
  /**
   * The EventSub WebSocket sessions (eventsub-ws.ts) conduit shards may be assigned to. Without it, every
   * session id is unknown: a websocket shard update answers "The websocket session is not connected".
   */
  wsSessions?: WsSessions;
  /**
   * Whether the welcome on a `session_reconnect`'s URL carries a new session id (default true, as twitch-cli's
   * mock; Twitch's docs leave it open). A reconnect request can override it. See EventSubWsOptions.
   */
  reconnectNewSessionId?: boolean;
  /** Each request is logged at debug level (method, path without query, status, ms). */
  logger?: Logger;
}

/** A subscription as Twitch shows it on the wire (the secret is never part of it). */
export interface WireSubscription {
  id: string;
  status: string;
  type: string;
  version: string;
  condition: Record<string, string>;
  created_at: string;
  transport: { method: 'webhook'; callback: string; conduit_id?: never } | { method: 'conduit'; conduit_id: string; callback?: never };
  cost: number;
}

/** Which requests a fault applies to. Paths are compared after aliases are resolved (`/auth/token` is `/oauth2/token`). */
export interface FaultMatch {
  /** HTTP method, case-insensitive. Any method when absent. */
  method?: string;
  /** E.g. '/oauth2/token' or '/helix/eventsub/subscriptions'. Default: every /helix request. */
  pathPrefix?: string;
}

/**
 * A scripted misbehaviour. Faults are queued; a request takes the first matching fault, and each request
 * consumes one of its `times` (default 1). Control endpoints (`/_emulator/*`) are never faulted.
 */
export type Fault =
  /** Answer `status` (and `body`, default a Twitch-style error body) instead of handling the request. */
  | { kind: 'status'; status: number; body?: unknown; match?: FaultMatch; times?: number }
  /** Wait `ms` on the emulator's clock, then handle normally. */
  | { kind: 'latency'; ms: number; match?: FaultMatch; times?: number }
  /** Destroy the socket before handling: nothing happened. */
  | { kind: 'reset'; match?: FaultMatch; times?: number }
  /** Handle the request fully (a create happens), then destroy the socket without answering. */
  | { kind: 'drop-response'; match?: FaultMatch; times?: number }
  /** Expire the presented token just before handling, so the request gets 401. */
  | { kind: 'expire-token'; match?: FaultMatch; times?: number };

/** One request seen by the emulator. `status` is 0 when no answer was sent (reset, drop-response). */
export interface RequestRecord {
  method: string;
  /** The path as requested, without the query string (which may hold a client secret). */
  path: string;
  status: number;
  /** The kind of the token presented in `Authorization`, judged just before handling. */
  auth: 'app' | 'user' | 'none' | 'invalid';
}

/** Live counters. Control requests (`/_emulator/*`) are not counted. */
export interface EmulatorStats {
  /** Tokens minted by successful client-credentials grants. */
  mints: number;
  /** Requests to /oauth2/validate (any outcome). */
  validations: number;
  /** Successful revocations. */
  revocations: number;
  helix: {
    total: number;
    /** Keyed by status code as a string ('0' = no answer). */
    byStatus: Record<string, number>;
    byMethod: Record<string, number>;
    /** 429s caused by an empty bucket (not the 3-per-condition 429). */
    rateLimited: number;
  };
  /** webhook_callback_verification requests sent. */
  verificationsSent: number;
  /** Events for conduit subscriptions dropped: their shard and the one retried were not enabled. */
  conduitDropped: number;
  /** Messages for conduit subscriptions sent to a shard (a WebSocket frame queued, or a webhook shard's POST started). */
  conduitSent: number;
  /** Every request, in order. */
  requests: RequestRecord[];
}

export interface Emulator {
  /** 'http://127.0.0.1:PORT' */
  readonly url: string;
  /** `url` + '/oauth2' */
  readonly authUrl: string;
  /** `url` + '/helix' */
  readonly apiUrl: string;
  readonly clients: readonly EmulatorClient[];
  /** Registers a client; missing fields are generated. @throws Error when the client ID is taken. */
  addClient(client?: Partial<EmulatorClient>): EmulatorClient;
  /**
   * Every user token issued (by the flows or registerUserToken), oldest first, with whether Twitch would still
   * accept it (`valid` false once revoked, expired by hand or past its lifetime). For tests that check a token was revoked.
   */
  userTokens(clientId?: string): { token: string; user_id: string; login: string; scopes: string[]; valid: boolean }[];
  /** Registers one more OAuth Redirect URL for a client (default the first). @throws Error past 10, or for a bad URL. */
  addRedirectUri(uri: string, clientId?: string): void;
  /**
   * Registers a user access token (as if the user authorized the client) and returns its value. The user
   * counts as having authorized the client from then on: subscriptions naming them cost 0.
   * `clientId` defaults to the first client. @throws Error when the client is unknown.
   */
  registerUserToken(init: { clientId?: string; userId: string; login?: string; scopes?: string[] }): string;
  /**
   * Who consents at the authorize page (and at /activate) from now on: a user, with at most `scopes` when set
   * (they may grant fewer than asked), or `decision: 'deny'`; undefined clears it. `clientId` defaults to the
   * first client.
   */
  setConsent(
    consent:
      | { clientId?: string; userId: string; login?: string; scopes?: string[]; decision?: 'allow' }
      | { clientId?: string; decision: 'deny' }
      | undefined,
  ): void;
  /** Answers an open device code as the user would at twitch.tv/activate. @throws Error when no such code is open. */
  approveDevice(userCode: string, decision: { userId: string; login?: string } | 'deny'): void;
  /**
   * The user disconnects the app: the grant is withdrawn, the subscriptions that needed it are revoked
   * (`authorization_revoked`, revocation sent) and `user.authorization.revoke` goes out. Returns the ids revoked.
   */
  disconnectUser(userId: string, clientId?: string): string[];
  /**
   * Adds a user to the directory `GET /helix/users` answers from (or renames one), besides the users who
   * granted, consent or hold a user token. The login is stored in lower case.
   */
  registerUser(user: { id: string; login: string; display_name?: string }): void;
  /** Every user of the directory. */
  users(): Array<{ id: string; login: string; display_name: string }>;
  /** The grants to a client (default the first), as Get User Authorization would show them. */
  grants(clientId?: string): Array<{ user_id: string; login: string; scopes: string[] }>;
  /** The token becomes invalid: /validate answers 401, Helix 401. Unknown values are ignored. */
  expireToken(value: string): void;
  expireAllTokens(): void;
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /** A snapshot of the subscriptions (of one client, or all), oldest first. */
  subscriptions(clientId?: string): WireSubscription[];
  /** Sets a subscription's status (no message is sent). @throws Error when the id is unknown. */
  setSubscriptionStatus(id: string, status: string): void;
  /**
   * Sends `event` for a conduit subscription to the shard its broadcaster hashes to (one retry on another shard
   * when that one is not enabled). Returns the shard id, or undefined when dropped (`stats.conduitDropped`).
   * @throws Error when the id is unknown or not a conduit subscription.
   */
  deliverToConduit(subscriptionId: string, event: Record<string, unknown>): string | undefined;
  /**
   * Sends `count` notifications (default 1; the event default the catalogue's example with the condition filled
   * in) or one revocation to an enabled subscription of either transport: a webhook gets the signed POST (needs
   * `deliverTo`), a conduit subscription a frame on its shard. Returns one entry per message, in order: its
   * `message_id`, and the `shard` it went to or `dropped: true` (conduit only).
   * @throws EmulatorRequestError (`status` 404 unknown id, 409 not enabled or no deliverTo); RangeError for a bad count.
   */
  sendEvents(subscriptionId: string, options?: SendEventsOptions): SentMessage[];
  /** Every conduit of every client, with its shards as Get Conduit Shards shows them. */
  conduits(): Array<{ id: string; client_id: string; shard_count: number; shards: unknown[] }>;
  /** Every EventSub WebSocket session on `/ws` the emulator remembers, with the shard assigned to each. */
  wsSessions(): WsSessionInfo[];
  /**
   * `session_reconnect` to one session (or every connected one): the old socket is closed with 4004 `graceMs`
   * later (default 30 000) if the client has not left it; `newSessionId` overrides `reconnectNewSessionId`.
   * @throws EmulatorRequestError 404 unknown, 409 not connected (one session only).
   */
  reconnectWs(sessionId?: string, options?: { graceMs?: number; newSessionId?: boolean }): WsReconnectInfo[];
  /** Closes a session with a close code 4000-4007. @throws EmulatorRequestError 404 / 409; RangeError for another code. */
  closeWs(sessionId: string, code: number): void;
  /** Drops a session's TCP connection without a close frame. @throws EmulatorRequestError 404 / 409. */
  terminateWs(sessionId: string): void;
  /** Live counters (the same object keeps updating). */
  readonly stats: EmulatorStats;
  resetStats(): void;
  /** Stops listening, aborts pending deliveries and latency faults, writes the state file last. Idempotent. */
  close(): Promise<void>;
}
