/**
 * The seam between the emulator's EventSub WebSocket server (eventsub-ws.ts) and its conduits (conduits.ts): the
 * conduit side asks whether a session exists and is connected when a shard is assigned to it, marks it used (so it
 * is not closed with 4003 "connection unused"), sends notifications to it, and hears when it disconnects (the
 * shard's status becomes websocket_disconnected and friends). See
 * https://dev.twitch.tv/docs/eventsub/handling-websocket-events/ and https://dev.twitch.tv/docs/eventsub/handling-conduit-events/
 */

export type WsSessionStatus = 'connected' | 'reconnecting' | 'disconnected';

export interface WsSessionView {
  id: string;
  status: WsSessionStatus;
  /** ISO time of the welcome. */
  connectedAt: string;
  /** ISO time of the close, once closed. */
  disconnectedAt?: string;
  /** The close code the server used or saw, once closed. */
  closeCode?: number;
}

export interface WsSessions {
  get(id: string): WsSessionView | undefined;
  /** The session is used by a conduit shard from now on: no 4003 "connection unused" close. False when not connected. */
  assign(id: string): boolean;
  /** Sends one frame (an EventSub envelope: metadata + payload) as text; false when the session is not connected. */
  send(id: string, frame: object): boolean;
  /** Calls `listener` when a session closes, for whatever reason; returns the unsubscribe function. */
  onDisconnect(listener: (session: WsSessionView) => void): () => void;
}
