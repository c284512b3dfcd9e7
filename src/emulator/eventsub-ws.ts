/**
 * The emulator's EventSub WebSocket server (Twitch's `wss://eventsub.wss.twitch.tv/ws`, here `ws://` on
 * loopback), attached to an existing node:http server's `upgrade` event. It only sends: a welcome, keepalives,
 * what the conduit side hands to `send()`, and `session_reconnect` on a control call; any client frame but a
 * pong closes the socket with 4001. Behaviour: https://dev.twitch.tv/docs/eventsub/handling-websocket-events/
 * and twitch-contract.md section 8.
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { systemClock, type Clock } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import {
  EVENTSUB_CLOSE_REASONS,
  eventSubEnvelope,
  parseKeepalive,
  randomReconnectToken,
  randomSessionId,
  type EventSubCloseCode,
} from './eventsub-frames.js';
import { rfc3339Nano } from './ids.js';
import type { WsSessions, WsSessionStatus, WsSessionView } from './ws-sessions.js';

export interface EventSubWsOptions {
  clock?: Clock;
  logger?: Logger;
  /** The upgrade path served. Default `/ws`, as Twitch's. */
  path?: string;
  /** `keepalive_timeout_seconds` when the query has none. Default 10 (Twitch's). */
  keepaliveDefaultSeconds?: number;
  /** A session not assigned within this time after its welcome is closed with 4003. Default 10 000 ms. */
  unusedCloseMs?: number;
  /** After `session_reconnect`, the old socket is closed with 4004 this much later. Default 30 000 ms. */
  reconnectGraceMs?: number;
  /**
   * Whether the welcome on a reconnect URL carries a new session id. Twitch's docs leave it open
   * (twitch-contract 8.4, UNCONFIRMED); twitch-cli's mock issues a new one, and so does this server by default.
   * With a new id, a shard assigned to the old id keeps receiving its events on the new socket until the client
   * assigns the shard to the new id (contract 8.4: "if the ID differs, PATCH the shard").
   */
  reconnectNewSessionId?: boolean;
  /** When set, a ping every this many ms; no pong before the next ping closes with 4002. Default: no pings. */
  pingIntervalMs?: number;
  /** The largest client frame read; a bigger one is refused by `ws` (close 1009). Default 64 KiB. */
  maxPayloadBytes?: number;
  /** Closed sessions remembered for `get()` (shard statuses); the oldest are forgotten first. Default 1000. */
  maxClosedSessions?: number;
  /** How long `close()` waits for clients to answer the close frame before dropping them. Default 1000 ms. */
  closeGraceMs?: number;
}

/** The server and its control functions. */
export interface EventSubWsServer {
  sessions: WsSessions;
  /** Every session known (connected, reconnecting, and the last closed ones), oldest first. */
  list(): WsSessionView[];
  /**
   * Takes an HTTP upgrade request: false, touching nothing, when its path is not ours (the caller answers);
   * true otherwise, the request accepted or refused (400 for a `keepalive_timeout_seconds` that is not an integer).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Sends `session_reconnect` to one session (or to every connected one); returns the ids it was sent to, each
   * with its reconnect URL. `graceMs` and `newSessionId` override the server's options for these reconnects.
   */
  reconnect(sessionId?: string, options?: ReconnectOptions): ReconnectSent[];
  /** Closes a session with one of Twitch's close codes (4000-4007); false when it is not connected. */
  closeSession(sessionId: string, code: EventSubCloseCode): boolean;
  /** Drops a session's TCP connection without a close frame (a network failure); false when not connected. */
  terminateSession(sessionId: string): boolean;
  /** Closes every socket with 1001, refuses later upgrades with 503. Idempotent. */
  close(): Promise<void>;
}

export interface ReconnectOptions {
  /** The old socket is closed with 4004 this long after `session_reconnect` (default: the server's `reconnectGraceMs`). */
  graceMs?: number;
  /** The welcome on the reconnect URL carries a new session id (default: the server's `reconnectNewSessionId`). */
  newSessionId?: boolean;
}

export interface ReconnectSent {
  sessionId: string;
  reconnectUrl: string;
}

interface Conn {
  ws: WebSocket;
  lastSentAt: number;
  ponged: boolean;
  controller: AbortController;
}

interface Session {
  id: string;
  status: WsSessionStatus;
  connectedAt: string;
  disconnectedAt?: string;
  closeCode?: number;
  keepaliveSeconds: number;
  assigned: boolean;
  host: string;
  conn: Conn;
  /** The socket a reconnect moved away from, until the client closes it (or 4004). */
  old?: Conn;
  reconnectToken?: string;
  grace?: AbortController;
  /** Whether the pending reconnect gives the session a new id. */
  moveToNewId?: boolean;
  /** Ids the session had before, with the times they were welcomed and left (see WsSessionView.formerIds). */
  former: { id: string; connectedAt: string; movedAt: string }[];
}

const CLOSE_GOING_AWAY = 1001;

/** Builds the server; wire `handleUpgrade` to the http server's `upgrade` event. */
export function createEventSubWsServer(options: EventSubWsOptions = {}): EventSubWsServer {
  return new EventSubWs(options).api();
}

class EventSubWs {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #path: string;
  readonly #o: EventSubWsOptions;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<string, Session>();
  readonly #byToken = new Map<string, Session>();
  readonly #listeners = new Set<(session: WsSessionView) => void>();
  /** Every open socket, whatever its state, so that close() leaves none behind. */
  readonly #sockets = new Set<WebSocket>();
  #closing: Promise<void> | undefined;

  constructor(options: EventSubWsOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'eventsub-ws' });
    this.#path = options.path ?? '/ws';
    // autoPong off: a client's ping is inbound traffic (4001), not something to answer.
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      autoPong: false,
      maxPayload: options.maxPayloadBytes ?? 64 * 1024,
    });
  }

  api(): EventSubWsServer {
    const sessions: WsSessions = {
      get: (id) => {
        const session = this.#sessions.get(id);
        return session && this.#viewAs(id, session);
      },
      assign: (id) => this.#assign(id),
      send: (id, frame) => this.#send(id, frame),
      onDisconnect: (listener) => {
        this.#listeners.add(listener);
        return () => this.#listeners.delete(listener);
      },
    };
    return {
      sessions,
      list: () => [...this.#sessions].map(([id, s]) => this.#viewAs(id, s)),
      handleUpgrade: (req, socket, head) => this.#handleUpgrade(req, socket, head),
      reconnect: (id, options) => this.#reconnect(id, options ?? {}),
      closeSession: (id, code) => this.#closeSession(id, code),
      terminateSession: (id) => this.#terminate(id),
      close: () => this.#close(),
    };
  }

  #view(s: Session | undefined): WsSessionView | undefined {
    if (!s) return undefined;
    const view: WsSessionView = { id: s.id, status: s.status, connectedAt: s.connectedAt, keepaliveSeconds: s.keepaliveSeconds };
    if (s.disconnectedAt !== undefined) view.disconnectedAt = s.disconnectedAt;
    if (s.closeCode !== undefined) view.closeCode = s.closeCode;
    if (s.former.length > 0) view.formerIds = s.former.map((f) => f.id);
    return view;
  }

  /** The view under `id`: the session itself, or, for one of its former ids, that id as `reconnected`. */
  #viewAs(id: string, s: Session): WsSessionView {
    const former = s.id === id ? undefined : s.former.find((f) => f.id === id);
    if (!former) return this.#view(s)!;
    return { id, status: 'reconnected', connectedAt: former.connectedAt, disconnectedAt: former.movedAt, keepaliveSeconds: s.keepaliveSeconds, movedTo: s.id };
  }

  /** The session whose id is `id` now (not a former id). */
  #current(id: string): Session | undefined {
    const session = this.#sessions.get(id);
    return session?.id === id ? session : undefined;
  }

  /** Each session once, whatever its ids. */
  #unique(): Session[] {
    return [...new Set(this.#sessions.values())];
  }

  #accepted(ws: WebSocket): void {
    this.#sockets.add(ws);
    ws.once('close', () => this.#sockets.delete(ws));
  }

  #handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return false;
    }
    if (url.pathname !== this.#path) return false;
    if (this.#closing) {
      refuse(socket, 503, 'The EventSub WebSocket server is shutting down');
      return true;
    }
    const token = url.searchParams.get('reconnect');
    if (token !== null) {
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        this.#accepted(ws);
        this.#resume(ws, token);
      });
      return true;
    }
    const keepalive = parseKeepalive(url.searchParams.get('keepalive_timeout_seconds'), this.#o.keepaliveDefaultSeconds ?? 10);
    if (keepalive === null) {
      refuse(socket, 400, 'keepalive_timeout_seconds must be an integer between 10 and 600');
      return true;
    }
    const host = req.headers.host ?? '127.0.0.1';
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#accepted(ws);
      this.#open(ws, keepalive, host);
    });
    return true;
  }

  /** A new session: welcome, keepalives, and the 4003 rule. */
  #open(ws: WebSocket, keepaliveSeconds: number, host: string): void {
    const conn = this.#conn(ws);
    const session: Session = {
      id: randomSessionId(),
      status: 'connected',
      connectedAt: rfc3339Nano(this.#clock.now()),
      keepaliveSeconds,
      assigned: false,
      host,
      conn,
      former: [],
    };
    this.#sessions.set(session.id, session);
    this.#prune();
    this.#watch(session, conn);
    this.#welcome(session, conn);
    this.#logger.debug('EventSub WebSocket session opened', { session: session.id, keepaliveSeconds });
    void this.#unused(session, conn);
  }

  /** A connection to a reconnect URL: takes over its session, or is closed with 4007 when the URL is not (or no longer) valid. */
  #resume(ws: WebSocket, token: string): void {
    const session = this.#byToken.get(token);
    if (!session || session.status !== 'reconnecting') {
      ws.on('error', () => undefined);
      ws.close(4007, EVENTSUB_CLOSE_REASONS[4007]);
      return;
    }
    const conn = this.#conn(ws);
    this.#byToken.delete(token);
    session.reconnectToken = undefined;
    session.old = session.conn;
    session.conn = conn;
    session.status = 'connected';
    const now = rfc3339Nano(this.#clock.now());
    if (session.moveToNewId) {
      // The old id stays in the map, pointing at the session, so that frames for a shard still assigned to it arrive.
      session.former.push({ id: session.id, connectedAt: session.connectedAt, movedAt: now });
      session.id = randomSessionId();
      this.#sessions.set(session.id, session);
    }
    session.connectedAt = now;
    // From the new welcome on, every send goes to the new socket: one socket per message, none lost, none twice.
    this.#watch(session, conn);
    this.#welcome(session, conn);
    this.#logger.debug('EventSub WebSocket session moved to its reconnect URL', { session: session.id });
  }

  #conn(ws: WebSocket): Conn {
    return { ws, lastSentAt: this.#clock.now(), ponged: true, controller: new AbortController() };
  }

  #welcome(session: Session, conn: Conn): void {
    const payload = {
      session: {
        id: session.id,
        status: 'connected',
        connected_at: session.connectedAt,
        keepalive_timeout_seconds: session.keepaliveSeconds,
        reconnect_url: null,
      },
    };
    this.#write(conn, eventSubEnvelope('session_welcome', payload, { nowMs: this.#clock.now() }));
    void this.#keepalive(session, conn);
    if (this.#o.pingIntervalMs !== undefined) void this.#ping(session, conn, this.#o.pingIntervalMs);
  }

  /** Listens to one socket: inbound traffic closes with 4001, and a close ends the session when the socket is its current one. */
  #watch(session: Session, conn: Conn): void {
    const inbound = (): void => this.#closeConn(session, conn, 4001);
    conn.ws.on('message', inbound);
    conn.ws.on('ping', inbound);
    conn.ws.on('pong', () => {
      conn.ponged = true;
    });
    conn.ws.on('error', (err) => this.#logger.debug('EventSub WebSocket socket failed', { session: session.id, err }));
    conn.ws.on('close', (code: number) => {
      conn.controller.abort();
      if (conn === session.old) {
        session.old = undefined;
        session.grace?.abort();
      } else if (conn === session.conn) {
        this.#ended(session, code);
      }
    });
  }

  #write(conn: Conn, frame: object): boolean {
    if (conn.ws.readyState !== WebSocket.OPEN) return false;
    conn.ws.send(JSON.stringify(frame));
    conn.lastSentAt = this.#clock.now();
    return true;
  }

  /** `session_keepalive` whenever nothing else was sent for the keepalive time (pings do not count). */
  async #keepalive(session: Session, conn: Conn): Promise<void> {
    const ms = session.keepaliveSeconds * 1000;
    try {
      for (;;) {
        const left = conn.lastSentAt + ms - this.#clock.now();
        if (left > 0) {
          await this.#clock.sleep(left, conn.controller.signal);
          continue;
        }
        if (session.conn !== conn || !this.#write(conn, eventSubEnvelope('session_keepalive', {}, { nowMs: this.#clock.now() }))) return;
      }
    } catch {
      // aborted: the socket closed
    }
  }

  async #ping(session: Session, conn: Conn, intervalMs: number): Promise<void> {
    try {
      for (;;) {
        await this.#clock.sleep(intervalMs, conn.controller.signal);
        if (!conn.ponged) return this.#closeConn(session, conn, 4002);
        conn.ponged = false;
        conn.ws.ping();
      }
    } catch {
      // aborted: the socket closed
    }
  }

  async #unused(session: Session, conn: Conn): Promise<void> {
    try {
      await this.#clock.sleep(this.#o.unusedCloseMs ?? 10_000, conn.controller.signal);
    } catch {
      return;
    }
    if (!session.assigned && session.conn === conn && session.status !== 'disconnected') this.#closeConn(session, conn, 4003);
  }

  #assign(id: string): boolean {
    const session = this.#current(id);
    if (!session || session.status === 'disconnected') return false;
    session.assigned = true;
    return true;
  }

  #send(id: string, frame: object): boolean {
    const session = this.#sessions.get(id);
    if (!session || session.status === 'disconnected') return false;
    return this.#write(session.conn, frame);
  }

  #reconnect(id: string | undefined, options: ReconnectOptions): ReconnectSent[] {
    const targets = id === undefined ? this.#unique() : [this.#current(id)].filter((s) => s !== undefined);
    const sent: ReconnectSent[] = [];
    for (const session of targets) {
      // One move at a time: a session still moving (or not yet rid of its old socket) is left alone.
      if (session.status !== 'connected' || session.old) continue;
      const token = randomReconnectToken();
      const reconnectUrl = `ws://${session.host}${this.#path}?reconnect=${token}`;
      const payload = {
        session: {
          id: session.id,
          status: 'reconnecting',
          keepalive_timeout_seconds: null,
          reconnect_url: reconnectUrl,
          connected_at: session.connectedAt,
        },
      };
      if (!this.#write(session.conn, eventSubEnvelope('session_reconnect', payload, { nowMs: this.#clock.now() }))) continue;
      session.status = 'reconnecting';
      session.reconnectToken = token;
      session.moveToNewId = options.newSessionId ?? this.#o.reconnectNewSessionId ?? true;
      this.#byToken.set(token, session);
      session.grace = new AbortController();
      void this.#graceExpiry(session, session.grace.signal, options.graceMs ?? this.#o.reconnectGraceMs ?? 30_000);
      sent.push({ sessionId: session.id, reconnectUrl });
    }
    return sent;
  }

  /** https://dev.twitch.tv/docs/eventsub/handling-websocket-events/#reconnect-message: 4004 on whatever socket the client did not leave in time. */
  async #graceExpiry(session: Session, signal: AbortSignal, graceMs: number): Promise<void> {
    try {
      await this.#clock.sleep(graceMs, signal);
    } catch {
      return;
    }
    if (session.old) this.#closeConn(session, session.old, 4004);
    else if (session.status === 'reconnecting') this.#closeConn(session, session.conn, 4004);
  }

  #closeSession(id: string, code: EventSubCloseCode): boolean {
    const session = this.#current(id);
    if (!session || session.status === 'disconnected') return false;
    this.#closeConn(session, session.conn, code);
    return true;
  }

  #terminate(id: string): boolean {
    const session = this.#current(id);
    if (!session || session.status === 'disconnected') return false;
    session.old?.ws.terminate();
    session.conn.ws.terminate();
    this.#ended(session, 1006);
    return true;
  }

  /** Closes one socket with `code`; when it is the session's current one, the session ends with that code at once. */
  #closeConn(session: Session, conn: Conn, code: number): void {
    conn.controller.abort();
    if (conn.ws.readyState === WebSocket.OPEN || conn.ws.readyState === WebSocket.CONNECTING) {
      conn.ws.close(code, EVENTSUB_CLOSE_REASONS[code as EventSubCloseCode] ?? 'server shutting down');
    }
    if (conn === session.conn) this.#ended(session, code);
    this.#logger.debug('EventSub WebSocket socket closed by the server', { session: session.id, code });
  }

  /** The session is over (once): status kept for shard statuses, listeners told. */
  #ended(session: Session, code: number): void {
    if (session.status === 'disconnected') return;
    session.status = 'disconnected';
    session.disconnectedAt = rfc3339Nano(this.#clock.now());
    session.closeCode = code;
    session.grace?.abort();
    if (session.reconnectToken !== undefined) this.#byToken.delete(session.reconnectToken);
    session.reconnectToken = undefined;
    if (session.old) this.#closeConn(session, session.old, code);
    const view = this.#view(session)!;
    for (const listener of [...this.#listeners]) {
      try {
        listener(view);
      } catch (err) {
        this.#logger.error('An onDisconnect listener threw', { session: session.id, err });
      }
    }
  }

  #prune(): void {
    const max = this.#o.maxClosedSessions ?? 1000;
    const closed = this.#unique().filter((s) => s.status === 'disconnected');
    for (const s of closed.slice(0, Math.max(0, closed.length - max))) {
      this.#sessions.delete(s.id);
      for (const f of s.former) this.#sessions.delete(f.id);
    }
  }

  #close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const session of this.#unique()) {
        if (session.status !== 'disconnected') this.#closeConn(session, session.conn, CLOSE_GOING_AWAY);
      }
      const sockets = [...this.#sockets];
      for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      const closed = sockets.map((ws) => new Promise<void>((resolve) => (ws.readyState === WebSocket.CLOSED ? resolve() : ws.once('close', () => resolve()))));
      const grace = new AbortController();
      const timeout = this.#clock.sleep(this.#o.closeGraceMs ?? 1000, grace.signal).catch(() => undefined);
      await Promise.race([Promise.all(closed), timeout]);
      grace.abort();
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    })();
    return this.#closing;
  }
}

/** Answers an upgrade request with an HTTP error and closes the socket once it is written. */
function refuse(socket: Duplex, status: number, message: string): void {
  socket.on('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
}
