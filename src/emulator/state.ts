/** What the emulated Twitch remembers: clients, tokens, user authorizations and subscriptions. */
import type { Clock } from '../lib/clock.js';
import type { StoredConduit } from './conduits.js';
import { Grants } from './grants.js';
import { randomAlnum } from './ids.js';
import { ClientSubscriptions, twinKeyOf, type StoredSubscription, type SubscriptionFilter } from './sub-index.js';
import type { EmulatorClient } from './types.js';

/** The redirect URL a client has unless told otherwise: TWITCH_REDIRECT_URL's default and twitch-cli's. */
export const DEFAULT_REDIRECT_URI = 'http://localhost:3000';
/** An app registers up to 10 OAuth Redirect URLs. */
export const MAX_REDIRECT_URIS = 10;
export { LIVE_STATUSES, type StoredSubscription } from './sub-index.js';

export interface TokenRecord {
  readonly value: string;
  readonly clientId: string;
  readonly kind: 'app' | 'user';
  readonly userId?: string;
  readonly login?: string;
  readonly scopes: readonly string[];
  readonly expiresAt: number;
  invalid: boolean;
}

/** A user of the emulated Twitch, as Get Users names them. */
export interface DirectoryUser {
  id: string;
  login: string;
  display_name: string;
}

/** A page of one client's subscriptions and whether more follow it. */
export interface SubscriptionPage {
  page: StoredSubscription[];
  more: boolean;
}

/** All mutable state of one emulator. Tokens and subscriptions never leave it except as copies. */
export class EmulatorState {
  readonly clients: EmulatorClient[] = [];
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #tokens = new Map<string, TokenRecord>();
  /** Who authorized which client with which scopes, and the codes of the flows that grant it. */
  readonly grants: Grants;
  /** Every subscription by id; a Map iterates in insertion order, which is creation order. */
  readonly #subscriptions = new Map<string, StoredSubscription>();
  readonly #byClient = new Map<string, ClientSubscriptions>();
  /** Users registered through the control API, by id. */
  readonly #users = new Map<string, DirectoryUser>();
  /** The conduits by id (conduits.ts manages them; kept here so that the state file holds them). */
  readonly conduits = new Map<string, StoredConduit>();
  #seq = 0;
  #onChange: () => void = () => undefined;

  constructor(clock: Clock, tokenTtlSeconds: number) {
    this.#clock = clock;
    this.#ttlMs = tokenTtlSeconds * 1000;
    this.grants = new Grants(clock);
  }

  /** Called after every change that the state file keeps (clients, tokens, grants, subscriptions, users). */
  set onChange(listener: () => void) {
    this.#onChange = listener;
    this.grants.onChange = listener;
  }

  /** Registers (or renames) a user of the directory Get Users answers from. */
  /** Tells the state file something outside this object changed (the conduits). */
  touch(): void {
    this.#onChange();
  }

  registerUser(user: DirectoryUser): void {
    this.#users.set(user.id, { id: user.id, login: user.login.toLowerCase(), display_name: user.display_name });
    this.#onChange();
  }

  /**
   * Every user the emulator knows, by id: those registered, then those who granted a client something, who
   * consent at the authorize page, or hold a user token. A registered user's names win.
   */
  knownUsers(): DirectoryUser[] {
    const out = new Map(this.#users);
    const add = (id: string, login: string): void => {
      if (!out.has(id)) out.set(id, { id, login: login.toLowerCase(), display_name: login });
    };
    for (const g of this.grants.records()) add(g.userId, g.login);
    for (const { consent } of this.grants.consents()) if (consent !== 'deny') add(consent.userId, consent.login);
    for (const t of this.userTokens()) if (t.userId !== undefined) add(t.userId, t.login ?? `user${t.userId}`);
    return [...out.values()];
  }

  /** The users registered through the control API only (the state file keeps them). */
  registeredUsers(): DirectoryUser[] {
    return [...this.#users.values()];
  }

  /** Every token, for the state file. */
  tokenRecords(): TokenRecord[] {
    return [...this.#tokens.values()];
  }

  /** Puts back a token of the state file as it was. */
  restoreToken(token: TokenRecord): void {
    this.#tokens.set(token.value, { ...token, scopes: [...token.scopes] });
  }

  /** @throws Error when the client ID is already registered. */
  addClient(init: Partial<EmulatorClient> = {}): EmulatorClient {
    const client = {
      clientId: init.clientId ?? randomAlnum(30),
      clientSecret: init.clientSecret ?? randomAlnum(30),
      redirectUris: [...(init.redirectUris ?? [DEFAULT_REDIRECT_URI])],
    };
    if (client.redirectUris.length > MAX_REDIRECT_URIS) throw new Error(`At most ${MAX_REDIRECT_URIS} redirect URLs per client`);
    if (this.client(client.clientId)) throw new Error(`Client ${client.clientId} is already registered`);
    this.clients.push(client);
    this.#onChange();
    return client;
  }

  /** Registers one more OAuth Redirect URL (https://dev.twitch.tv/docs/authentication/register-app/). */
  addRedirectUri(clientId: string, uri: string): void {
    const client = this.client(clientId);
    if (!client) throw new Error(`Unknown client ${clientId}`);
    const list = (client.redirectUris ??= []);
    if (list.includes(uri)) return;
    if (!/^https?:\/\/[^/?#]+/.test(uri)) throw new Error(`Not an http(s) URL: ${uri}`);
    if (list.length >= MAX_REDIRECT_URIS) throw new Error(`At most ${MAX_REDIRECT_URIS} redirect URLs per client`);
    list.push(uri);
    this.#onChange();
  }

  client(clientId: string): EmulatorClient | undefined {
    return this.clients.find((c) => c.clientId === clientId);
  }

  mintAppToken(clientId: string): TokenRecord {
    return this.#store({ clientId, kind: 'app', scopes: [] });
  }

  /**
   * A user token, as if the user authorized the client with `scopes` (the grant is recorded too).
   * @throws Error when the client is unknown.
   */
  registerUserToken(init: { clientId?: string; userId: string; login?: string; scopes?: string[] }): TokenRecord {
    const clientId = init.clientId ?? this.clients[0]?.clientId;
    if (clientId === undefined || !this.client(clientId)) throw new Error(`Unknown client ${String(clientId)}`);
    const login = init.login ?? `user${init.userId}`;
    this.grants.grant(clientId, { userId: init.userId, login }, init.scopes ?? []);
    return this.issueUserToken(clientId, { userId: init.userId, login }, init.scopes ?? []);
  }

  /** A user token of `clientId` for a user, with exactly `scopes` (the grant is the caller's business). */
  issueUserToken(clientId: string, user: { userId: string; login: string }, scopes: readonly string[]): TokenRecord {
    return this.#store({ clientId, kind: 'user', userId: user.userId, login: user.login, scopes: [...scopes] });
  }

  /** Every user token issued to `clientId` (all clients when undefined), oldest first, revoked ones included. */
  userTokens(clientId?: string): TokenRecord[] {
    return [...this.#tokens.values()].filter((t) => t.kind === 'user' && (clientId === undefined || t.clientId === clientId));
  }

  /** The token if it exists, was not expired by hand or revoked, and has time left. */
  validToken(value: string | undefined): TokenRecord | undefined {
    if (value === undefined) return undefined;
    const token = this.#tokens.get(value);
    if (!token || token.invalid || this.expiresIn(token) <= 0) return undefined;
    return token;
  }

  /** Whole seconds left. */
  expiresIn(token: TokenRecord): number {
    return Math.floor((token.expiresAt - this.#clock.now()) / 1000);
  }

  /** Makes a token invalid. Returns false when it was unknown or already invalid. */
  invalidate(value: string): boolean {
    const token = this.validToken(value);
    if (!token) return false;
    token.invalid = true;
    this.#onChange();
    return true;
  }

  invalidateAll(): void {
    for (const token of this.#tokens.values()) token.invalid = true;
    this.#onChange();
  }

  isAuthorized(clientId: string, userId: string): boolean {
    return this.grants.grantOf(clientId, userId) !== undefined;
  }

  /** Stores a new subscription (its wire status decides whether it is live) with the next sequence. */
  addSubscription(init: Omit<StoredSubscription, 'seq' | 'twinKey'>): StoredSubscription {
    const { type, version, condition } = init.wire;
    const stored: StoredSubscription = { ...init, seq: ++this.#seq, twinKey: twinKeyOf(type, version, condition) };
    this.#subscriptions.set(stored.wire.id, stored);
    let mine = this.#byClient.get(stored.clientId);
    if (!mine) this.#byClient.set(stored.clientId, (mine = new ClientSubscriptions()));
    mine.add(stored);
    this.#onChange();
    return stored;
  }

  /** Oldest first; all clients when `clientId` is undefined. */
  subscriptionsOf(clientId: string | undefined): StoredSubscription[] {
    if (clientId === undefined) return [...this.#subscriptions.values()];
    return this.#byClient.get(clientId)?.toArray() ?? [];
  }

  findSubscription(id: string): StoredSubscription | undefined {
    return this.#subscriptions.get(id);
  }

  deleteSubscription(id: string): boolean {
    const found = this.#subscriptions.get(id);
    if (!found) return false;
    this.#subscriptions.delete(id);
    this.#byClient.get(found.clientId)?.remove(found);
    this.#onChange();
    return true;
  }

  /** The only way a stored subscription's status changes, so that the indexes and the total cost follow it. */
  setSubscriptionStatus(subscription: StoredSubscription, status: string): void {
    if (this.#subscriptions.get(subscription.wire.id) !== subscription) throw new Error(`Unknown subscription ${subscription.wire.id}`);
    this.#byClient.get(subscription.clientId)?.setStatus(subscription, status);
    this.#onChange();
  }

  /** The client's live subscriptions with this twin key (see twinKeyOf). Do not modify. */
  liveTwins(clientId: string, twinKey: string): readonly StoredSubscription[] {
    return this.#byClient.get(clientId)?.liveTwins(twinKey) ?? [];
  }

  /** `total` (every subscription of the client) and `totalCost` (sum of `cost` over its live ones). */
  totals(clientId: string): { total: number; totalCost: number } {
    const mine = this.#byClient.get(clientId);
    return { total: mine?.total ?? 0, totalCost: mine?.liveCost ?? 0 };
  }

  /** Up to `limit` of the client's subscriptions created after `afterSeq` and matching `filter`, oldest first. */
  pageOf(clientId: string, query: { filter: SubscriptionFilter | undefined; afterSeq: number; limit: number }): SubscriptionPage {
    const { filter, afterSeq, limit } = query;
    if (filter?.name === 'subscription_id') {
      const found = this.#subscriptions.get(filter.value);
      return { page: found && found.clientId === clientId && found.seq > afterSeq && limit > 0 ? [found] : [], more: false };
    }
    return this.#byClient.get(clientId)?.page(filter, afterSeq, limit) ?? { page: [], more: false };
  }

  #store(init: Omit<TokenRecord, 'value' | 'expiresAt' | 'invalid'>): TokenRecord {
    let value = randomAlnum(30);
    while (this.#tokens.has(value)) value = randomAlnum(30);
    const token: TokenRecord = { ...init, value, expiresAt: this.#clock.now() + this.#ttlMs, invalid: false };
    this.#tokens.set(value, token);
    this.#onChange();
    return token;
  }
}
