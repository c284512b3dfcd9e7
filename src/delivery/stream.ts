/**
 * The local WebSocket stream of the journal (README.md "Delivery to your application"):
 * `ws://EVENTSUBD_LISTEN/events`, one text frame per journal record (the record's JSON, `seq` first).
 *
 * - `?since=SEQ` replays every record after SEQ, then continues live with no gap and no duplicate (one
 *   `journal.follow()` per client). Without it the client starts live at the head. When SEQ is older than
 *   the oldest retained record the replay starts there (the client sees the jump in `seq`). A malformed
 *   SEQ, or one beyond the head (another journal's cursor), is refused with HTTP 400.
 * - Auth: with a token, `Authorization: Bearer <token>` or, for browsers, `?access_token=<token>`; a missing
 *   or wrong one gets HTTP 401 and no connection. Without a token (allowed on loopback only), a request
 *   carrying an `Origin` header, i.e. from a browser, gets HTTP 403: any web page could otherwise read the
 *   stream of a local daemon.
 * - Backpressure: when a client's unsent bytes exceed `maxBufferedBytes`, reading the journal for it pauses
 *   until they fall to half of that. If they do not within `drainTimeoutMs`, it is closed with code
 *   4008 and reason `consumer too slow; reconnect with ?since=<last seq sent>`; a client that reads up to
 *   the close frame has received exactly that seq. So a stuck client costs at most `maxBufferedBytes` plus
 *   one record, plus one journal read batch (at most 256 records or about 256 KiB).
 * - Keepalive: a ping every `pingIntervalMs`; a client that has not answered the previous one is terminated.
 * - Close codes: 4008 too slow, 1001 daemon shutting down or journal closed, 1011 journal unreadable.
 *   Frames from clients are ignored (one over 4 KiB closes with 1009). More than `maxClients` at once get HTTP 503.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Clock } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { EventJournal } from '../journal/types.js';
import { parseSince, presentedToken, refuseUpgrade, requestUrl, tokenMatches } from './upgrade.js';

/** Close code for a client that stopped reading: reconnect with `?since=` the last seq received. */
export const CLOSE_TOO_SLOW = 4008;
/** Close code on shutdown (or when the journal closes). */
export const CLOSE_GOING_AWAY = 1001;

export interface EventStreamOptions {
  journal: Pick<EventJournal, 'head' | 'follow'>;
  /** Default `/events`. */
  path?: string | undefined;
  /** The bearer token (`EVENTSUBD_STREAM_TOKEN`); the caller requires one when listening beyond loopback. */
  token?: string | undefined;
  clock: Clock;
  logger?: Logger | undefined;
  /** Default 30 000 ms. */
  pingIntervalMs?: number | undefined;
  /** Unsent bytes per client before journal reading pauses for it. Default 1 MiB. */
  maxBufferedBytes?: number | undefined;
  /** How long a paused client may take to drain before it is closed with 4008. Default 30 000 ms. */
  drainTimeoutMs?: number | undefined;
  /** Default 100. */
  maxClients?: number | undefined;
  /** How long `close()` waits for clients to answer the close frame before terminating them. Default 2 000 ms. */
  closeGraceMs?: number | undefined;
}

export interface EventStreamStats {
  clients: number;
  /** Clients whose journal reading is paused until they read what was sent (their buffer is over the limit). */
  paused: number;
  /** Frames sent, all clients together. */
  sent: number;
  /** Clients closed with 4008. */
  tooSlow: number;
  /** Clients terminated for a missed pong. */
  unresponsive: number;
  /** Upgrade requests refused (401, 403, 400, 503). */
  refused: number;
  /** The largest `bufferedAmount` seen on any client after a send, bytes. */
  peakBufferedBytes: number;
}

interface Client {
  ws: WebSocket;
  controller: AbortController;
  alive: boolean;
  lastSeq: number;
  onDrained: (() => void) | undefined;
}

/** The `/events` WebSocket endpoint, in `noServer` mode: the HTTP server hands it its upgrade requests. */
export class EventStream {
  readonly #o: EventStreamOptions;
  readonly #logger: Logger;
  readonly #path: string;
  readonly #maxBuffered: number;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096, clientTracking: false });
  readonly #clients = new Set<Client>();
  readonly #controller = new AbortController();
  #heartbeat: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  readonly #stats = { sent: 0, tooSlow: 0, unresponsive: 0, refused: 0, peakBufferedBytes: 0 };

  constructor(options: EventStreamOptions) {
    this.#o = options;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'stream' });
    this.#path = options.path ?? '/events';
    this.#maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  }

  /**
   * Takes an HTTP upgrade request. Returns false, touching nothing, when its path is not the stream's (the
   * caller answers 404); otherwise true, having either refused it with an HTTP error or accepted it.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = requestUrl(req);
    if (!url || url.pathname !== this.#path) return false;
    const admitted = this.#admit(req, url);
    if ('status' in admitted) {
      this.#stats.refused++;
      this.#logger.info('Refused a stream connection', { status: admitted.status, reason: admitted.message });
      refuseUpgrade(socket, admitted.status, admitted.message, admitted.headers);
      return true;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws, admitted.since));
    return true;
  }

  /** Counters for /status and /metrics. */
  stats(): EventStreamStats {
    let paused = 0;
    for (const c of this.#clients) if (c.onDrained) paused += 1;
    return { clients: this.#clients.size, paused, ...this.#stats };
  }

  /** Closes every client with 1001, terminates those that do not answer within `closeGraceMs`; later upgrades get 503. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#controller.abort();
      const clients = [...this.#clients];
      const closed = clients.map((c) => new Promise<void>((resolve) => (c.ws.readyState === WebSocket.CLOSED ? resolve() : c.ws.once('close', () => resolve()))));
      for (const c of clients) {
        c.ws.close(CLOSE_GOING_AWAY, 'eventsubd is shutting down');
        c.controller.abort();
      }
      const grace = new AbortController();
      const timeout = this.#o.clock.sleep(this.#o.closeGraceMs ?? 2000, grace.signal).catch(() => undefined);
      await Promise.race([Promise.all(closed), timeout]);
      grace.abort();
      this.destroy();
      await this.#heartbeat;
      await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    })();
    return this.#closing;
  }

  /** Terminates every client at once, without a close frame. */
  destroy(): void {
    this.#controller.abort();
    for (const c of this.#clients) {
      c.controller.abort();
      c.ws.terminate();
    }
  }

  #admit(req: IncomingMessage, url: URL): { since: number } | { status: number; message: string; headers?: Record<string, string> } {
    if (this.#controller.signal.aborted) return { status: 503, message: 'The event stream is shutting down' };
    const token = this.#o.token;
    if (token === undefined) {
      if (req.headers.origin !== undefined) {
        return { status: 403, message: 'Browser connections to the event stream need EVENTSUBD_STREAM_TOKEN (pass it as ?access_token=)' };
      }
    } else if (!tokenMatches(token, presentedToken(req, url))) {
      return { status: 401, message: 'A valid bearer token is required', headers: { 'WWW-Authenticate': 'Bearer realm="eventsubd"' } };
    }
    const since = parseSince(url.searchParams.get('since'));
    const head = this.#o.journal.head;
    if (since === null) return { status: 400, message: "'since' must be a non-negative integer" };
    if (since !== undefined && since > head) {
      return { status: 400, message: `'since' must not be beyond the journal head ${head}: current value is ${since}` };
    }
    if (this.#clients.size >= (this.#o.maxClients ?? 100)) return { status: 503, message: 'Too many event stream clients' };
    return { since: since ?? head };
  }

  #serve(ws: WebSocket, since: number): void {
    const client: Client = { ws, controller: new AbortController(), alive: true, lastSeq: since, onDrained: undefined };
    this.#clients.add(client);
    this.#logger.debug('A stream client connected', { since, clients: this.#clients.size });
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', () => undefined); // nothing a client sends means anything
    ws.on('error', (err) => this.#logger.debug('A stream client socket failed', { err }));
    ws.on('close', () => {
      client.controller.abort();
      this.#clients.delete(client);
    });
    this.#heartbeat ??= this.#beat(this.#controller.signal);
    void this.#pump(client);
  }

  /** Sends the journal to one client, pausing while its buffer is full; never throws. */
  async #pump(client: Client): Promise<void> {
    const { ws, controller } = client;
    const flushed = (): void => {
      if (client.onDrained && ws.bufferedAmount <= this.#maxBuffered / 2) client.onDrained();
    };
    try {
      for await (const record of this.#o.journal.follow(client.lastSeq, controller.signal)) {
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(JSON.stringify(record), flushed);
        client.lastSeq = record.seq;
        this.#stats.sent++;
        const buffered = ws.bufferedAmount;
        if (buffered > this.#stats.peakBufferedBytes) this.#stats.peakBufferedBytes = buffered;
        if (buffered > this.#maxBuffered && !(await this.#drained(client))) {
          if (ws.readyState !== WebSocket.OPEN) return;
          this.#stats.tooSlow++;
          this.#logger.warn('Closing a stream client that stopped reading', { lastSeq: client.lastSeq, bufferedBytes: ws.bufferedAmount });
          ws.close(CLOSE_TOO_SLOW, `consumer too slow; reconnect with ?since=${client.lastSeq}`);
          return;
        }
      }
      if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_GOING_AWAY, 'the journal closed');
    } catch (err) {
      this.#logger.error('Cannot read the journal for a stream client', { err, lastSeq: client.lastSeq });
      if (ws.readyState === WebSocket.OPEN) ws.close(1011, 'the journal cannot be read');
    }
  }

  /** True once the client's buffer fell to half of the limit; false after `drainTimeoutMs` or when it closes. */
  async #drained(client: Client): Promise<boolean> {
    const timer = new AbortController();
    const signal = AbortSignal.any([timer.signal, client.controller.signal]);
    try {
      return await new Promise<boolean>((resolve) => {
        client.onDrained = () => resolve(true);
        this.#o.clock.sleep(this.#o.drainTimeoutMs ?? 30_000, signal).then(
          () => resolve(false),
          () => resolve(false),
        );
      });
    } finally {
      client.onDrained = undefined;
      timer.abort();
    }
  }

  /** Pings every client each interval; terminates one that did not answer the previous ping. */
  async #beat(signal: AbortSignal): Promise<void> {
    const interval = this.#o.pingIntervalMs ?? 30_000;
    while (!signal.aborted) {
      try {
        await this.#o.clock.sleep(interval, signal);
      } catch {
        return;
      }
      for (const client of this.#clients) {
        if (!client.alive) {
          this.#stats.unresponsive++;
          this.#logger.info('Terminating a stream client that missed a pong', { lastSeq: client.lastSeq });
          client.ws.terminate();
          continue;
        }
        client.alive = false;
        client.ws.ping();
      }
    }
  }
}
