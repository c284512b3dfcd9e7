/**
 * `GET` and `DELETE /helix/eventsub/subscriptions` (https://dev.twitch.tv/docs/api/reference/#get-eventsub-subscriptions,
 * https://dev.twitch.tv/docs/api/reference/#delete-eventsub-subscription).
 */
import { KNOWN_STATUSES } from '../twitch/wire.js';
import { isKnownType } from '../twitch/catalogue.js';
import type { HelixDeps } from './helix.js';
import { helixError, isRecord, type Reply, type Req } from './http.js';
import type { TokenRecord } from './state.js';

const FILTERS = ['status', 'type', 'user_id', 'subscription_id'] as const;
/** The largest page `first` may ask for. */
const MAX_FIRST = 100;

/** `max_total_cost` of a user token (websocket), https://dev.twitch.tv/docs/eventsub/manage-subscriptions/#subscription-limits. */
const WEBSOCKET_MAX_TOTAL_COST = 10;

/**
 * Lists the caller's subscriptions, oldest first, `first` (else `pageSize`) a page. An app token sees its client's
 * webhook subscriptions; a user token sees websocket ones, of which there are none (not emulated).
 */
export function listSubscriptions(deps: HelixDeps, req: Req, caller: TokenRecord): Reply {
  const given = FILTERS.filter((name) => req.query.has(name));
  if (given.length > 1) return helixError(400, `only one of ${FILTERS.join(', ')} may be given`);
  const filter = given[0];
  const value = filter ? (req.query.get(filter) ?? '') : '';
  if (filter === 'status' && !(KNOWN_STATUSES as readonly string[]).includes(value)) return helixError(400, 'invalid status');
  if (filter === 'type' && !isKnownType(value)) return helixError(400, 'invalid type');
  const first = parseFirst(req.query.get('first'));
  if (first === 'invalid') return helixError(400, `first must be a whole number from 1 to ${MAX_FIRST}`);
  const after = req.query.get('after');
  const afterSeq = after ? decodeCursor(after) : 0;
  if (afterSeq === undefined) return helixError(400, 'invalid cursor');

  if (caller.kind !== 'app') {
    return { status: 200, json: { data: [], total: 0, total_cost: 0, max_total_cost: WEBSOCKET_MAX_TOTAL_COST, pagination: {} } };
  }
  const query = { filter: filter ? { name: filter, value } : undefined, afterSeq, limit: first ?? deps.pageSize };
  const { page, more } = deps.state.pageOf(caller.clientId, query);
  const last = page.at(-1);
  const { total, totalCost } = deps.state.totals(caller.clientId);
  return {
    status: 200,
    json: {
      data: page.map((s) => structuredClone(s.wire)),
      total,
      total_cost: totalCost,
      max_total_cost: deps.maxTotalCost,
      pagination: more && last !== undefined ? { cursor: encodeCursor(last.seq) } : {},
    },
  };
}

/** Deletes one of the caller's subscriptions: 204, 400 without `id`, 404 when it is not the caller's. */
export function deleteSubscription(deps: HelixDeps, req: Req, caller: TokenRecord): Reply {
  const id = req.query.get('id');
  if (!id) return helixError(400, 'Missing required parameter "id"');
  const found = caller.kind === 'app' ? deps.state.findSubscription(id) : undefined;
  if (!found || found.clientId !== caller.clientId) return helixError(404, 'subscription not found');
  deps.state.deleteSubscription(id);
  return { status: 204 };
}

/**
 * `first`, the page size asked for: Twitch's reference does not list it for this endpoint, but Helix takes it
 * on its paginated lists (1 to 100, else 400) and client libraries send it; without it the page is `pageSize`.
 */
function parseFirst(value: string | null): number | undefined | 'invalid' {
  if (value === null) return undefined;
  const n = Number(value);
  return /^\d{1,3}$/.test(value) && n >= 1 && n <= MAX_FIRST ? n : 'invalid';
}

/** Cursors are opaque to clients (base64url JSON, like Twitch's); they point after a creation sequence. */
function encodeCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ s: seq }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isRecord(value) && Number.isSafeInteger(value.s) && (value.s as number) >= 0) return value.s as number;
  } catch {
    // not base64url JSON: invalid
  }
  return undefined;
}
