/**
 * Helpers for the shard tests: a shard wired to recorders (messages, views, assignments, log lines), and a
 * hand-written EventSub WebSocket server on loopback that records everything the client sends.
 */
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { systemClock } from '../../src/lib/clock.js';
import { createJsonLogger } from '../../src/lib/logger.js';
import { Shard, type ShardMessage, type ShardOptions, type ShardView } from '../../src/conduit/shard.js';
import { untilTurn } from '../helpers/wait.js';

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface ShardRig {
  shard: Shard;
  messages: ShardMessage[];
  views: ShardView[];
  /** Session ids handed to assign(), in order. */
  assigned: string[];
  logs: LogLine[];
  /** Raw log text, for "never logged" checks. */
  logText(): string;
  /** Resolves once `cond(shard.view())` holds. */
  until(cond: (v: ShardView) => boolean, what: string, timeoutMs?: number): Promise<void>;
}

/** A shard with fast defaults for tests (welcome 2 s, margin 200 ms, backoff 20-100 ms); closed after the test. */
export function makeShard(t: TestContext, options: Partial<ShardOptions> & { url: string }): ShardRig {
  const messages: ShardMessage[] = [];
  const views: ShardView[] = [];
  const assigned: string[] = [];
  const lines: string[] = [];
  const logger = createJsonLogger({ sink: { write: (l: string) => lines.push(l) }, level: 'debug' });
  const shard = new Shard({
    shardId: '0',
    clock: systemClock,
    logger,
    welcomeTimeoutMs: 2_000,
    keepaliveMarginMs: 200,
    backoff: { baseMs: 20, maxMs: 100 },
    onMessage: (m) => messages.push(m),
    onChange: (v) => views.push(v),
    ...options,
    assign: async (id, signal) => {
      assigned.push(id);
      await options.assign?.(id, signal);
    },
  });
  t.after(() => shard.close());
  return {
    shard,
    messages,
    views,
    assigned,
    get logs() {
      return lines.map((l) => JSON.parse(l) as LogLine);
    },
    logText: () => lines.join(''),
    until: (cond, what, timeoutMs) => untilTurn(() => cond(shard.view()), what, timeoutMs),
  };
}

/** One connection the hand-written server accepted. */
export interface ServerConn {
  ws: WebSocket;
  /** The request path and query, as the client sent them. */
  url: string;
  /** Data frames (text or binary) and pings the client sent: the shard must send none. */
  inbound: string[];
  /** The close code the client sent, once it closed. */
  closedWith: number | undefined;
  closed: Promise<number>;
}

export interface HostileServer {
  port: number;
  url: string;
  conns: ServerConn[];
  /** Resolves with the `n`th connection (0-based) once it is accepted. */
  conn(n: number): Promise<ServerConn>;
  /** Every data frame and ping any client ever sent. */
  inbound(): string[];
  close(): Promise<void>;
}

/** A plain `ws` server on 127.0.0.1:0 that does nothing by itself: the test drives each connection. */
export async function hostileServer(t: TestContext, onConnection?: (c: ServerConn) => void): Promise<HostileServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const port = (wss.address() as AddressInfo).port;
  const conns: ServerConn[] = [];
  wss.on('connection', (ws, req) => {
    let closedWith: number | undefined;
    const conn: ServerConn = {
      ws,
      url: req.url ?? '',
      inbound: [],
      get closedWith() {
        return closedWith;
      },
      closed: new Promise<number>((resolve) =>
        ws.on('close', (code) => {
          closedWith = code;
          resolve(code);
        }),
      ),
    };
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => conn.inbound.push(isBinary ? '<binary>' : Buffer.from(data as Buffer).toString('utf8')));
    ws.on('ping', () => conn.inbound.push('<ping>'));
    conns.push(conn);
    onConnection?.(conn);
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const c of conns) c.ws.terminate();
      wss.close(() => resolve());
    });
    return closing;
  };
  t.after(close);
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    conns,
    conn: async (n) => {
      await untilTurn(() => conns.length > n, `server connection #${n}`);
      return conns[n]!;
    },
    inbound: () => conns.flatMap((c) => c.inbound),
    close,
  };
}

let seq = 0;
const stamp = (): string => new Date().toISOString().replace('Z', '000000Z');

export function welcomeFrame(sessionId: string, keepaliveSeconds = 10): object {
  return {
    metadata: { message_id: `w-${++seq}`, message_type: 'session_welcome', message_timestamp: stamp() },
    payload: { session: { id: sessionId, status: 'connected', connected_at: stamp(), keepalive_timeout_seconds: keepaliveSeconds, reconnect_url: null } },
  };
}

export function keepaliveFrame(): object {
  return { metadata: { message_id: `k-${++seq}`, message_type: 'session_keepalive', message_timestamp: stamp() }, payload: {} };
}

export function reconnectFrame(sessionId: string, reconnectUrl: string): object {
  return {
    metadata: { message_id: `r-${++seq}`, message_type: 'session_reconnect', message_timestamp: stamp() },
    payload: { session: { id: sessionId, status: 'reconnecting', keepalive_timeout_seconds: null, reconnect_url: reconnectUrl, connected_at: stamp() } },
  };
}

export function notificationFrame(messageId: string, event: object = { broadcaster_user_id: '12826' }): object {
  const subscription = {
    id: 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4',
    status: 'enabled',
    type: 'stream.online',
    version: '1',
    cost: 0,
    condition: { broadcaster_user_id: '12826' },
    transport: { method: 'conduit', conduit_id: 'c-1' },
    created_at: stamp(),
  };
  return {
    metadata: { message_id: messageId, message_type: 'notification', message_timestamp: stamp(), subscription_type: 'stream.online', subscription_version: '1' },
    payload: { subscription, event },
  };
}

export function send(conn: ServerConn, frame: object): void {
  conn.ws.send(JSON.stringify(frame));
}
