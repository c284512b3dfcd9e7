/**
 * The emulated conduits (https://dev.twitch.tv/docs/eventsub/handling-conduit-events/, twitch-contract section 6):
 * `/helix/eventsub/conduits` (create, list, update shard_count, delete) and `/helix/eventsub/conduits/shards`
 * (get with pagination and status filter, update with per-shard `errors`), app token only. WebSocket shards go
 * through the `WsSessions` seam; webhook shards are settled like webhook subscriptions (verification mode).
 * Events for conduit subscriptions are routed to one shard by hashing the broadcaster id, with one retry on
 * another shard when that one is not enabled, then dropped and counted (`stats.conduitDropped`). A shard leaving
 * `enabled` is announced to `onShardDisabled` listeners (conduit.shard.disabled, see send-events.ts).
 */
import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import type { Clock } from '../lib/clock.js';
import { signMessage } from '../twitch/signature.js';
import { deliverWebhook } from './deliver.js';
import type { VerificationMode } from './deliveries.js';
import { notificationEnvelope, revocationEnvelope } from './eventsub-frames.js';
import { checkWebhook } from './helix-create.js';
import { helixError, isRecord, parseJson, type Reply, type Req } from './http.js';
import { randomAlnum, randomId, rfc3339Nano } from './ids.js';
import { LIVE_STATUSES, type EmulatorState, type StoredSubscription, type TokenRecord } from './state.js';
import type { EmulatorStats } from './types.js';
import type { WsSessions, WsSessionView } from './ws-sessions.js';

/** Contract 6.4: 5 enabled conduits per client ID, 20 000 shards per conduit. */
export const MAX_CONDUITS_PER_CLIENT = 5;
export const MAX_SHARDS_PER_CONDUIT = 20_000;
/** Shards per page of Get Conduit Shards. */
export const SHARD_PAGE_SIZE = 100;

const PENDING = 'webhook_callback_verification_pending';

export type ShardTransport =
  | { method: 'webhook'; callback: string; secret: string }
  | { method: 'websocket'; session_id: string; connected_at: string; disconnected_at?: string };

export interface ConduitShard {
  id: string;
  status: string;
  /** Absent for a shard never assigned. */
  transport?: ShardTransport;
}

/** What happened to one message for a subscription: its id, and the shard it went to or that it was dropped. */
export interface SentMessage {
  message_id: string;
  shard?: string;
  dropped?: true;
}

/** A message for a conduit subscription: a notification with its event, or a revocation. */
export type ConduitMessage = { messageType: 'notification'; event: Record<string, unknown> } | { messageType: 'revocation' };

export interface StoredConduit {
  id: string;
  clientId: string;
  shards: ConduitShard[];
}

export interface ConduitDeps {
  state: EmulatorState;
  stats: EmulatorStats;
  clock: Clock;
  wsSessions: WsSessions | undefined;
  verification: VerificationMode;
  deliverTo: URL | undefined;
  dispatcher: Dispatcher | undefined;
  signal: AbortSignal;
}

/** The close code of a WebSocket session as the shard status Twitch reports (contract 6.3 and 8.5). */
export function disconnectedStatus(closeCode: number | undefined): string {
  switch (closeCode) {
    case 4001:
      return 'websocket_received_inbound_traffic';
    case 4002:
      return 'websocket_failed_ping_pong';
    case 4000:
      return 'websocket_internal_error';
    case 4005:
      return 'websocket_network_timeout';
    case 4006:
      return 'websocket_network_error';
    case 4004:
      return 'websocket_failed_to_reconnect';
    default:
      return 'websocket_disconnected';
  }
}

/** Every conduit of the emulator, by id, and the Helix handlers that manage them. */
export class Conduits {
  readonly #deps: ConduitDeps;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #disabledListeners = new Set<(conduit: StoredConduit, shard: ConduitShard) => void>();

  constructor(deps: ConduitDeps) {
    this.#deps = deps;
    deps.wsSessions?.onDisconnect((session) => this.#onDisconnect(session));
  }

  /** Calls `listener` each time an enabled shard becomes disabled; returns the unsubscribe function. */
  onShardDisabled(listener: (conduit: StoredConduit, shard: ConduitShard) => void): () => void {
    this.#disabledListeners.add(listener);
    return () => this.#disabledListeners.delete(listener);
  }

  /** The shard each WebSocket session id is assigned to (by the id in the shard's transport). */
  shardsBySession(): Map<string, { conduit: StoredConduit; shard: ConduitShard }> {
    const out = new Map<string, { conduit: StoredConduit; shard: ConduitShard }>();
    for (const conduit of this.#deps.state.conduits.values()) {
      for (const shard of conduit.shards) if (shard.transport?.method === 'websocket') out.set(shard.transport.session_id, { conduit, shard });
    }
    return out;
  }

  /** A snapshot of the conduits (of one client, or all), oldest first. */
  list(clientId?: string): StoredConduit[] {
    return [...this.#deps.state.conduits.values()].filter((c) => clientId === undefined || c.clientId === clientId);
  }

  get(id: string): StoredConduit | undefined {
    return this.#deps.state.conduits.get(id);
  }

  /** Waits for the webhook shard verifications in flight. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /** Routes `/helix/eventsub/conduits` and `/helix/eventsub/conduits/shards`, app token only. */
  handle(req: Req, caller: TokenRecord): Reply {
    if (caller.kind !== 'app') return helixError(401, 'Must provide a valid app access token');
    if (req.path === '/helix/eventsub/conduits/shards') {
      if (req.method === 'GET') return this.#getShards(req, caller.clientId);
      if (req.method === 'PATCH') return this.#updateShards(req, caller.clientId);
      return { ...helixError(405, 'Method Not Allowed'), headers: { allow: 'GET, PATCH' } };
    }
    switch (req.method) {
      case 'GET':
        return { status: 200, json: { data: this.list(caller.clientId).map(wireConduit) } };
      case 'POST':
        return this.#create(req, caller.clientId);
      case 'PATCH':
        return this.#update(req, caller.clientId);
      case 'DELETE':
        return this.#delete(req, caller.clientId);
      default:
        return { ...helixError(405, 'Method Not Allowed'), headers: { allow: 'GET, POST, PATCH, DELETE' } };
    }
  }

  #create(req: Req, clientId: string): Reply {
    const body = jsonBody(req);
    if (!body) return helixError(400, 'The request body must be a JSON object');
    const count = shardCount(body.shard_count);
    if (count === undefined) return helixError(400, `shard_count must be an integer from 1 to ${MAX_SHARDS_PER_CONDUIT}`);
    if (this.list(clientId).length >= MAX_CONDUITS_PER_CLIENT) return helixError(429, 'conduit limit reached');
    const conduit: StoredConduit = { id: randomId(), clientId, shards: [] };
    resize(conduit, count);
    this.#deps.state.conduits.set(conduit.id, conduit);
    this.#deps.state.touch();
    return { status: 200, json: { data: [wireConduit(conduit)] } };
  }

  #update(req: Req, clientId: string): Reply {
    const body = jsonBody(req);
    if (!body) return helixError(400, 'The request body must be a JSON object');
    if (typeof body.id !== 'string' || !body.id) return helixError(400, 'Missing required parameter "id"');
    const count = shardCount(body.shard_count);
    if (count === undefined) return helixError(400, `shard_count must be an integer from 1 to ${MAX_SHARDS_PER_CONDUIT}`);
    const conduit = this.#owned(body.id, clientId);
    if (!conduit) return helixError(404, 'conduit not found');
    resize(conduit, count);
    this.#deps.state.touch();
    return { status: 200, json: { data: [wireConduit(conduit)] } };
  }

  /**
   * Deleting a conduit revokes its live subscriptions with `conduit_deleted` (contract 6.1 notes and 5.5; SPEC).
   * They are only marked: the revocation message would have to go through the conduit that no longer exists.
   * A subscription already revoked for another reason keeps that reason.
   */
  #delete(req: Req, clientId: string): Reply {
    const id = req.query.get('id');
    if (!id) return helixError(400, 'Missing required parameter "id"');
    if (!this.#owned(id, clientId)) return helixError(404, 'conduit not found');
    this.#deps.state.conduits.delete(id);
    for (const s of this.#deps.state.subscriptionsOf(clientId)) {
      const ofIt = s.wire.transport.method === 'conduit' && s.wire.transport.conduit_id === id;
      if (ofIt && LIVE_STATUSES.has(s.wire.status)) this.#deps.state.setSubscriptionStatus(s, 'conduit_deleted');
    }
    this.#deps.state.touch();
    return { status: 204 };
  }

  #getShards(req: Req, clientId: string): Reply {
    const id = req.query.get('conduit_id');
    if (!id) return helixError(400, 'Missing required parameter "conduit_id"');
    const conduit = this.#owned(id, clientId);
    if (!conduit) return helixError(404, 'conduit not found');
    const status = req.query.get('status');
    const after = req.query.get('after');
    let start = 0;
    if (after) {
      start = Number.parseInt(Buffer.from(after, 'base64url').toString('utf8'), 10);
      if (!Number.isInteger(start) || start < 0) return helixError(400, 'invalid cursor');
    }
    const matching = conduit.shards.filter((s) => !status || s.status === status);
    const page = matching.slice(start, start + SHARD_PAGE_SIZE);
    const next = start + SHARD_PAGE_SIZE;
    const pagination = next < matching.length ? { cursor: Buffer.from(String(next)).toString('base64url') } : {};
    return { status: 200, json: { data: page.map(wireShard), pagination } };
  }

  #updateShards(req: Req, clientId: string): Reply {
    const body = jsonBody(req);
    if (!body) return helixError(400, 'The request body must be a JSON object');
    if (typeof body.conduit_id !== 'string' || !body.conduit_id) return helixError(400, 'Missing required parameter "conduit_id"');
    if (!Array.isArray(body.shards) || body.shards.length === 0) return helixError(400, 'Missing required parameter "shards"');
    const conduit = this.#owned(body.conduit_id, clientId);
    if (!conduit) return helixError(404, 'conduit not found');
    const data: unknown[] = [];
    const errors: { id: string; message: string; code: string }[] = [];
    const toVerify: ConduitShard[] = [];
    for (const raw of body.shards as unknown[]) {
      const id = isRecord(raw) && typeof raw.id === 'string' ? raw.id : '';
      const shard = conduit.shards[Number(id)];
      if (!shard || String(Number(id)) !== id) {
        errors.push({ id, message: "The shard id is outside the conduit's range", code: 'invalid_parameter' });
        continue;
      }
      const assigned = this.#assign(isRecord(raw) ? raw.transport : undefined);
      if (typeof assigned === 'string') {
        errors.push({ id, message: assigned, code: 'invalid_parameter' });
        continue;
      }
      shard.transport = assigned;
      shard.status = assigned.method === 'webhook' ? PENDING : 'enabled';
      if (assigned.method === 'webhook') toVerify.push(shard);
      data.push(wireShard(shard));
    }
    this.#deps.state.touch();
    return { status: 202, json: { data, errors }, after: () => toVerify.forEach((s) => this.#verify(conduit, s)) };
  }

  /** The new transport of a shard, or the per-shard error message Twitch documents (contract 6.2). */
  #assign(transport: unknown): ShardTransport | string {
    if (!isRecord(transport)) return 'Missing required parameter "transport"';
    if (transport.method === 'webhook') {
      const checked = checkWebhook(transport);
      return typeof checked === 'string' ? checked : { method: 'webhook', ...checked };
    }
    if (transport.method === 'websocket') {
      const sessionId = transport.session_id;
      if (typeof sessionId !== 'string' || !sessionId) return 'The session_id is missing for the websocket transport';
      const session = this.#deps.wsSessions?.get(sessionId);
      if (!session || session.status !== 'connected' || !this.#deps.wsSessions?.assign(sessionId)) return 'The websocket session is not connected';
      return { method: 'websocket', session_id: sessionId, connected_at: session.connectedAt };
    }
    return 'The transport method is invalid';
  }

  /** A closed session disables the shards assigned to it, under its id or an id it had before a reconnect. */
  #onDisconnect(session: WsSessionView): void {
    const ids = new Set([session.id, ...(session.formerIds ?? [])]);
    const disabled: [StoredConduit, ConduitShard][] = [];
    for (const conduit of this.#deps.state.conduits.values()) {
      for (const shard of conduit.shards) {
        if (shard.transport?.method !== 'websocket' || !ids.has(shard.transport.session_id)) continue;
        if (shard.status === 'enabled') disabled.push([conduit, shard]);
        shard.status = disconnectedStatus(session.closeCode);
        shard.transport.disconnected_at = session.disconnectedAt ?? rfc3339Nano(this.#deps.clock.now());
      }
    }
    this.#deps.state.touch();
    for (const [conduit, shard] of disabled) this.#announceDisabled(conduit, shard);
  }

  #announceDisabled(conduit: StoredConduit, shard: ConduitShard): void {
    for (const listener of [...this.#disabledListeners]) {
      try {
        listener(conduit, shard);
      } catch {
        // A listener's failure must not stop the others; the listeners log their own.
      }
    }
  }

  /** Settles a webhook shard like a webhook subscription: accept, reject, or a challenge to `deliverTo`. */
  #verify(conduit: StoredConduit, shard: ConduitShard): void {
    const transport = shard.transport;
    if (transport?.method !== 'webhook') return;
    const { verification, deliverTo } = this.#deps;
    if (verification !== 'deliver' || !deliverTo) {
      shard.status = verification === 'reject' ? 'webhook_callback_verification_failed' : 'enabled';
      this.#deps.state.touch();
      return;
    }
    const task = this.#challenge(conduit, shard, transport, deliverTo).finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
  }

  async #challenge(conduit: StoredConduit, shard: ConduitShard, transport: { callback: string; secret: string }, deliverTo: URL): Promise<void> {
    const callback = new URL(transport.callback);
    const url = new URL(`${callback.pathname}${callback.search}`, deliverTo);
    const challenge = randomAlnum(32);
    const body = JSON.stringify({ challenge, conduit_shard: { conduit_id: conduit.id, shard: shard.id } });
    const messageId = randomId();
    const timestamp = rfc3339Nano(this.#deps.clock.now());
    let ok: boolean;
    try {
      this.#deps.stats.verificationsSent += 1;
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.#deps.dispatcher,
        signal: this.#deps.signal,
        headers: {
          'content-type': 'application/json',
          'twitch-eventsub-message-id': messageId,
          'twitch-eventsub-message-retry': '0',
          'twitch-eventsub-message-type': 'webhook_callback_verification',
          'twitch-eventsub-message-signature': signMessage(transport.secret, messageId, timestamp, body),
          'twitch-eventsub-message-timestamp': timestamp,
        },
        body,
      });
      ok = res.statusCode === 200 && (await res.body.text()) === challenge;
    } catch {
      ok = false;
    }
    if (shard.transport !== transport) return;
    shard.status = ok ? 'enabled' : 'webhook_callback_verification_failed';
    this.#deps.state.touch();
  }

  #owned(id: string, clientId: string): StoredConduit | undefined {
    const conduit = this.#deps.state.conduits.get(id);
    return conduit?.clientId === clientId ? conduit : undefined;
  }

  /**
   * The shard an event for `broadcasterId` goes to: the hashed one when enabled, else one other shard when
   * enabled (Twitch retries once), else undefined (dropped).
   */
  pick(conduit: StoredConduit, broadcasterId: string): ConduitShard | undefined {
    const n = conduit.shards.length;
    if (n === 0) return undefined;
    const first = createHash('sha256').update(broadcasterId).digest().readUInt32BE(0) % n;
    const candidates = n > 1 ? [first, (first + 1) % n] : [first];
    return candidates.map((i) => conduit.shards[i]!).find((s) => s.status === 'enabled');
  }

  /**
   * Sends `event` for a conduit subscription to one shard: a `notification` frame over the WebSocket session or a
   * signed webhook POST (to `deliverTo`). Returns the shard id used, or undefined when the event was dropped
   * (counted in `stats.conduitDropped`).
   */
  deliver(subscription: StoredSubscription, event: Record<string, unknown>): string | undefined {
    return this.send(subscription, { messageType: 'notification', event }, 1)[0]!.shard;
  }

  /**
   * Sends `count` messages for a conduit subscription, each to the shard its broadcaster hashes to (one retry on
   * another enabled shard, else dropped and counted in `stats.conduitDropped`; each one sent counts in
   * `stats.conduitSent`). Nothing is awaited: a WebSocket frame is queued on its socket, a webhook shard's POST
   * runs in the background (awaited by `drain()`), so a burst of thousands goes out at the speed of the loop.
   */
  send(subscription: StoredSubscription, message: ConduitMessage, count: number): SentMessage[] {
    const { transport } = subscription.wire;
    const conduit = transport.method === 'conduit' ? this.#deps.state.conduits.get(transport.conduit_id) : undefined;
    const broadcaster = broadcasterOf(subscription.wire.condition, message.messageType === 'notification' ? message.event : {});
    // One copy for the whole burst: nothing mutates it, and each frame is serialised as it is sent.
    const wire = structuredClone(subscription.wire);
    const out: SentMessage[] = [];
    for (let i = 0; i < count; i += 1) {
      const messageId = randomId();
      const shard = conduit ? this.pick(conduit, broadcaster) : undefined;
      if (shard && this.#sendTo(shard, { wire, message, messageId })) {
        this.#deps.stats.conduitSent += 1;
        out.push({ message_id: messageId, shard: shard.id });
      } else {
        this.#deps.stats.conduitDropped += 1;
        out.push({ message_id: messageId, dropped: true });
      }
    }
    return out;
  }

  #sendTo(shard: ConduitShard, m: { wire: StoredSubscription['wire']; message: ConduitMessage; messageId: string }): boolean {
    const t = shard.transport;
    const { wire, message, messageId } = m;
    if (t?.method === 'websocket') {
      const now = this.#deps.clock.now();
      const frame = message.messageType === 'notification' ? notificationEnvelope(wire, message.event, now, messageId) : revocationEnvelope(wire, now, messageId);
      return this.#deps.wsSessions?.send(t.session_id, frame) ?? false;
    }
    if (t?.method !== 'webhook' || !this.#deps.deliverTo) return false;
    const callback = new URL(t.callback);
    const url = new URL(`${callback.pathname}${callback.search}`, this.#deps.deliverTo).toString();
    const task = deliverWebhook({
      url,
      secret: t.secret,
      messageType: message.messageType,
      messageId,
      subscription: wire,
      ...(message.messageType === 'notification' ? { event: message.event } : {}),
      dispatcher: this.#deps.dispatcher,
      clock: this.#deps.clock,
      signal: this.#deps.signal,
    })
      .then(() => undefined, () => undefined)
      .finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
    return true;
  }
}

/** The channel an event belongs to: the condition's broadcaster (or user) id, else the event's. */
function broadcasterOf(condition: Record<string, string>, event: Record<string, unknown>): string {
  const fromCondition = condition.broadcaster_user_id || condition.to_broadcaster_user_id || condition.user_id || condition.client_id;
  if (fromCondition) return fromCondition;
  const fromEvent = event.broadcaster_user_id;
  return typeof fromEvent === 'string' ? fromEvent : '';
}

function jsonBody(req: Req): Record<string, unknown> | undefined {
  const parsed = parseJson(req.body);
  return parsed.ok && isRecord(parsed.value) ? parsed.value : undefined;
}

function shardCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_SHARDS_PER_CONDUIT ? value : undefined;
}

/** Growing adds unassigned shards; lowering drops the shards above the new count (contract 6.1). */
function resize(conduit: StoredConduit, count: number): void {
  conduit.shards.length = Math.min(conduit.shards.length, count);
  for (let i = conduit.shards.length; i < count; i += 1) conduit.shards.push({ id: String(i), status: 'websocket_disconnected' });
}

function wireConduit(conduit: StoredConduit): { id: string; shard_count: number } {
  return { id: conduit.id, shard_count: conduit.shards.length };
}

/** A conduit for the control API: Twitch's fields, its client, and its shards as Get Conduit Shards shows them. */
export function wireConduitWithShards(conduit: StoredConduit): { id: string; client_id: string; shard_count: number; shards: unknown[] } {
  return { ...wireConduit(conduit), client_id: conduit.clientId, shards: conduit.shards.map(wireShard) };
}

/** A shard as Twitch shows it: the secret is never echoed. */
function wireShard(shard: ConduitShard): unknown {
  const t = shard.transport;
  if (!t) return { id: shard.id, status: shard.status, transport: {} };
  const transport = t.method === 'webhook' ? { method: 'webhook', callback: t.callback } : { ...t };
  return { id: shard.id, status: shard.status, transport };
}
