/**
 * `POST /helix/eventsub/subscriptions` (https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription,
 * https://dev.twitch.tv/docs/eventsub/manage-subscriptions/#subscription-limits).
 */
import { missingGrants } from '../twitch/scopes.js';
import { lookupType, type CatalogueEntry } from '../twitch/catalogue.js';
import type { HelixDeps } from './helix.js';
import { helixError, isRecord, parseJson, type Reply, type Req } from './http.js';
import { randomId, rfc3339Nano } from './ids.js';
import type { StoredSubscription, TokenRecord } from './state.js';
import { twinKeyOf } from './sub-index.js';
import type { WireSubscription } from './types.js';

/**
 * Most subscriptions with the same type, version and condition: Twitch's docs say type and condition
 * (https://dev.twitch.tv/docs/eventsub/manage-subscriptions/#subscription-limits), RFC 0014 adds the version
 * (https://discuss.dev.twitch.tv/t/rfc-0014-eventsub-subscription-limit-changes/30312).
 */
export const MAX_PER_CONDITION = 3;

/**
 * Validates and stores a webhook subscription, answering 202 with status
 * webhook_callback_verification_pending; the verification starts once the answer is written.
 */
export function createSubscription(deps: HelixDeps, req: Req, caller: TokenRecord): Reply {
  const parsed = parseJson(req.body);
  if (!parsed.ok || !isRecord(parsed.value)) return helixError(400, 'The request body must be a JSON object');
  const body = parsed.value;
  const transport = body.transport;
  if (!isRecord(transport)) return helixError(400, 'Missing required parameter "transport"');
  if (transport.method === 'websocket') return helixError(400, 'websocket transport is not emulated');
  if (transport.method !== 'webhook' && transport.method !== 'conduit') return helixError(400, 'invalid transport method');
  if (caller.kind !== 'app') return helixError(401, 'auth must use app access token to create webhook subscription');

  const entry = typeof body.type === 'string' && typeof body.version === 'string' ? lookupType(body.type, body.version) : undefined;
  if (!entry) return helixError(400, 'invalid type and version combination');
  const condition = checkCondition(entry, body.condition);
  if (typeof condition === 'string') return helixError(400, condition);
  if (entry.clientIdField && condition[entry.clientIdField] !== caller.clientId) {
    return helixError(403, 'subscription missing proper authorization');
  }
  // A type tied to users needs each of them to have authorized this client with its scopes.
  const missing = missingGrants({ type: entry.type, version: entry.version, condition }, (userId) => deps.state.grants.grantOf(caller.clientId, userId)?.scopes);
  if (missing.length > 0) return helixError(403, 'subscription missing proper authorization');
  if (transport.method === 'conduit') {
    const conduitId = transport.conduit_id;
    if (typeof conduitId !== 'string' || !conduitId) return helixError(400, 'missing conduit_id for conduit transport');
    if (deps.conduits.get(conduitId)?.clientId !== caller.clientId) return helixError(400, 'conduit not found');
    return store(deps, caller.clientId, { entry, condition, conduitId, secret: '' });
  }
  const target = checkWebhook(transport);
  if (typeof target === 'string') return helixError(400, target);
  return store(deps, caller.clientId, { entry, condition, ...target });
}

interface Checked {
  entry: CatalogueEntry;
  condition: Record<string, string>;
  /** The webhook callback, or the conduit of a conduit subscription. */
  callback?: string;
  conduitId?: string;
  secret: string;
}

function store(deps: HelixDeps, clientId: string, checked: Checked): Reply {
  const { entry, condition, callback, conduitId, secret } = checked;
  // Indexed by the state: the live twins, the count and the live cost are O(1) lookups, not walks.
  const twins = deps.state.liveTwins(clientId, twinKeyOf(entry.type, entry.version, condition));
  if (twins.some((s) => s.wire.transport.callback === callback && s.wire.transport.conduit_id === conduitId)) return helixError(409, 'subscription already exists');
  if (twins.length >= MAX_PER_CONDITION) {
    return helixError(429, 'maximum subscriptions with type and condition exceeded');
  }
  const cost = costOf(deps, clientId, entry, condition);
  const before = deps.state.totals(clientId);
  const totalCost = before.totalCost + cost;
  // Assumption: Twitch's docs give no answer for going over max_total_cost; 403 with this message is ours.
  if (totalCost > deps.maxTotalCost) return helixError(403, 'subscription cost exceeds max total cost');

  const wire: WireSubscription = {
    id: randomId(),
    // Contract 5.1: conduit subscriptions are enabled at once.
    status: conduitId === undefined ? 'webhook_callback_verification_pending' : 'enabled',
    type: entry.type,
    version: entry.version,
    condition,
    created_at: rfc3339Nano(deps.clock.now()),
    transport: conduitId === undefined ? { method: 'webhook', callback: callback ?? '' } : { method: 'conduit', conduit_id: conduitId },
    cost,
  };
  const stored: StoredSubscription = deps.state.addSubscription({ wire, clientId, secret });
  return {
    status: 202,
    json: { data: [structuredClone(wire)], total: before.total + 1, total_cost: totalCost, max_total_cost: deps.maxTotalCost },
    after: conduitId === undefined ? () => deps.onCreated(stored) : undefined,
  };
}

/**
 * The condition as Twitch echoes it: every field of the type, unset optional ones as "" (clients must
 * normalise them, see wire.ts). Returns an error message for a 400 instead when the condition is wrong.
 */
function checkCondition(entry: CatalogueEntry, raw: unknown): Record<string, string> | string {
  if (!isRecord(raw)) return 'Missing required parameter "condition"';
  const known = [...entry.required, ...entry.optional, ...entry.exactlyOneOf];
  const out: Record<string, string> = {};
  for (const field of known) out[field] = '';
  for (const [field, value] of Object.entries(raw)) {
    if (!known.includes(field)) return `unknown condition field "${field}" for ${entry.type} version ${entry.version}`;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string') return `condition field "${field}" must be a string`;
    out[field] = value;
  }
  const missing = entry.required.find((field) => !out[field]);
  if (missing) return `missing required condition field "${missing}"`;
  if (entry.exactlyOneOf.length > 0 && entry.exactlyOneOf.filter((field) => out[field]).length !== 1) {
    return `exactly one of ${entry.exactlyOneOf.join(', ')} is required`;
  }
  return out;
}

/** Contract 5.1 (and 6.2 for conduit shards): callback https on port 443, secret 10-100 ASCII characters. */
export function checkWebhook(transport: Record<string, unknown>): { callback: string; secret: string } | string {
  const { callback, secret } = transport;
  if (typeof callback !== 'string' || !callback) return 'Missing required parameter "transport.callback"';
  let url: URL;
  try {
    url = new URL(callback);
  } catch {
    return 'invalid transport callback';
  }
  // WHATWG URL drops the default port, so an explicit ":443" also leaves `port` empty.
  if (url.protocol !== 'https:' || url.port !== '') return 'invalid transport callback: must be https on port 443';
  if (typeof secret !== 'string' || !/^\p{ASCII}{10,100}$/u.test(secret)) {
    return 'invalid transport secret: must be 10 to 100 ASCII characters';
  }
  return { callback, secret };
}

/** Contract 5.6: 0 when the type needs authorization or a user of the condition authorized the client, else 1. */
function costOf(deps: HelixDeps, clientId: string, entry: CatalogueEntry, condition: Record<string, string>): number {
  if (entry.requiresAuth) return 0;
  const users = Object.entries(condition).filter(([field, value]) => field.endsWith('user_id') && value);
  return users.some(([, userId]) => deps.state.isAuthorized(clientId, userId)) ? 0 : 1;
}
