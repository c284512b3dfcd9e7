/**
 * Twitch's wire shapes (snake_case), validated with zod at the edge. Objects are `.loose()`: Twitch adds
 * fields without notice (https://dev.twitch.tv/docs/api/guide/, "Non-breaking changes"), so extra keys pass
 * through untouched.
 */
import { z } from 'zod';

/** POST /oauth2/token (client credentials) 200. `refresh_token`/`scope` of older answers are ignored. */
export const TokenResponse = z
  .object({
    access_token: z.string().min(1),
    expires_in: z.number().int().nonnegative(),
    token_type: z.string().optional(),
  })
  .loose();
export type TokenResponse = z.infer<typeof TokenResponse>;

/** GET /oauth2/validate 200. `scopes` may be null (twitchdev/issues#1145); `user_id` present ⇒ user token. */
export const ValidateResponse = z
  .object({
    client_id: z.string(),
    login: z.string().nullish(),
    user_id: z.string().nullish(),
    scopes: z
      .array(z.string())
      .nullish()
      .transform((s) => s ?? []),
    expires_in: z.number().int().nonnegative(),
  })
  .loose();
export type ValidateResponse = z.infer<typeof ValidateResponse>;

/** Scopes as Twitch sends them: an array, a space-separated string, null or absent (answers vary). */
const Scopes = z
  .union([z.array(z.string()), z.string()])
  .nullish()
  .transform((s) => (s === null || s === undefined ? [] : Array.isArray(s) ? s : s.split(' ')).filter((x) => x.length > 0));

/**
 * POST /oauth2/token for a user (authorization code or device code) 200
 * (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#authorization-code-grant-flow).
 */
export const UserTokenResponse = z
  .object({
    access_token: z.string().min(1),
    expires_in: z.number().int().nonnegative().optional(),
    refresh_token: z.string().optional(),
    scope: Scopes,
    token_type: z.string().optional(),
  })
  .loose();
export type UserTokenResponse = z.infer<typeof UserTokenResponse>;

/** POST /oauth2/device 200 (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#device-code-grant-flow). */
export const DeviceCodeResponse = z
  .object({
    device_code: z.string().min(1),
    expires_in: z.number().int().positive(),
    interval: z.number().int().nonnegative(),
    user_code: z.string().min(1),
    verification_uri: z.string().min(1),
  })
  .loose();
export type DeviceCodeResponse = z.infer<typeof DeviceCodeResponse>;

/** GET /helix/authorization/users 200 (https://dev.twitch.tv/docs/api/reference/#get-user-authorization). */
export const UserAuthorizationPage = z
  .object({
    data: z.array(
      z
        .object({
          user_id: z.string().min(1),
          user_login: z.string().nullish(),
          user_name: z.string().nullish(),
          scopes: Scopes,
        })
        .loose(),
    ),
  })
  .loose();
export type UserAuthorization = z.infer<typeof UserAuthorizationPage>['data'][number];

/** Get Users (https://dev.twitch.tv/docs/api/reference/#get-users): the fields eventsubd shows. */
export const UserPage = z
  .object({
    data: z.array(
      z
        .object({
          id: z.string().min(1),
          login: z.string(),
          display_name: z.string(),
          type: z.string().optional(),
          broadcaster_type: z.string().optional(),
          created_at: z.string().optional(),
        })
        .loose(),
    ),
  })
  .loose();
export type HelixUser = z.infer<typeof UserPage>['data'][number];

/** Error bodies: OAuth `{status, message}`, Helix `{error, status, message}`. Both tolerated, both optional. */
export const ErrorBody = z
  .object({
    status: z.number().optional(),
    error: z.string().optional(),
    message: z.string().optional(),
  })
  .loose();

/** Condition values are strings on the wire; an open record. */
export const Condition = z.record(z.string(), z.string());
export type Condition = z.infer<typeof Condition>;

export const Transport = z
  .object({
    method: z.string(),
    callback: z.string().optional(),
    session_id: z.string().optional(),
    conduit_id: z.string().optional(),
    connected_at: z.string().optional(),
    disconnected_at: z.string().optional(),
  })
  .loose();
export type Transport = z.infer<typeof Transport>;

/**
 * Known statuses (https://dev.twitch.tv/docs/api/reference/#get-eventsub-subscriptions); parsed as an open
 * string so unknown values never crash the daemon.
 */
export const KNOWN_STATUSES = [
  'enabled',
  'webhook_callback_verification_pending',
  'webhook_callback_verification_failed',
  'notification_failures_exceeded',
  'authorization_revoked',
  'moderator_removed',
  'user_removed',
  'chat_user_banned',
  'version_removed',
  'beta_maintenance',
  'websocket_disconnected',
  'websocket_failed_ping_pong',
  'websocket_received_inbound_traffic',
  'websocket_connection_unused',
  'websocket_internal_error',
  'websocket_network_timeout',
  'websocket_network_error',
  'websocket_failed_to_reconnect',
  'conduit_deleted',
] as const;

export const Subscription = z
  .object({
    id: z.string(),
    status: z.string(),
    type: z.string(),
    version: z.string(),
    condition: z.record(z.string(), z.unknown()).transform(stringifyCondition),
    created_at: z.string(),
    transport: Transport,
    cost: z.number().default(0),
  })
  .loose();
export type Subscription = z.infer<typeof Subscription>;

/** GET /eventsub/subscriptions 200. `pagination` is `{}` on the last page. */
export const SubscriptionPage = z
  .object({
    data: z.array(Subscription),
    total: z.number().optional(),
    total_cost: z.number().optional(),
    max_total_cost: z.number().optional(),
    pagination: z.object({ cursor: z.string().optional() }).loose().optional(),
  })
  .loose();
export type SubscriptionPage = z.infer<typeof SubscriptionPage>;

/** POST /eventsub/subscriptions 202: `data` holds exactly the created subscription. */
export const CreateResponse = z
  .object({
    data: z.array(Subscription).min(1),
    total: z.number().optional(),
    total_cost: z.number().optional(),
    max_total_cost: z.number().optional(),
  })
  .loose();
export type CreateResponse = z.infer<typeof CreateResponse>;

/** The body of a create request. `transport.secret` never leaves this process except to Twitch. */
export interface CreateSubscriptionBody {
  type: string;
  version: string;
  condition: Condition;
  transport: { method: 'webhook'; callback: string; secret: string } | { method: 'conduit'; conduit_id: string };
  is_batching_enabled?: boolean;
}

/**
 * Twitch sends condition values as strings, but some optional keys arrive as `null` or `""` (e.g.
 * `reward_id`). Normalise to a string map without the empty ones so conditions compare by value.
 */
function stringifyCondition(raw: Record<string, unknown>): Condition {
  const out: Condition = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === null || v === undefined || v === '') continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

/**
 * A conduit as Get/Create/Update Conduits answer it (https://dev.twitch.tv/docs/api/reference/#get-conduits).
 */
export const Conduit = z
  .object({
    id: z.string().min(1),
    shard_count: z.number().int().nonnegative(),
  })
  .loose();
export type Conduit = z.infer<typeof Conduit>;

/** GET, POST and PATCH /eventsub/conduits 200: `data` holds the conduits (exactly one for POST and PATCH). */
export const ConduitPage = z.object({ data: z.array(Conduit) }).loose();

/**
 * A shard's transport. Every field is optional: a shard never assigned has an empty transport, a webhook shard
 * has `callback` (never the secret), a WebSocket shard `session_id`, `connected_at` and, once it dropped,
 * `disconnected_at` (twitch-contract 6.2 and 6.3).
 */
export const ShardTransport = z
  .object({
    method: z.string().optional(),
    callback: z.string().optional(),
    session_id: z.string().optional(),
    connected_at: z.string().optional(),
    disconnected_at: z.string().optional(),
  })
  .loose();

/** One shard (https://dev.twitch.tv/docs/api/reference/#get-conduit-shards); `status` is an open string (6.3). */
export const Shard = z
  .object({
    id: z.string().min(1),
    status: z.string(),
    transport: ShardTransport.optional(),
  })
  .loose();
export type Shard = z.infer<typeof Shard>;

/** GET /eventsub/conduits/shards 200, one page. `pagination` is `{}` on the last page. */
export const ShardPage = z
  .object({
    data: z.array(Shard),
    pagination: z.object({ cursor: z.string().optional() }).loose().optional(),
  })
  .loose();

/** A per-shard failure of Update Conduit Shards (contract 6.2): the other shards of the request were applied. */
export const ShardError = z
  .object({
    id: z.string(),
    message: z.string(),
    code: z.string().default(''),
  })
  .loose();
export type ShardError = z.infer<typeof ShardError>;

/** PATCH /eventsub/conduits/shards 202 (https://dev.twitch.tv/docs/api/reference/#update-conduit-shards). */
export const ShardUpdateResponse = z
  .object({
    data: z.array(Shard),
    errors: z
      .array(ShardError)
      .nullish()
      .transform((e) => e ?? []),
  })
  .loose();
