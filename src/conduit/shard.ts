/**
 * One shard of a conduit held as one outbound EventSub WebSocket (SPEC "Conduit transport", "Each shard";
 * twitch-contract.md 8.1-8.6; https://dev.twitch.tv/docs/eventsub/handling-websocket-events/). The shard connects,
 * has each welcomed session assigned to it at once (Twitch closes an unassigned one after 10 s with 4003), watches
 * the keepalive, follows `session_reconnect` make-before-break, and reconnects with capped backoff whatever the
 * close code. It never sends a data frame or a ping: `ws` answers pings with pongs, and the shard sends close
 * frames; anything else is inbound traffic Twitch punishes with 4001.
 */
import { WebSocket, type RawData } from 'ws';
import { settleWithin, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/retry.js';
import type { ReceivedSubscription } from '../receiver/types.js';
import { closeMeaning, parseShardFrame, type ShardFrame } from './shard-frames.js';

/** A notification or revocation frame, validated. The caller de-duplicates on `messageId` and journals. */
export interface ShardMessage {
  shardId: string;
  /** metadata.message_id */
  messageId: string;
  messageType: 'notification' | 'revocation';
  /** metadata.message_timestamp, as sent */
  timestamp: string;
  subscription: ReceivedSubscription;
  event?: unknown;
  /** Batched types (`drop.entitlement.grant`), as sent. */
  events?: unknown[];
}

export interface ShardOptions {
  /** The shard id in the conduit: "0", "1", ... */
  shardId: string;
  /** TWITCH_EVENTSUB_WS_URL, used exactly as given for every fresh connection. */
  url: string;
  clock: Clock;
  logger: Logger;
  /**
   * PATCHes the shard to this session (the integrator calls Helix). Rejects with an AppError when Twitch refuses
   * (per-shard error) or cannot be reached: the shard then closes that socket and reconnects with backoff.
   * `signal` aborts when the socket closes or the shard is closed.
   */
  assign(sessionId: string, signal: AbortSignal): Promise<void>;
  /** Called synchronously, in arrival order, for every notification/revocation frame; never awaited. */
  onMessage(message: ShardMessage): void;
  /** Called on every change of state, session or close code (not on each message), for /status and STATUS=. */
  onChange?(view: ShardView): void;
  /** Connect + welcome must arrive within this, in ms. Default 10 000. */
  welcomeTimeoutMs?: number;
  /** Added to the welcome's `keepalive_timeout_seconds` before a silent connection is declared dead, in ms. Default 3 000. */
  keepaliveMarginMs?: number;
  /** Capped exponential backoff with jitter between fresh connections, in ms. Default 1 000 / 30 000. */
  backoff?: { baseMs: number; maxMs: number };
  /** The largest frame read, in bytes; a bigger one makes `ws` close with 1009, and the shard reconnects. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Returns a number in [0, 1), for the jitter. Default Math.random. */
  random?: () => number;
}

export type ShardState = 'connecting' | 'assigning' | 'assigned' | 'backoff' | 'closed';

export interface ShardView {
  id: string;
  state: ShardState;
  /** The session the shard is (being) assigned to; null between connections. */
  sessionId: string | null;
  /** Epoch ms of that session's welcome. */
  sessionStartedAt: number | null;
  /** Epoch ms of the last frame of any kind (pings do not count). */
  lastMessageAt: number | null;
  /** Connections opened after the first: fresh ones after a loss, and moves to a reconnect URL. */
  reconnects: number;
  /** Notifications and revocations handed to onMessage. */
  messages: number;
  /** Frames ignored as not of the contract: bad JSON, a missing field, a binary frame. */
  malformedFrames: number;
  /** The close code of the last connection lost (1006: dropped without a close frame). */
  lastCloseCode: number | null;
  /** Why the last connection ended, or the last assignment failed; no frame content, no secrets. */
  lastError: string | null;
}

/** A socket the server closed with this, or none at all, while the shard closes: waits this long, then drops it. */
const CLOSE_GRACE_MS = 1_000;
/** Unknown message types remembered for "warn once per type"; a hostile server cannot make it grow beyond this. */
const MAX_UNKNOWN_TYPES = 100;
/** Bad frames (malformed, binary) each logged before the log thins out to one in MALFORMED_LOG_EVERY. */
const MALFORMED_LOGGED = 10;
const MALFORMED_LOG_EVERY = 1000;

/** What a socket is to the shard: the connection in use, the one replacing it after session_reconnect, or one on its way out. */
type Role = 'primary' | 'successor' | 'retired';

interface Conn {
  readonly ws: WebSocket;
  role: Role;
  sessionId: string | null;
  keepaliveMs: number | null;
  lastFrameAt: number;
  /** Epoch ms the session was assigned (carried over by a move that keeps the session id). */
  assignedAt: number | null;
  /** Why the connection ended, when known before its close: the shard's own decision, or a socket error. */
  endedBy: string | null;
  /** The end was already logged where it was decided (welcome timeout, silence, assignment refused). */
  announced: boolean;
  /** A successor to the configured URL, opened because the reconnect URL failed: no second fallback after it. */
  fallback: boolean;
  /** Aborted when the socket closes: its timers and an assignment in flight. */
  readonly timers: AbortController;
  /** Aborted at the welcome: the welcome timer. */
  readonly welcome: AbortController;
  readonly closed: Promise<void>;
}

export class Shard {
  readonly #o: ShardOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #stopping = new AbortController();
  readonly #conns = new Set<Conn>();
  readonly #unknownTypes = new Set<string>();
  #primary: Conn | undefined;
  #successor: Conn | undefined;
  /** Consecutive connections lost without one that was assigned and healthy for a keepalive period. */
  #attempt = 0;
  #started = false;
  #closing: Promise<void> | undefined;
  #view: ShardView;

  constructor(options: ShardOptions) {
    this.#o = options;
    this.#clock = options.clock;
    this.#logger = options.logger.child({ component: 'shard', shard: options.shardId });
    this.#view = {
      id: options.shardId,
      state: 'connecting',
      sessionId: null,
      sessionStartedAt: null,
      lastMessageAt: null,
      reconnects: 0,
      messages: 0,
      malformedFrames: 0,
      lastCloseCode: null,
      lastError: null,
    };
  }

  /** Opens the first connection; later ones follow by themselves until close(). Idempotent. */
  start(): void {
    if (this.#started || this.#stopping.signal.aborted) return;
    this.#started = true;
    this.#connectFresh();
  }

  /**
   * Assigns the current session again (the conduit was replaced: the new conduit's shard must point at it). A
   * refusal ends the connection like a failed first assignment, and the shard reconnects. No-op without a session.
   */
  reassign(): void {
    const conn = this.#primary;
    if (!conn || conn.sessionId === null || conn.role === 'retired' || this.#stopping.signal.aborted) return;
    if (this.#successor) return; // a move in progress assigns its new session itself
    this.#update({ state: 'assigning' });
    void this.#assign(conn);
  }

  /** A copy of the shard's state. */
  view(): ShardView {
    return { ...this.#view };
  }

  /**
   * Stops reconnecting, cancels every timer and assignment in flight, sends a close frame (1000) on every open
   * socket and resolves once they are closed (those that do not answer within ~1 s are dropped). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#stopping.abort();
    this.#update({ state: 'closed' });
    const conns = [...this.#conns];
    for (const conn of conns) {
      conn.role = 'retired';
      conn.endedBy ??= 'The shard is closing';
      conn.timers.abort();
      conn.welcome.abort();
      closeSocket(conn.ws, 1000);
    }
    const all = Promise.all(conns.map((c) => c.closed));
    if ((await settleWithin(all, CLOSE_GRACE_MS, this.#clock)) === 'late') for (const conn of conns) conn.ws.terminate();
    await all;
    this.#primary = undefined;
    this.#successor = undefined;
  }

  #connectFresh(): void {
    this.#update({ state: 'connecting', sessionId: null, sessionStartedAt: null });
    const conn = this.#open(this.#o.url, 'primary');
    if (conn) this.#primary = conn;
    else this.#scheduleReconnect();
  }

  /** Opens a socket and wires it; undefined (said in the log) when `ws` refuses the URL itself. */
  #open(url: string, role: Role): Conn | undefined {
    let ws: WebSocket;
    try {
      // No permessage-deflate: frames are small, and inflating is where a hostile server's bytes would multiply.
      ws = new WebSocket(url, { maxPayload: this.#o.maxFrameBytes ?? 1024 * 1024, perMessageDeflate: false, followRedirects: false });
    } catch (err) {
      this.#logger.error('Cannot open the EventSub WebSocket: the URL is not valid', { role, err });
      this.#update({ lastError: `Cannot open the EventSub WebSocket: ${(err as Error).message}` });
      return undefined;
    }
    let resolveClosed!: () => void;
    const conn: Conn = {
      ws,
      role,
      sessionId: null,
      keepaliveMs: null,
      lastFrameAt: this.#clock.now(),
      assignedAt: null,
      endedBy: null,
      announced: false,
      fallback: false,
      timers: new AbortController(),
      welcome: new AbortController(),
      closed: new Promise<void>((resolve) => (resolveClosed = resolve)),
    };
    this.#conns.add(conn);
    ws.on('open', () => this.#logger.debug('EventSub WebSocket open, waiting for its welcome', { role: conn.role }));
    ws.on('message', (data: RawData, isBinary: boolean) => this.#onFrame(conn, data, isBinary));
    // 'error' is always followed by 'close', where the connection's end is handled; here it is only recorded.
    ws.on('error', (err: Error) => {
      this.#logger.debug('EventSub WebSocket error', { role: conn.role, err });
      conn.endedBy ??= `EventSub WebSocket error: ${err.message}`;
    });
    ws.on('close', (code: number) => {
      resolveClosed();
      this.#onClose(conn, code);
    });
    this.#after(this.#o.welcomeTimeoutMs ?? 10_000, AbortSignal.any([conn.timers.signal, conn.welcome.signal]), () => {
      conn.endedBy = `No session_welcome within ${this.#o.welcomeTimeoutMs ?? 10_000} ms of connecting`;
      conn.announced = true;
      if (conn.role !== 'retired') this.#logger.warn('No session_welcome in time: dropping the connection', { role: conn.role, timeoutMs: this.#o.welcomeTimeoutMs ?? 10_000 });
      conn.ws.terminate();
    });
    return conn;
  }

  #onFrame(conn: Conn, data: RawData, isBinary: boolean): void {
    const now = this.#clock.now();
    conn.lastFrameAt = now;
    this.#view.lastMessageAt = now;
    const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const bytes = buffer.length;
    if (isBinary) {
      this.#view.malformedFrames++;
      if (this.#shouldWarnMalformed()) this.#logger.warn('Ignored a binary frame: EventSub sends only text', { bytes, malformedFrames: this.#view.malformedFrames });
      return;
    }
    this.#handle(conn, parseShardFrame(buffer.toString('utf8')), bytes);
  }

  #handle(conn: Conn, frame: ShardFrame, bytes: number): void {
    switch (frame.kind) {
      case 'notification':
      case 'revocation':
        return this.#deliver(frame);
      case 'session_keepalive':
        return;
      case 'session_welcome':
        return this.#onWelcome(conn, frame.sessionId, frame.keepaliveSeconds);
      case 'session_reconnect':
        return this.#onReconnect(conn, frame.reconnectUrl);
      case 'unknown':
        if (!this.#unknownTypes.has(frame.messageType) && this.#unknownTypes.size < MAX_UNKNOWN_TYPES) {
          this.#unknownTypes.add(frame.messageType);
          this.#logger.warn('Ignoring frames of an unknown message_type', { messageType: frame.messageType, messageId: frame.messageId });
        }
        return;
      case 'malformed':
        this.#view.malformedFrames++;
        if (this.#shouldWarnMalformed()) {
          this.#logger.warn('Ignored a malformed frame', { reason: frame.reason, messageId: frame.messageId, messageType: frame.messageType, bytes, malformedFrames: this.#view.malformedFrames });
        }
        return;
    }
  }

  /** The first few bad frames are each logged, then one in MALFORMED_LOG_EVERY: a hostile server cannot flood the log. */
  #shouldWarnMalformed(): boolean {
    const n = this.#view.malformedFrames;
    return n <= MALFORMED_LOGGED || n % MALFORMED_LOG_EVERY === 0;
  }

  #deliver(frame: Extract<ShardFrame, { kind: 'notification' | 'revocation' }>): void {
    const message: ShardMessage = {
      shardId: this.#o.shardId,
      messageId: frame.messageId,
      messageType: frame.kind,
      timestamp: frame.timestamp,
      subscription: frame.subscription,
    };
    if (frame.event !== undefined) message.event = frame.event;
    if (frame.events !== undefined) message.events = frame.events;
    this.#view.messages++;
    try {
      this.#o.onMessage(message);
    } catch (err) {
      this.#logger.error('onMessage threw: a bug in the caller', { messageId: frame.messageId, err });
    }
  }

  /** A welcome: the keepalive watch starts, and the session is assigned at once (or taken over after a move). */
  #onWelcome(conn: Conn, sessionId: string, keepaliveSeconds: number): void {
    if (conn.sessionId !== null || conn.role === 'retired') {
      this.#logger.warn('Ignored a second session_welcome on one connection', { role: conn.role });
      return;
    }
    conn.sessionId = sessionId;
    conn.keepaliveMs = keepaliveSeconds * 1000;
    conn.welcome.abort();
    void this.#watchKeepalive(conn);
    if (conn.role === 'primary') {
      this.#update({ state: 'assigning', sessionId, sessionStartedAt: this.#clock.now() });
      void this.#assign(conn);
    } else if (sessionId === this.#primary?.sessionId && this.#primary.assignedAt !== null) {
      // The same session, already assigned: nothing to PATCH (a move before the first assignment completed PATCHes again).
      this.#promote(conn);
    } else {
      void this.#assign(conn);
    }
  }

  async #assign(conn: Conn): Promise<void> {
    const sessionId = conn.sessionId!;
    try {
      await this.#o.assign(sessionId, conn.timers.signal);
    } catch (err) {
      if (conn.timers.signal.aborted || conn.role === 'retired') return;
      const message = err instanceof Error ? err.message : String(err);
      conn.endedBy = `The shard could not be assigned to its session: ${message}`;
      conn.announced = true;
      this.#update({ lastError: conn.endedBy });
      this.#logger.warn('The shard could not be assigned to its session: closing the connection', { role: conn.role, err });
      closeSocket(conn.ws, 1000);
      this.#after(CLOSE_GRACE_MS, conn.timers.signal, () => conn.ws.terminate());
      return;
    }
    if (conn.timers.signal.aborted || conn.role === 'retired') return;
    conn.assignedAt = this.#clock.now();
    if (conn.role === 'successor') return this.#promote(conn);
    this.#update({ state: 'assigned' });
    this.#logger.info('Shard assigned to its session', { keepaliveSeconds: conn.keepaliveMs! / 1000 });
  }

  /**
   * https://dev.twitch.tv/docs/eventsub/handling-websocket-events/#reconnect-message: open `reconnect_url` exactly
   * as given and keep reading this socket until the new one's welcome. One move at a time.
   */
  #onReconnect(conn: Conn, reconnectUrl: string): void {
    if (conn !== this.#primary || this.#successor) {
      this.#logger.debug('Ignored a session_reconnect on a connection already moving or replaced', { role: conn.role });
      return;
    }
    this.#logger.info('Twitch asked the shard to reconnect: opening the reconnect URL, reading the old socket meanwhile');
    this.#view.reconnects++;
    this.#successor = this.#open(reconnectUrl, 'successor');
  }

  /** The successor is welcomed (and assigned when its session is new): it becomes the connection, the old one is closed. */
  #promote(conn: Conn): void {
    const old = this.#primary;
    this.#successor = undefined;
    this.#primary = conn;
    conn.role = 'primary';
    const sameSession = old?.sessionId === conn.sessionId;
    conn.assignedAt = sameSession ? (old?.assignedAt ?? this.#clock.now()) : conn.assignedAt;
    if (old) this.#retire(old, 'Moved to the reconnect URL');
    this.#update({
      state: 'assigned',
      sessionId: conn.sessionId,
      sessionStartedAt: sameSession ? this.#view.sessionStartedAt : this.#clock.now(),
    });
    this.#logger.info('Shard moved to its reconnect URL', { sameSession });
  }

  /** A close frame (1000) on a socket that no longer matters, dropped if unanswered within ~1 s. */
  #retire(conn: Conn, why: string): void {
    conn.role = 'retired';
    conn.endedBy ??= why;
    closeSocket(conn.ws, 1000);
    this.#after(CLOSE_GRACE_MS, conn.timers.signal, () => conn.ws.terminate());
  }

  /**
   * https://dev.twitch.tv/docs/eventsub/handling-websocket-events/#keepalive-message: no frame of any kind (pings
   * excluded, `ws` does not count them) for keepalive_timeout_seconds + the margin means the connection is dead.
   */
  async #watchKeepalive(conn: Conn): Promise<void> {
    const limit = conn.keepaliveMs! + (this.#o.keepaliveMarginMs ?? 3_000);
    try {
      for (let left = limit; left > 0; left = conn.lastFrameAt + limit - this.#clock.now()) {
        await this.#clock.sleep(left, conn.timers.signal);
      }
    } catch {
      return; // the socket closed
    }
    conn.endedBy = `No message for ${limit} ms (keepalive_timeout_seconds + margin): connection presumed dead`;
    conn.announced = true;
    if (conn.role !== 'retired') this.#logger.warn('No message within the keepalive timeout: dropping the connection', { role: conn.role, limitMs: limit });
    conn.ws.terminate();
  }

  #onClose(conn: Conn, code: number): void {
    conn.timers.abort();
    conn.welcome.abort();
    this.#conns.delete(conn);
    if (conn.role === 'retired' || this.#stopping.signal.aborted) return;
    const why = conn.endedBy ?? `Closed by the server: ${code} (${closeMeaning(code).meaning})`;
    if (conn.role === 'successor') {
      this.#successor = undefined;
      this.#update({ lastError: `The move to the reconnect URL failed: ${why}` });
      // Make-before-break all the same: a fresh session beside the old one, assigned in its place once welcomed,
      // rather than waiting for Twitch to close the old one (4004) and reconnecting after it with a gap.
      const next = conn.fallback || !this.#primary ? undefined : this.#open(this.#o.url, 'successor');
      if (next) {
        next.fallback = true;
        this.#successor = next;
        this.#logger.warn('The reconnect URL failed: opening a fresh connection, the old one is read until it is assigned', { code, reason: why });
      } else {
        this.#logger.warn('The reconnect URL failed: keeping the old connection until it closes', { code, reason: why });
      }
      return;
    }
    this.#primary = undefined;
    const successor = this.#successor;
    if (successor) {
      this.#successor = undefined;
      successor.role = 'retired';
      successor.ws.terminate();
    }
    if (!conn.announced) {
      const { level, meaning } = closeMeaning(code);
      this.#logger[level]('EventSub WebSocket closed: reconnecting', { code, meaning, error: conn.endedBy ?? undefined });
    }
    // Backoff starts over after a connection that was assigned and healthy for a keepalive period.
    if (conn.assignedAt !== null && this.#clock.now() - conn.assignedAt >= (conn.keepaliveMs ?? 10_000)) this.#attempt = 0;
    this.#scheduleReconnect({ lastCloseCode: code, lastError: why });
  }

  #scheduleReconnect(change: Partial<ShardView> = {}): void {
    this.#attempt++;
    const delayMs = backoffDelay(this.#attempt, { ...(this.#o.backoff ?? { baseMs: 1_000, maxMs: 30_000 }), random: this.#o.random });
    this.#update({ ...change, state: 'backoff', sessionId: null, sessionStartedAt: null });
    this.#logger.info('Reconnecting after a backoff', { attempt: this.#attempt, delayMs });
    this.#after(delayMs, this.#stopping.signal, () => {
      this.#view.reconnects++;
      this.#connectFresh();
    });
  }

  /** Runs `fn` after `ms` on the clock, unless `signal` aborts first. */
  #after(ms: number, signal: AbortSignal, fn: () => void): void {
    this.#clock.sleep(ms, signal).then(
      () => {
        if (!signal.aborted) fn();
      },
      () => undefined,
    );
  }

  #update(change: Partial<ShardView>): void {
    this.#view = { ...this.#view, ...change };
    try {
      this.#o.onChange?.(this.view());
    } catch (err) {
      this.#logger.error('onChange threw: a bug in the caller', { err });
    }
  }
}

/** A close frame when the socket is open; a connecting one is aborted (`ws` does so for close()). */
function closeSocket(ws: WebSocket, code: number): void {
  if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code);
}
