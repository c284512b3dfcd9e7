/**
 * The seam between the emulator's EventSub WebSocket server (eventsub-ws.ts) and its conduits (conduits.ts): the
 * conduit side asks whether a session exists and is connected when a shard is assigned to it, marks it used (so it
 * is not closed with 4003 "connection unused"), sends notifications to it, and hears when it disconnects (the
 * shard's status becomes websocket_disconnected and friends). See
 * https://dev.twitch.tv/docs/eventsub/handling-websocket-events/ and https://dev.twitch.tv/docs/eventsub/handling-conduit-events/
 */

/**
 * `reconnected`: the client moved to its reconnect URL and the session goes on under a new id (`movedTo`);
 * the old id can no longer be assigned to a shard, but frames sent to it still reach the moved session, so a
 * shard keeps its events until the client re-assigns it to the new id (twitch-contract 8.4).
 */
export type WsSessionStatus = 'connected' | 'reconnecting' | 'reconnected' | 'disconnected';

export interface WsSessionView {
  id: string;
  status: WsSessionStatus;
  /** ISO time of the welcome. */
  connectedAt: string;
  /** ISO time of the close (or of the move, for `reconnected`), once closed. */
  disconnectedAt?: string;
  /** The close code the server used or saw, once closed. */
  closeCode?: number;
  /** The session's keepalive_timeout_seconds (absent from views of other implementations of this seam). */
  keepaliveSeconds?: number;
  /** For `reconnected`: the id the session has now. */
  movedTo?: string;
  /** The ids this session had before reconnects that gave it a new one, oldest first: a shard still assigned to one of them is this session's. */
  formerIds?: string[];
}

export interface WsSessions {
  get(id: string): WsSessionView | undefined;
  /** The session is used by a conduit shard from now on: no 4003 "connection unused" close. False when not connected. */
  assign(id: string): boolean;
  /**
   * Sends one frame (an EventSub envelope: metadata + payload) as text; false when the session is not connected.
   * A former id of a session that reconnected under a new id reaches that session.
   */
  send(id: string, frame: object): boolean;
  /** Calls `listener` when a session closes, for whatever reason; returns the unsubscribe function. */
  onDisconnect(listener: (session: WsSessionView) => void): () => void;
}
