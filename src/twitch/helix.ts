/**
 * Helix `/eventsub/subscriptions` and `/eventsub/conduits` with an app token
 * (https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription and its Get and Delete neighbours,
 * https://dev.twitch.tv/docs/api/reference/#get-conduits and the conduit calls after it;
 * https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits): paced by the `Ratelimit-*` headers, one re-mint and
 * one retry on 401, waits out an empty bucket, retries 5xx and network failures with jittered backoff, and turns
 * a 409 on create into adoption of the existing twin.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../lib/clock.js';
import { AppError, TwitchBadResponseError, TwitchHttpError, TwitchUnreachableError, UsageError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/retry.js';
import { httpRequest, joinUrl, pathOf, twitchMessageOf, type HttpResult } from './http.js';
import { RateLimitPacer } from './pacer.js';
import type { AppToken } from './tokens.js';
import type {
  CallOptions,
  ConduitApi,
  CreateResult,
  EventSubApi,
  ListFilter,
  ListResult,
  ShardAssignment,
  ShardUpdateResult,
  TokenSource,
  UserAuthorizationApi,
} from './types.js';
import type { z } from 'zod';
import {
  ConduitPage,
  CreateResponse,
  ShardPage,
  ShardUpdateResponse,
  SubscriptionPage,
  UserAuthorizationPage,
  UserPage,
  type Conduit,
  type CreateSubscriptionBody,
  type HelixUser,
  type Shard,
  type Subscription,
  type UserAuthorization,
} from './wire.js';

export interface HelixCallInfo {
  method: string;
  /** Path without the query string. */
  path: string;
  status: number | 'error';
  durationMs: number;
}

export interface HelixEventSubClientOptions {
  /** Helix base, e.g. `https://api.twitch.tv/helix` (TWITCH_API_URL). */
  apiUrl: string;
  clientId: string;
  tokens: TokenSource;
  clock: Clock;
  logger?: Logger | undefined;
  dispatcher?: Dispatcher | undefined;
  /** In [0, 1), for backoff jitter. */
  random?: (() => number) | undefined;
  /** `attempts`: total tries for 5xx/network failures (default 5); backoff `baseMs` 500, capped at `maxMs` 10 000. */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number } | undefined;
  /** The rate-limit window (default 60 000 ms). */
  windowMs?: number | undefined;
  /** Per-request headers/body timeout in ms (default 10 000). */
  timeoutMs?: number | undefined;
  /** Called after every HTTP exchange, for metrics. */
  onCall?: ((info: HelixCallInfo) => void) | undefined;
}

interface HelixRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: URLSearchParams;
  /** Sent as JSON. */
  body?: object;
  signal: AbortSignal | undefined;
}

/** A listing page: `data`, and `pagination.cursor` while there is more. */
interface Paged {
  data: unknown[];
  pagination?: { cursor?: string | undefined } | undefined;
}

const SUBSCRIPTIONS = '/eventsub/subscriptions';
const CONDUITS = '/eventsub/conduits';
const SHARDS = '/eventsub/conduits/shards';
const USER_AUTHORIZATIONS = '/authorization/users';
const USERS = '/users';
/** How many empty-bucket 429s one call waits out before giving up with TWITCH_RATE_LIMITED. */
const RATE_LIMIT_RETRIES = 5;
const FILTER_KEYS = ['status', 'type', 'user_id', 'subscription_id'] as const;
const ADOPTABLE_STATUSES = new Set(['enabled', 'webhook_callback_verification_pending']);

/** `EventSubApi`, `ConduitApi` (and Get User Authorization) over undici. Accepts only `AppToken`s (through `TokenSource`). */
export class HelixEventSubClient implements EventSubApi, ConduitApi, UserAuthorizationApi {
  /** Shared by every call of this client; exposed for metrics. */
  readonly pacer: RateLimitPacer;
  readonly #o: HelixEventSubClientOptions;
  readonly #attempts: number;
  readonly #baseMs: number;
  readonly #maxMs: number;

  constructor(options: HelixEventSubClientOptions) {
    this.#o = { ...options };
    this.#attempts = Math.max(1, options.retry?.attempts ?? 5);
    this.#baseMs = options.retry?.baseMs ?? 500;
    this.#maxMs = options.retry?.maxMs ?? 10_000;
    this.pacer = new RateLimitPacer({ clock: options.clock, windowMs: options.windowMs });
  }

  /**
   * Creates a subscription. A 409 adopts the existing exact twin (same type, version, condition and
   * transport target, status enabled or pending).
   * @throws AppError SUBSCRIPTION_CONFLICT (409 without a twin), SUBSCRIPTION_LIMIT (429 with points left:
   *   three subscriptions of this type and condition exist, twitchdev/issues#958); TwitchHttpError on
   *   400/403 and other statuses; see `#send` for the rest.
   */
  async create(body: CreateSubscriptionBody, options: CallOptions = {}): Promise<CreateResult> {
    const signal = options.signal;
    const req: HelixRequest = { method: 'POST', path: SUBSCRIPTIONS, body, signal };
    const res = await this.#send(req);
    if (res.status === 200 || res.status === 202) {
      const parsed = CreateResponse.safeParse(res.body);
      if (!parsed.success || !parsed.data.data[0]) throw badShape(this.#path(req), req, res);
      const page = parsed.data;
      return { subscription: parsed.data.data[0], adopted: false, totalCost: page.total_cost, maxTotalCost: page.max_total_cost };
    }
    const message = twitchMessageOf(res, secretsOf(body));
    if (res.status === 409) return this.#adopt(body, message, signal);
    if (res.status === 429) {
      throw new AppError('SUBSCRIPTION_LIMIT', `Cannot create ${body.type} v${body.version}: 429 ${message}`);
    }
    // A user named in the condition has not authorized this client with the type's scopes.
    if (res.status === 403 && /missing proper authorization/i.test(message)) {
      throw new AppError('AUTHORIZATION_MISSING', `Cannot create ${body.type} v${body.version}: 403 ${message}`);
    }
    throw httpError(this.#path(req), req, res, message);
  }

  /**
   * Lists every page for at most one filter, following `pagination.cursor` with `after`.
   * @throws UsageError when more than one filter (or an unknown one) is given; TwitchBadResponseError when
   *   a page does not match the documented shape; TwitchHttpError on a non-200.
   */
  async list(filter: ListFilter = {}, options: CallOptions = {}): Promise<ListResult> {
    const subscriptions: Subscription[] = [];
    let last: SubscriptionPage | undefined;
    let pages = 0;
    for await (const page of this.#pages({ path: SUBSCRIPTIONS, schema: SubscriptionPage, query: filterQuery(filter), signal: options.signal })) {
      subscriptions.push(...page.data);
      last = page;
      pages += 1;
    }
    return { subscriptions, totalCost: last?.total_cost, maxTotalCost: last?.max_total_cost, pages };
  }

  /**
   * Yields each validated page of a listing of `path`, following `pagination.cursor` with `after`. A 404 is
   * CONDUIT_NOT_FOUND when the listing is of `conduitId`'s shards.
   */
  async *#pages<P extends Paged>(listing: {
    path: string;
    schema: z.ZodType<P>;
    query: URLSearchParams;
    signal: AbortSignal | undefined;
    conduitId?: string;
  }): AsyncGenerator<P> {
    const { path, schema, signal, conduitId } = listing;
    const seen = new Set<string>();
    for (let cursor: string | undefined; ; ) {
      const query = new URLSearchParams(listing.query);
      if (cursor !== undefined) query.set('after', cursor);
      const req: HelixRequest = { method: 'GET', path, query, signal };
      const page = this.#answer(req, await this.#send(req), { ok: [200], schema, conduitId });
      yield page;
      cursor = page.pagination?.cursor || undefined;
      // An empty page ends the listing even if it carries a cursor, so a confused server cannot loop us.
      if (cursor === undefined || page.data.length === 0) return;
      if (seen.has(cursor)) throw new TwitchBadResponseError(`GET ${this.#path(req)} repeated a pagination cursor`);
      seen.add(cursor);
    }
  }

  /**
   * Deletes one subscription by id.
   * @throws AppError SUBSCRIPTION_NOT_FOUND on 404; TwitchHttpError on other non-2xx statuses.
   */
  async delete(id: string, options: CallOptions = {}): Promise<void> {
    const req: HelixRequest = { method: 'DELETE', path: SUBSCRIPTIONS, query: new URLSearchParams({ id }), signal: options.signal };
    const res = await this.#send(req);
    if (res.status >= 200 && res.status < 300) return;
    const message = twitchMessageOf(res);
    if (res.status === 404) throw new AppError('SUBSCRIPTION_NOT_FOUND', `Cannot delete subscription ${id}: 404 ${message}`);
    throw httpError(this.#path(req), req, res, message);
  }

  /**
   * Get User Authorization for `userIds`, ten at a time (Twitch's limit per request).
   * @throws TwitchHttpError on a non-200; TwitchBadResponseError for a body that is not the documented shape.
   */
  userAuthorizations(userIds: readonly string[], options: CallOptions = {}): Promise<UserAuthorization[]> {
    return this.#getEach(USER_AUTHORIZATIONS, 'user_id', userIds, 10, UserAuthorizationPage, options);
  }

  /**
   * Get Users by login (https://dev.twitch.tv/docs/api/reference/#get-users), a hundred at a time; a login Twitch
   * does not know is absent from the answer.
   * @throws TwitchHttpError on a non-200; TwitchBadResponseError for a body that is not the documented shape.
   */
  usersByLogin(logins: readonly string[], options: CallOptions = {}): Promise<HelixUser[]> {
    return this.#getEach(USERS, 'login', logins.map((l) => l.toLowerCase()), 100, UserPage, options);
  }

  /** GETs `path` with `key=value` for each of `values` (deduplicated), `per` values a request, and joins the `data`. */
  async #getEach<T>(path: string, key: string, values: readonly string[], per: number, schema: z.ZodType<{ data: T[] }>, options: CallOptions): Promise<T[]> {
    const out: T[] = [];
    const unique = [...new Set(values)];
    for (let i = 0; i < unique.length; i += per) {
      const query = new URLSearchParams(unique.slice(i, i + per).map((v): [string, string] => [key, v]));
      const req: HelixRequest = { method: 'GET', path, query, signal: options.signal };
      const res = await this.#send(req);
      if (res.status !== 200) throw httpError(this.#path(req), req, res, twitchMessageOf(res));
      const parsed = schema.safeParse(res.body);
      if (!parsed.success) throw badShape(this.#path(req), req, res);
      out.push(...parsed.data.data);
    }
    return out;
  }

  /** Get Conduits: this client's conduits (one page: at most 5 exist). */
  async listConduits(options: CallOptions = {}): Promise<Conduit[]> {
    const req: HelixRequest = { method: 'GET', path: CONDUITS, signal: options.signal };
    return this.#answer(req, await this.#send(req), { ok: [200], schema: ConduitPage }).data;
  }

  /**
   * Create Conduits with `shardCount` shards (1 to 20 000).
   * @throws AppError CONDUIT_LIMIT_REACHED on a 429 with points left (the client has its 5 conduits); TwitchHttpError
   *   on 400 (bad shard count) and other statuses; TwitchBadResponseError when `data` holds no conduit.
   */
  async createConduit(shardCount: number, options: CallOptions = {}): Promise<Conduit> {
    const req: HelixRequest = { method: 'POST', path: CONDUITS, body: { shard_count: shardCount }, signal: options.signal };
    const res = await this.#send(req);
    // `#send` waits out a 429 with an empty bucket; one that reaches here is the conduit limit (contract 6.1, 6.4).
    if (res.status === 429) {
      throw new AppError(
        'CONDUIT_LIMIT_REACHED',
        `Cannot create a conduit: Twitch allows 5 conduits per client ID and this one has them all (429 ${twitchMessageOf(res)}); ` +
          'delete one you no longer use (DELETE /helix/eventsub/conduits?id=ID with the app token, or `twitch api delete eventsub/conduits -q id=ID`), ' +
          'or set EVENTSUBD_CONDUIT_ID to one of them',
      );
    }
    return this.#single(req, res);
  }

  /**
   * Update Conduits: sets `shard_count` (lowering it disables the shards above the new count).
   * @throws AppError CONDUIT_NOT_FOUND on 404; TwitchHttpError on 400 and other statuses.
   */
  async updateConduit(id: string, shardCount: number, options: CallOptions = {}): Promise<Conduit> {
    const req: HelixRequest = { method: 'PATCH', path: CONDUITS, body: { id, shard_count: shardCount }, signal: options.signal };
    return this.#single(req, await this.#send(req), id);
  }

  /**
   * Delete Conduit. Twitch disables its subscriptions (revoked with `conduit_deleted`).
   * @throws AppError CONDUIT_NOT_FOUND on 404; TwitchHttpError on other non-2xx statuses.
   */
  async deleteConduit(id: string, options: CallOptions = {}): Promise<void> {
    const req: HelixRequest = { method: 'DELETE', path: CONDUITS, query: new URLSearchParams({ id }), signal: options.signal };
    const res = await this.#send(req);
    if (res.status >= 200 && res.status < 300) return;
    throw this.#failure(req, res, id);
  }

  /**
   * Get Conduit Shards, every page, optionally only those with `filter.status`.
   * @throws AppError CONDUIT_NOT_FOUND on 404; TwitchHttpError / TwitchBadResponseError as `list`.
   */
  async listShards(conduitId: string, filter: { status?: string | undefined } = {}, options: CallOptions = {}): Promise<Shard[]> {
    const query = new URLSearchParams({ conduit_id: conduitId });
    if (filter.status !== undefined) query.set('status', filter.status);
    const shards: Shard[] = [];
    for await (const page of this.#pages({ path: SHARDS, schema: ShardPage, query, signal: options.signal, conduitId })) shards.push(...page.data);
    return shards;
  }

  /**
   * Update Conduit Shards (202): each shard to the WebSocket session given. A shard Twitch refuses (session not
   * connected, id out of range...) is an entry of `errors`: the others are applied all the same (contract 6.2).
   * @throws AppError CONDUIT_NOT_FOUND on 404; TwitchHttpError on 400 and other statuses.
   */
  async updateShards(conduitId: string, shards: readonly ShardAssignment[], options: CallOptions = {}): Promise<ShardUpdateResult> {
    if (shards.length === 0) return { data: [], errors: [] };
    const body = {
      conduit_id: conduitId,
      shards: shards.map((s) => ({ id: s.id, transport: { method: 'websocket', session_id: s.sessionId } })),
    };
    const req: HelixRequest = { method: 'PATCH', path: SHARDS, body, signal: options.signal };
    return this.#answer(req, await this.#send(req), { ok: [202, 200], schema: ShardUpdateResponse, conduitId });
  }

  /** The one conduit a create or update answers with. */
  #single(req: HelixRequest, res: HttpResult, conduitId?: string): Conduit {
    const conduit = this.#answer(req, res, { ok: [200], schema: ConduitPage, conduitId }).data[0];
    if (!conduit) throw badShape(this.#path(req), req, res);
    return conduit;
  }

  /**
   * The validated body of an answer whose status is one of `ok`.
   * @throws TwitchBadResponseError for another shape; see `#failure` for another status.
   */
  #answer<T>(req: HelixRequest, res: HttpResult, expect: { ok: readonly number[]; schema: z.ZodType<T>; conduitId?: string | undefined }): T {
    if (!expect.ok.includes(res.status)) throw this.#failure(req, res, expect.conduitId);
    const parsed = expect.schema.safeParse(res.body);
    if (!parsed.success) throw badShape(this.#path(req), req, res);
    return parsed.data;
  }

  /** AppError CONDUIT_NOT_FOUND for a 404 about `conduitId` (missing, or another client's); else a TwitchHttpError. */
  #failure(req: HelixRequest, res: HttpResult, conduitId: string | undefined): AppError {
    const message = twitchMessageOf(res);
    if (res.status === 404 && conduitId !== undefined) {
      return new AppError('CONDUIT_NOT_FOUND', `Twitch knows no conduit ${conduitId} for this client ID (${req.method} ${this.#path(req)}: 404 ${message})`);
    }
    return httpError(this.#path(req), req, res, message);
  }

  /** Finds the twin a 409 refers to. */
  async #adopt(body: CreateSubscriptionBody, message: string, signal: AbortSignal | undefined): Promise<CreateResult> {
    // Pages are read only until the twin shows up: a type with thousands of subscriptions costs less.
    for await (const page of this.#pages({ path: SUBSCRIPTIONS, schema: SubscriptionPage, query: filterQuery({ type: body.type }), signal })) {
      const twin = page.data.find((s) => ADOPTABLE_STATUSES.has(s.status) && sameSubscription(s, body));
      if (!twin) continue;
      this.#o.logger?.info('Adopted an existing subscription after 409', { id: twin.id, type: twin.type, status: twin.status });
      return { subscription: twin, adopted: true, totalCost: page.total_cost, maxTotalCost: page.max_total_cost };
    }
    throw new AppError(
      'SUBSCRIPTION_CONFLICT',
      `Cannot create ${body.type} v${body.version}: Twitch answered 409 ${message} but no matching enabled or pending subscription is listed`,
    );
  }

  /**
   * Sends one logical request, handling what every endpoint shares. Returns any answer that is not
   * 401, an empty-bucket 429 or a 5xx.
   * @throws TwitchHttpError TWITCH_UNAUTHORIZED (401 after one re-mint and retry), TWITCH_RATE_LIMITED
   *   (empty bucket more than RATE_LIMIT_RETRIES times), TWITCH_HTTP_ERROR (5xx after all attempts);
   *   TwitchUnreachableError (network/timeout after all attempts); AbortedError.
   */
  async #send(req: HelixRequest): Promise<HttpResult> {
    let replacement: AppToken | undefined;
    let reauthorized = false;
    let failures = 0;
    let emptyBucket = 0;
    for (;;) {
      await this.pacer.take(req.signal);
      const token = replacement ?? (await this.#o.tokens.getToken(req.signal).catch(this.#unreserve));
      replacement = undefined;
      let res: HttpResult;
      try {
        res = await this.#exchange(req, token);
      } catch (err) {
        this.pacer.observe(undefined);
        if (!(err instanceof TwitchUnreachableError)) throw err;
        if (++failures >= this.#attempts) {
          throw new TwitchUnreachableError(`${err.message} (after ${failures} attempts)`, { cause: err.cause });
        }
        await this.#backoff(req, failures, err.message);
        continue;
      }
      const bucketEmpty = res.status === 429 && !(Number(res.headers['ratelimit-remaining']) > 0);
      if (bucketEmpty) this.pacer.onEmpty429(res.headers);
      else this.pacer.observe(res.headers);
      if (res.status === 401) {
        if (reauthorized) throw httpError(this.#path(req), req, res, twitchMessageOf(res, [token.reveal()]), 'TWITCH_UNAUTHORIZED');
        reauthorized = true;
        replacement = await this.#o.tokens.tokenRejected(token, req.signal);
        continue;
      }
      if (bucketEmpty) {
        if (++emptyBucket > RATE_LIMIT_RETRIES) throw httpError(this.#path(req), req, res, twitchMessageOf(res), 'TWITCH_RATE_LIMITED');
        this.#o.logger?.warn('Helix rate limit bucket is empty; waiting for Ratelimit-Reset', { path: req.path });
        continue;
      }
      if (res.status >= 500) {
        if (++failures >= this.#attempts) throw httpError(this.#path(req), req, res, twitchMessageOf(res));
        await this.#backoff(req, failures, `${res.status}`);
        continue;
      }
      return res;
    }
  }

  /** Settles the pacer reservation of a request that never left (no token could be had), then rethrows. */
  readonly #unreserve = (err: unknown): never => {
    this.pacer.observe(undefined);
    throw err;
  };

  /** One HTTP exchange with the current token; reports it to `onCall`. */
  async #exchange(req: HelixRequest, token: AppToken): Promise<HttpResult> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token.reveal()}`,
      'client-id': this.#o.clientId,
      accept: 'application/json',
    };
    if (req.body) headers['content-type'] = 'application/json';
    const query = req.query?.toString();
    const started = this.#o.clock.now();
    const report = (status: number | 'error'): void =>
      this.#o.onCall?.({ method: req.method, path: this.#path(req), status, durationMs: this.#o.clock.now() - started });
    try {
      const res = await httpRequest({
        method: req.method,
        url: joinUrl(this.#o.apiUrl, req.path) + (query ? `?${query}` : ''),
        headers,
        body: req.body ? JSON.stringify(req.body) : undefined,
        dispatcher: this.#o.dispatcher,
        signal: req.signal,
        timeoutMs: this.#o.timeoutMs,
      });
      report(res.status);
      return res;
    } catch (err) {
      report('error');
      throw err;
    }
  }

  async #backoff(req: HelixRequest, failures: number, reason: string): Promise<void> {
    const ms = backoffDelay(failures, { baseMs: this.#baseMs, maxMs: this.#maxMs, random: this.#o.random });
    this.#o.logger?.warn('Helix request failed; retrying', { method: req.method, path: this.#path(req), reason, attempt: failures, delayMs: ms });
    await this.#o.clock.sleep(ms, req.signal);
  }

  #path(req: HelixRequest): string {
    return pathOf(joinUrl(this.#o.apiUrl, req.path));
  }
}

function filterQuery(filter: ListFilter): URLSearchParams {
  const entries = Object.entries(filter as Record<string, unknown>).filter(([, v]) => v !== undefined);
  const unknown = entries.filter(([k]) => !(FILTER_KEYS as readonly string[]).includes(k)).map(([k]) => k);
  if (unknown.length > 0) throw new UsageError(`Cannot list subscriptions by ${unknown.join(', ')}: the filters are ${FILTER_KEYS.join(', ')}`);
  if (entries.length > 1) {
    throw new UsageError(`Cannot list subscriptions with more than one filter: current value is ${entries.map(([k]) => k).join(', ')}`);
  }
  return new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)]));
}

/** Same type, version, condition (same keys and values, empty values dropped as on the wire) and transport target. */
function sameSubscription(s: Subscription, body: CreateSubscriptionBody): boolean {
  if (s.type !== body.type || s.version !== body.version || s.transport.method !== body.transport.method) return false;
  const want = Object.entries(body.condition).filter(([, v]) => v !== '');
  const have = Object.entries(s.condition);
  if (want.length !== have.length || !want.every(([k, v]) => s.condition[k] === v)) return false;
  return body.transport.method === 'webhook'
    ? s.transport.callback === body.transport.callback
    : s.transport.conduit_id === body.transport.conduit_id;
}

function secretsOf(body: CreateSubscriptionBody): string[] {
  return body.transport.method === 'webhook' ? [body.transport.secret] : [];
}

function httpError(
  path: string,
  req: HelixRequest,
  res: HttpResult,
  twitchMessage: string,
  code?: 'TWITCH_UNAUTHORIZED' | 'TWITCH_RATE_LIMITED',
): TwitchHttpError {
  return new TwitchHttpError({ status: res.status, twitchMessage, method: req.method, path, code });
}

function badShape(path: string, req: HelixRequest, res: HttpResult): TwitchBadResponseError {
  return new TwitchBadResponseError(`${req.method} ${path} answered ${res.status} with a body that is not the documented shape`);
}
