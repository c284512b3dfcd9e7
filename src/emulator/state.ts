/** What the emulated Twitch remembers: clients, tokens, user authorizations and subscriptions. */
import type { Clock } from '../lib/clock.js';
import { randomAlnum } from './ids.js';
import type { EmulatorClient, WireSubscription } from './types.js';

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

export interface StoredSubscription {
  readonly wire: WireSubscription;
  readonly clientId: string;
  /** Kept for signing deliveries; never part of an answer. */
  readonly secret: string;
  /** Creation order; the pagination cursor points at it. */
  readonly seq: number;
  /** type, version and canonical condition, computed once: the key of the 409 and 3-per-condition checks. */
  twinKey?: string;
}

/** Statuses that make a subscription "live": it conflicts (409), counts toward the limits and the cost. */
export const LIVE_STATUSES: ReadonlySet<string> = new Set(['enabled', 'webhook_callback_verification_pending']);

/** All mutable state of one emulator. Tokens and subscriptions never leave it except as copies. */
export class EmulatorState {
  readonly clients: EmulatorClient[] = [];
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #tokens = new Map<string, TokenRecord>();
  /** clientId → user IDs that authorized it (a registered user token); subscriptions naming them cost 0. */
  readonly #authorized = new Map<string, Set<string>>();
  #subscriptions: StoredSubscription[] = [];
  #seq = 0;

  constructor(clock: Clock, tokenTtlSeconds: number) {
    this.#clock = clock;
    this.#ttlMs = tokenTtlSeconds * 1000;
  }

  /** @throws Error when the client ID is already registered. */
  addClient(init: Partial<EmulatorClient> = {}): EmulatorClient {
    const client = { clientId: init.clientId ?? randomAlnum(30), clientSecret: init.clientSecret ?? randomAlnum(30) };
    if (this.client(client.clientId)) throw new Error(`Client ${client.clientId} is already registered`);
    this.clients.push(client);
    return client;
  }

  client(clientId: string): EmulatorClient | undefined {
    return this.clients.find((c) => c.clientId === clientId);
  }

  mintAppToken(clientId: string): TokenRecord {
    return this.#store({ clientId, kind: 'app', scopes: [] });
  }

  /** @throws Error when the client is unknown. */
  registerUserToken(init: { clientId?: string; userId: string; login?: string; scopes?: string[] }): TokenRecord {
    const clientId = init.clientId ?? this.clients[0]?.clientId;
    if (clientId === undefined || !this.client(clientId)) throw new Error(`Unknown client ${String(clientId)}`);
    let users = this.#authorized.get(clientId);
    if (!users) this.#authorized.set(clientId, (users = new Set()));
    users.add(init.userId);
    return this.#store({
      clientId,
      kind: 'user',
      userId: init.userId,
      login: init.login ?? `user${init.userId}`,
      scopes: [...(init.scopes ?? [])],
    });
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
    return true;
  }

  invalidateAll(): void {
    for (const token of this.#tokens.values()) token.invalid = true;
  }

  isAuthorized(clientId: string, userId: string): boolean {
    return this.#authorized.get(clientId)?.has(userId) ?? false;
  }

  addSubscription(init: Omit<StoredSubscription, 'seq'>): StoredSubscription {
    const stored = { ...init, seq: ++this.#seq };
    this.#subscriptions.push(stored);
    return stored;
  }

  /** Oldest first; all clients when `clientId` is undefined. */
  subscriptionsOf(clientId: string | undefined): StoredSubscription[] {
    return this.#subscriptions.filter((s) => clientId === undefined || s.clientId === clientId);
  }

  findSubscription(id: string): StoredSubscription | undefined {
    return this.#subscriptions.find((s) => s.wire.id === id);
  }

  deleteSubscription(id: string): boolean {
    const before = this.#subscriptions.length;
    this.#subscriptions = this.#subscriptions.filter((s) => s.wire.id !== id);
    return this.#subscriptions.length !== before;
  }

  #store(init: Omit<TokenRecord, 'value' | 'expiresAt' | 'invalid'>): TokenRecord {
    let value = randomAlnum(30);
    while (this.#tokens.has(value)) value = randomAlnum(30);
    const token: TokenRecord = { ...init, value, expiresAt: this.#clock.now() + this.#ttlMs, invalid: false };
    this.#tokens.set(value, token);
    return token;
  }
}
