/**
 * An in-memory EventSubApi that behaves like Twitch for what sync needs (409 → adopt on the full key, target
 * included; conduit subscriptions created enabled, webhooks pending; 404 on an unknown delete), counts every call, records their order and the peak concurrency, and can be
 * told to fail or to hold calls until released.
 */
import { AbortedError, AppError } from '../../src/lib/errors.js';
import { subscriptionKey, targetOf, type Ownership } from '../../src/twitch/subscription.js';
import type { CallOptions, CreateResult, EventSubApi, ListFilter, ListResult } from '../../src/twitch/types.js';
import type { CreateSubscriptionBody, Subscription } from '../../src/twitch/wire.js';

export const CALLBACK = 'https://events.example.com/twitch/eventsub';
export const OTHER_CALLBACK = 'https://other.example.com/hook';
export const SECRET = 's3cr3t-value-never-printed';
/** Our conduits: the current one and one it replaced. */
export const CONDUIT = 'c0ffee00-0000-4000-8000-000000000001';
export const OLD_CONDUIT = 'c0ffee00-0000-4000-8000-000000000000';
/** Ownership in webhook mode with no conduit ever used: webhooks to CALLBACK. */
export const OWN: Ownership = Object.freeze({ callbackUrl: CALLBACK, conduitIds: [] });

let counter = 0;

/** A listed subscription with sensible defaults. */
export function sub(overrides: Partial<Subscription> & { callback?: string } = {}): Subscription {
  counter += 1;
  const { callback, ...rest } = overrides;
  return {
    id: `sub-${String(counter).padStart(4, '0')}`,
    status: 'enabled',
    type: 'stream.online',
    version: '1',
    condition: { broadcaster_user_id: '12345' },
    created_at: `2026-01-01T00:00:${String(counter % 60).padStart(2, '0')}.000Z`,
    transport: { method: 'webhook', callback: callback ?? CALLBACK },
    cost: 1,
    ...rest,
  };
}

export interface FakeApiOptions {
  /** Return an error to make that create fail. */
  failCreate?: (body: CreateSubscriptionBody) => Error | undefined;
  failDelete?: (id: string) => Error | undefined;
  /** Hold every write until `release()` (or the call's signal aborts). */
  hold?: boolean;
  /** Yield to the event loop once inside each write (lets concurrent calls overlap). */
  yieldEachCall?: boolean;
  maxTotalCost?: number;
}

export class FakeEventSubApi implements EventSubApi {
  readonly subs: Subscription[];
  readonly calls: string[] = [];
  readonly bodies: CreateSubscriptionBody[] = [];
  lists = 0;
  creates = 0;
  deletes = 0;
  inFlight = 0;
  maxInFlight = 0;
  #waiters: (() => void)[] = [];
  #next = 0;

  constructor(
    initial: Subscription[] = [],
    readonly options: FakeApiOptions = {},
  ) {
    this.subs = [...initial];
  }

  get writes(): number {
    return this.creates + this.deletes;
  }

  /** Lets every held call continue. */
  release(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async list(_filter?: ListFilter, _options?: CallOptions): Promise<ListResult> {
    this.lists += 1;
    const totalCost = this.subs.reduce((s, x) => s + x.cost, 0);
    return { subscriptions: [...this.subs], totalCost, maxTotalCost: this.options.maxTotalCost ?? 10_000, pages: 1 };
  }

  async create(body: CreateSubscriptionBody, options?: CallOptions): Promise<CreateResult> {
    this.creates += 1;
    this.bodies.push(body);
    const transport = body.transport.method === 'webhook' ? { method: 'webhook', callback: body.transport.callback } : { ...body.transport };
    const key = subscriptionKey(body.type, body.version, body.condition, targetOf({ transport }));
    this.calls.push(`create ${body.type} ${JSON.stringify(body.condition)}`);
    await this.#enter(options?.signal);
    try {
      const error = this.options.failCreate?.(body);
      if (error) throw error;
      const twin = this.subs.find((s) => subscriptionKey(s.type, s.version, s.condition, targetOf(s)) === key);
      if (twin) return { subscription: twin, adopted: true, totalCost: undefined, maxTotalCost: undefined };
      this.#next += 1;
      const created = sub({
        id: `new-${this.#next}`,
        type: body.type,
        version: body.version,
        condition: { ...body.condition },
        status: transport.method === 'conduit' ? 'enabled' : 'webhook_callback_verification_pending',
        transport,
      });
      this.subs.push(created);
      return { subscription: created, adopted: false, totalCost: undefined, maxTotalCost: undefined };
    } finally {
      this.inFlight -= 1;
    }
  }

  async delete(id: string, options?: CallOptions): Promise<void> {
    this.deletes += 1;
    this.calls.push(`delete ${id}`);
    await this.#enter(options?.signal);
    try {
      const error = this.options.failDelete?.(id);
      if (error) throw error;
      const index = this.subs.findIndex((s) => s.id === id);
      if (index < 0) throw new AppError('SUBSCRIPTION_NOT_FOUND', `DELETE /eventsub/subscriptions failed: 404`);
      this.subs.splice(index, 1);
    } finally {
      this.inFlight -= 1;
    }
  }

  async #enter(signal: AbortSignal | undefined): Promise<void> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
      if (this.options.yieldEachCall) await new Promise<void>((r) => setImmediate(r));
      if (this.options.hold) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(new AbortedError({ cause: signal?.reason }));
          signal?.addEventListener('abort', onAbort, { once: true });
          this.#waiters.push(() => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          });
        });
      }
    } catch (err) {
      this.inFlight -= 1;
      throw err;
    }
  }
}
