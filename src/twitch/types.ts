/**
 * The seams between layers. `twitch/` asks for a `TokenSource` and never imports `auth/`; `subscriptions/`
 * asks for an `EventSubApi` and never constructs a client. Only the composition root builds concrete classes.
 */
import type { AppToken } from './tokens.js';
import type { Conduit, CreateSubscriptionBody, Shard, ShardError, Subscription, UserAuthorization, ValidateResponse } from './wire.js';

/** Where the Helix client gets its app token. Implemented by auth/TokenManager. */
export interface TokenSource {
  /** A usable app token: from memory, the cache (validated) or a fresh mint. */
  getToken(signal?: AbortSignal): Promise<AppToken>;
  /**
   * Helix answered 401 to a request made with `rejected`. Returns the token to retry with. If `rejected`
   * is still the current token, exactly one re-mint runs however many callers arrive (single flight);
   * if it was already replaced, the current one is returned without minting.
   * @throws AppError when no replacement can be had (e.g. TOKEN_INVALID for a supplied token).
   */
  tokenRejected(rejected: AppToken, signal?: AbortSignal): Promise<AppToken>;
}

/**
 * The OAuth endpoints of id.twitch.tv (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#client-credentials-grant-flow,
 * https://dev.twitch.tv/docs/authentication/validate-tokens/, https://dev.twitch.tv/docs/authentication/revoke-tokens/).
 */
export interface OAuthApi {
  /**
   * Client-credentials grant.
   * @throws TwitchAuthError (TWITCH_AUTH_FAILED) on 400/403; TwitchHttpError / TwitchUnreachableError otherwise.
   */
  mint(signal?: AbortSignal): Promise<AppToken>;
  /** `GET /validate`. Resolves `null` when Twitch answers 401 (the token is dead). */
  validate(tokenValue: string, signal?: AbortSignal): Promise<ValidateResponse | null>;
  /** `POST /revoke`. A 400 "Invalid token" (already dead) resolves quietly. */
  revoke(tokenValue: string, signal?: AbortSignal): Promise<void>;
}

/**
 * Exactly one of Twitch's list filters, or none: more than one is a 400 from Twitch
 * (https://dev.twitch.tv/docs/api/reference/#get-eventsub-subscriptions).
 */
export type ListFilter =
  | { status: string }
  | { type: string }
  | { user_id: string }
  | { subscription_id: string }
  | Record<string, never>;

export interface ListResult {
  subscriptions: Subscription[];
  totalCost: number | undefined;
  maxTotalCost: number | undefined;
  /** Number of GET requests it took. */
  pages: number;
}

export interface CreateResult {
  subscription: Subscription;
  /** True when Twitch answered 409 and the existing subscription was found and adopted. */
  adopted: boolean;
  totalCost: number | undefined;
  maxTotalCost: number | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

/** Get User Authorization, app token (https://dev.twitch.tv/docs/api/reference/#get-user-authorization). */
export interface UserAuthorizationApi {
  /** What each of `userIds` has granted the client (all grants together); a user who granted nothing is absent. */
  userAuthorizations(userIds: readonly string[], options?: CallOptions): Promise<UserAuthorization[]>;
}

/** Helix `/eventsub/subscriptions`, app token only. */
export interface EventSubApi {
  /** Creates; a 409 is resolved by finding the existing twin and adopting it. */
  create(body: CreateSubscriptionBody, options?: CallOptions): Promise<CreateResult>;
  /** Every page of one filter. */
  list(filter?: ListFilter, options?: CallOptions): Promise<ListResult>;
  /** Deletes by id. @throws AppError SUBSCRIPTION_NOT_FOUND on 404. */
  delete(id: string, options?: CallOptions): Promise<void>;
}

/** A WebSocket shard assignment: shard `id` ("0" … shard_count-1) to the session of a `session_welcome`. */
export interface ShardAssignment {
  id: string;
  sessionId: string;
}

/** The 202 of Update Conduit Shards: the shards applied, and one entry per shard Twitch refused. */
export interface ShardUpdateResult {
  data: Shard[];
  errors: ShardError[];
}

/**
 * Helix `/eventsub/conduits` and `/eventsub/conduits/shards`, app token only (twitch-contract section 6,
 * https://dev.twitch.tv/docs/api/reference/#get-conduits and its neighbours). A conduit that does not exist,
 * or is another client's, is AppError CONDUIT_NOT_FOUND on every call that names one.
 */
export interface ConduitApi {
  /** This client's conduits. */
  listConduits(options?: CallOptions): Promise<Conduit[]>;
  /** @throws AppError CONDUIT_LIMIT_REACHED when the client already has 5 conduits. */
  createConduit(shardCount: number, options?: CallOptions): Promise<Conduit>;
  /** Sets `shard_count`: lowering it disables the shards above the new count. */
  updateConduit(id: string, shardCount: number, options?: CallOptions): Promise<Conduit>;
  deleteConduit(id: string, options?: CallOptions): Promise<void>;
  /** Every page of the conduit's shards, optionally only those with `status`. */
  listShards(conduitId: string, filter?: { status?: string | undefined }, options?: CallOptions): Promise<Shard[]>;
  /** Assigns WebSocket sessions to shards; a refused shard is in `errors`, not thrown. */
  updateShards(conduitId: string, shards: readonly ShardAssignment[], options?: CallOptions): Promise<ShardUpdateResult>;
}
