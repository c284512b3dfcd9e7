/**
 * One client's subscriptions, indexed so that a create and a list page cost O(1)/O(page size) rather than a
 * walk over every subscription: by creation order, by type, by user ID in the condition, by status, the live
 * twins of each type+version+condition, and a running live total cost.
 */
import { SeqList } from './seq-list.js';
import type { WireSubscription } from './types.js';

export interface StoredSubscription {
  /** Read-only outside the state: a status change must go through EmulatorState.setSubscriptionStatus. */
  readonly wire: Readonly<WireSubscription>;
  readonly clientId: string;
  /** Kept for signing deliveries; never part of an answer. */
  readonly secret: string;
  /** Creation order; the pagination cursor points at it. */
  readonly seq: number;
  /** type, version and canonical condition (twinKeyOf), computed once: the key of the 409 and 3-per-condition checks. */
  readonly twinKey: string;
}

/** Statuses that make a subscription "live": it conflicts (409), counts toward the limits and the cost. */
export const LIVE_STATUSES: ReadonlySet<string> = new Set(['enabled', 'webhook_callback_verification_pending']);

/** The list filters of https://dev.twitch.tv/docs/api/reference/#get-eventsub-subscriptions (mutually exclusive). */
export type SubscriptionFilter = IndexedFilter | { name: 'subscription_id'; value: string };

/** The filters answered by a per-client index; `subscription_id` is answered by the state's id map. */
export interface IndexedFilter {
  name: 'status' | 'type' | 'user_id';
  value: string;
}

/** Twins share type, version and condition; conditions compare by their non-empty values, whatever the key order. */
export function twinKeyOf(type: string, version: string, condition: Readonly<Record<string, string>>): string {
  return `${type}\n${version}\n${conditionKey(condition)}`;
}

/** The condition's non-empty fields, sorted by name, as JSON. */
export function conditionKey(condition: Readonly<Record<string, string>>): string {
  return JSON.stringify(
    Object.entries(condition)
      .filter(([, v]) => v !== '')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** The distinct values of the condition's `*user_id` fields ("" included): what `user_id=` matches. */
function userIdsOf(condition: Readonly<Record<string, string>>): Set<string> {
  const ids = new Set<string>();
  for (const [field, value] of Object.entries(condition)) if (field.endsWith('user_id')) ids.add(value);
  return ids;
}

/**
 * The indexes of one client. It never changes a subscription itself except its status, in `setStatus`;
 * callers keep the id map and the client check.
 */
export class ClientSubscriptions {
  readonly #all = new SeqList<StoredSubscription>();
  readonly #byType = new Map<string, SeqList<StoredSubscription>>();
  readonly #byUser = new Map<string, SeqList<StoredSubscription>>();
  readonly #byStatus = new Map<string, SeqList<StoredSubscription>>();
  /** twinKey → the live subscriptions with that key (normally at most MAX_PER_CONDITION). */
  readonly #liveTwins = new Map<string, StoredSubscription[]>();
  #liveCost = 0;

  /** Every subscription of the client, whatever its status. */
  get total(): number {
    return this.#all.size;
  }

  /** Sum of `cost` over the live subscriptions. */
  get liveCost(): number {
    return this.#liveCost;
  }

  add(s: StoredSubscription): void {
    this.#all.add(s);
    listIn(this.#byType, s.wire.type).add(s);
    for (const id of userIdsOf(s.wire.condition)) listIn(this.#byUser, id).add(s);
    listIn(this.#byStatus, s.wire.status).add(s);
    if (LIVE_STATUSES.has(s.wire.status)) this.#enterLive(s);
  }

  /** Returns false when `s` was not one of this client's subscriptions. */
  remove(s: StoredSubscription): boolean {
    if (!this.#all.remove(s)) return false;
    removeFrom(this.#byType, s.wire.type, s);
    for (const id of userIdsOf(s.wire.condition)) removeFrom(this.#byUser, id, s);
    removeFrom(this.#byStatus, s.wire.status, s);
    if (LIVE_STATUSES.has(s.wire.status)) this.#leaveLive(s);
    return true;
  }

  /** Changes the status of `s` (one of this client's) and moves it between the indexes it affects. */
  setStatus(s: StoredSubscription, status: string): void {
    const before = s.wire.status;
    if (before === status) return;
    removeFrom(this.#byStatus, before, s);
    if (LIVE_STATUSES.has(before)) this.#leaveLive(s);
    // The one place a stored subscription changes: the wire object is read-only to everybody else.
    (s.wire as WireSubscription).status = status;
    listIn(this.#byStatus, status).add(s);
    if (LIVE_STATUSES.has(status)) this.#enterLive(s);
  }

  /** The live subscriptions sharing `twinKey`, in no particular order. Do not modify. */
  liveTwins(twinKey: string): readonly StoredSubscription[] {
    return this.#liveTwins.get(twinKey) ?? [];
  }

  /** Every subscription, oldest first (a copy). */
  toArray(): StoredSubscription[] {
    return this.#all.toArray();
  }

  /**
   * Up to `limit` subscriptions created after `afterSeq` that match `filter` (status, type or user_id; none
   * for all), oldest first, and whether more follow. O(log n + limit).
   */
  page(filter: IndexedFilter | undefined, afterSeq: number, limit: number): { page: StoredSubscription[]; more: boolean } {
    const list = filter === undefined ? this.#all : this.#listFor(filter);
    return list ? list.after(afterSeq, limit) : { page: [], more: false };
  }

  #listFor(filter: IndexedFilter): SeqList<StoredSubscription> | undefined {
    switch (filter.name) {
      case 'status':
        return this.#byStatus.get(filter.value);
      case 'type':
        return this.#byType.get(filter.value);
      case 'user_id':
        return this.#byUser.get(filter.value);
    }
  }

  #enterLive(s: StoredSubscription): void {
    this.#liveCost += s.wire.cost;
    const twins = this.#liveTwins.get(s.twinKey);
    if (twins) twins.push(s);
    else this.#liveTwins.set(s.twinKey, [s]);
  }

  #leaveLive(s: StoredSubscription): void {
    this.#liveCost -= s.wire.cost;
    const twins = this.#liveTwins.get(s.twinKey) ?? [];
    const rest = twins.filter((t) => t !== s);
    if (rest.length > 0) this.#liveTwins.set(s.twinKey, rest);
    else this.#liveTwins.delete(s.twinKey);
  }
}

function listIn(map: Map<string, SeqList<StoredSubscription>>, key: string): SeqList<StoredSubscription> {
  let list = map.get(key);
  if (!list) map.set(key, (list = new SeqList()));
  return list;
}

/** Removes `s` from the list under `key`, dropping the list once empty so the map does not grow forever. */
function removeFrom(map: Map<string, SeqList<StoredSubscription>>, key: string, s: StoredSubscription): void {
  const list = map.get(key);
  if (!list) return;
  list.remove(s);
  if (list.size === 0) map.delete(key);
}
