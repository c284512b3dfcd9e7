/**
 * The Emulator API over the EventSub WebSocket sessions (eventsub-ws.ts): list them with the conduit shard each is
 * assigned to, send `session_reconnect`, close with one of Twitch's close codes, or drop the TCP connection. What
 * the control routes `/_emulator/ws/...` call; the answers are in the control API's snake_case.
 */
import type { Conduits } from './conduits.js';
import { isEventSubCloseCode } from './eventsub-frames.js';
import type { EventSubWsServer, ReconnectOptions } from './eventsub-ws.js';
import { EmulatorRequestError } from './http.js';
import type { WsSessionStatus } from './ws-sessions.js';

/** One session as `GET /_emulator/ws/sessions` shows it. Fields that do not apply are null. */
export interface WsSessionInfo {
  id: string;
  status: WsSessionStatus;
  /** The welcome's `connected_at` (of the last welcome, after a reconnect that kept the id). */
  connected_at: string;
  keepalive_timeout_seconds: number | null;
  disconnected_at: string | null;
  close_code: number | null;
  /** For `reconnected`: the new id of the session. */
  moved_to: string | null;
  /** The conduit shard whose transport names this session id (a shard keeps the id after a disconnect). */
  conduit_id: string | null;
  shard_id: string | null;
  shard_status: string | null;
}

export interface WsReconnectInfo {
  session_id: string;
  reconnect_url: string;
}

/** The operations, bound to one server and the emulator's conduits. */
export class WsControl {
  readonly #server: EventSubWsServer;
  readonly #conduits: Conduits;

  constructor(server: EventSubWsServer, conduits: Conduits) {
    this.#server = server;
    this.#conduits = conduits;
  }

  /** Every session the server remembers (connected, reconnecting, the ids left by reconnects, the last closed), oldest first. */
  list(): WsSessionInfo[] {
    const shards = this.#conduits.shardsBySession();
    return this.#server.list().map((s) => {
      const assigned = shards.get(s.id);
      return {
        id: s.id,
        status: s.status,
        connected_at: s.connectedAt,
        keepalive_timeout_seconds: s.keepaliveSeconds ?? null,
        disconnected_at: s.disconnectedAt ?? null,
        close_code: s.closeCode ?? null,
        moved_to: s.movedTo ?? null,
        conduit_id: assigned?.conduit.id ?? null,
        shard_id: assigned?.shard.id ?? null,
        shard_status: assigned?.shard.status ?? null,
      };
    });
  }

  /**
   * `session_reconnect` to one session, or to every connected session when `sessionId` is undefined (possibly
   * none). @throws EmulatorRequestError 404 for an unknown session, 409 for one that is not connected (closed,
   * already reconnecting, or an id it left).
   */
  reconnect(sessionId: string | undefined, options: ReconnectOptions = {}): WsReconnectInfo[] {
    if (sessionId !== undefined) this.#connected(sessionId);
    const sent = this.#server.reconnect(sessionId, options);
    if (sessionId !== undefined && sent.length === 0) throw new EmulatorRequestError(409, `Session ${sessionId} is not connected`);
    return sent.map((s) => ({ session_id: s.sessionId, reconnect_url: s.reconnectUrl }));
  }

  /**
   * Closes a session with `code` (4000-4007, each with Twitch's reason). @throws RangeError for another code;
   * EmulatorRequestError 404 / 409 as `reconnect`.
   */
  close(sessionId: string, code: number): void {
    if (!isEventSubCloseCode(code)) throw new RangeError(`code must be one of Twitch's close codes 4000-4007: current value is ${code}`);
    this.#connected(sessionId);
    if (!this.#server.closeSession(sessionId, code)) throw new EmulatorRequestError(409, `Session ${sessionId} is not connected`);
  }

  /** Drops the session's TCP connection without a close frame (the server records 1006). @throws as `reconnect`. */
  terminate(sessionId: string): void {
    this.#connected(sessionId);
    if (!this.#server.terminateSession(sessionId)) throw new EmulatorRequestError(409, `Session ${sessionId} is not connected`);
  }

  #connected(sessionId: string): void {
    const session = this.#server.sessions.get(sessionId);
    if (!session) throw new EmulatorRequestError(404, `Unknown WebSocket session ${sessionId}`);
    if (session.status === 'disconnected' || session.status === 'reconnected') {
      throw new EmulatorRequestError(409, `Session ${sessionId} is not connected (status ${session.status})`);
    }
  }
}
