/**
 * The thin node:http shell around the webhook handler: reads the body with a size cap, enforces timeouts
 * and an in-flight cap, converts to/from ReceiverRequest/ReceiverResponse, and closes gracefully.
 * Nothing a client sends may crash it: every stream has an error listener and a partial body is never
 * handed to the handler.
 */
import type { Duplex } from 'node:stream';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock, type Clock } from '../lib/clock.js';
import { AppError, ConfigError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { WebhookHandler } from './handler.js';
import { BodyRead, readHeaders, requestPath, toReceiverRequest } from './http-io.js';
import type { ReceiverMetrics, ReceiverOutcome, ReceiverResponse } from './types.js';

/** Server limits; every field has a default. Times in ms. */
export interface ReceiverLimits {
  /** Largest accepted body; larger gets 413 (Twitch's batched bodies are ≤ 250 KB). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Time to receive the request headers. Default 10 000. */
  headersTimeoutMs?: number;
  /** Time to receive the whole request. Default 30 000. */
  requestTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this. Default 5 000. */
  keepAliveTimeoutMs?: number;
  /**
   * Complete webhook requests handled at once (waiting for the journal); past it, 503. Requests whose body is
   * still arriving do not count, nor do GET/HEAD requests (health checks always get through). Default 1024.
   */
  maxInFlight?: number;
  /**
   * A body must arrive at a reasonable rate: by `bodyGraceMs` after its headers plus one second for every
   * `minBodyBytesPerSecond` bytes received so far. A body that falls behind gets 408 and its connection is
   * closed, so slow uploads cannot pile up (Twitch sends a whole body at once). Defaults 5 000 and 16 384.
   */
  bodyGraceMs?: number;
  minBodyBytesPerSecond?: number;
  /** Largest request head in bytes. Default: Node's (16 KiB). */
  maxHeaderSize?: number;
  /** How long `close()` lets in-flight requests finish before cutting connections. Default 10 000. */
  closeTimeoutMs?: number;
}

/** How much of an oversize body is read and discarded before the 413 (see refuseTooLarge). */
const DRAIN_CAP_BYTES = 4 * 1024 * 1024;
const DRAIN_MAX_MS = 2_000;

export const DEFAULT_RECEIVER_LIMITS = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxInFlight: 1024,
  bodyGraceMs: 5_000,
  minBodyBytesPerSecond: 16 * 1024,
  closeTimeoutMs: 8_000,
});

/** How often bodies still arriving are checked against their deadline, while there are any. */
const SLOW_BODY_SWEEP_MS = 250;

export interface StartReceiverOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  handler: WebhookHandler;
  logger?: Logger;
  limits?: ReceiverLimits;
  /** Counts what the adapter answers itself: `too_large`, `busy`, `aborted`. */
  metrics?: ReceiverMetrics;
  /** For the close deadline. Default systemClock. */
  clock?: Clock;
  /**
   * HTTP upgrades (the WebSocket stream). Returns false when it does not serve that path: the adapter then
   * answers 404. Without it, every upgrade gets 404.
   */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
}

export interface ReceiverStats {
  /** Complete requests being handled now. */
  inFlight: number;
  /** Requests whose body is still arriving. */
  reading: number;
  /** Requests received since start. */
  requests: number;
  busy: number;
  tooLarge: number;
  /** Requests whose body did not arrive in full (client gone, timeout). */
  aborted: number;
  /** Requests cut off with 408 because their body arrived too slowly. */
  tooSlow: number;
  /** Unparsable requests, header/request timeouts and resets, answered by Node's parser layer. */
  clientErrors: number;
}

export interface ReceiverServer {
  address: { host: string; port: number };
  /** `http://host:port` */
  url: string;
  /** Stops accepting, lets in-flight requests finish up to `closeTimeoutMs`, then cuts what is left. Idempotent. */
  close(): Promise<void>;
  /** Cuts every connection now. Idempotent. */
  destroy(): Promise<void>;
  readonly stats: Readonly<ReceiverStats>;
}

/**
 * Listens on `host:port` and serves `handler`.
 * @throws AppError LISTEN_FAILED when the address cannot be listened on (exit 78: the fix is EVENTSUBD_LISTEN or
 *   the process holding the port; systemd's `systemctl restart` waits for the old process to end, so a port
 *   still in use is not a restart race worth retrying).
 */
export async function startReceiver(options: StartReceiverOptions): Promise<ReceiverServer> {
  const limits = { ...DEFAULT_RECEIVER_LIMITS, ...definedOnly(options.limits ?? {}) };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(`headersTimeoutMs must not exceed requestTimeoutMs: current value is ${limits.headersTimeoutMs}`);
  }
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const stats: ReceiverStats = { inFlight: 0, reading: 0, requests: 0, busy: 0, tooLarge: 0, aborted: 0, tooSlow: 0, clientErrors: 0 };
  let closing = false;
  const count = (outcome: ReceiverOutcome, field: 'busy' | 'tooLarge' | 'aborted' | 'tooSlow'): void => {
    stats[field] += 1;
    options.metrics?.outcome(outcome);
  };

  const send = (res: ServerResponse, response: ReceiverResponse): void => {
    if (res.headersSent || res.destroyed) return;
    const bodyless = response.status === 204 || response.status === 304 || response.body === undefined;
    if (bodyless && !closing) {
      res.writeHead(response.status, response.headers);
      res.end();
      return;
    }
    const headers: Record<string, string> = { ...response.headers };
    const body = bodyless ? undefined : Buffer.from(response.body!);
    if (body !== undefined) headers['Content-Length'] = String(body.length);
    if (closing) headers['Connection'] = 'close';
    res.writeHead(response.status, headers);
    res.end(body);
  };
  const refuse = (res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void =>
    send(res, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close', ...extra }, body: text });

  /**
   * 413 for an oversize body. Closing at once while the client is still sending makes the kernel answer the
   * unread bytes with a reset, and the client may see that instead of the 413; so the rest of the body is
   * read and discarded first, up to DRAIN_CAP_BYTES or DRAIN_MAX_MS, whichever comes first.
   */
  const refuseTooLarge = (req: IncomingMessage, res: ServerResponse): void => {
    count('too_large', 'tooLarge');
    if (req.complete) {
      refuse(res, 413, 'body too large');
      return;
    }
    let drained = 0;
    const finish = (): void => {
      clearTimeout(timer);
      req.removeListener('data', onData);
      refuse(res, 413, 'body too large');
    };
    const onData = (chunk: Buffer): void => {
      drained += chunk.length;
      if (drained > DRAIN_CAP_BYTES) finish();
    };
    const timer = setTimeout(finish, DRAIN_MAX_MS);
    req.on('data', onData);
    req.once('end', finish);
    req.once('close', () => clearTimeout(timer));
    req.resume();
  };

  const declaredTooLarge = (req: IncomingMessage, headers = readHeaders(req)): boolean => {
    const length = headers['content-length'];
    return (Array.isArray(length) ? Math.max(...length.map(Number)) : Number(length ?? 0)) > limits.maxBodyBytes;
  };

  /** Bodies still arriving, checked by the sweeper against their deadline. */
  const reading = new Set<BodyRead>();
  let sweeper: NodeJS.Timeout | undefined;
  const sweepSlowBodies = (): void => {
    const now = performance.now();
    for (const r of reading) {
      const allowedMs = limits.bodyGraceMs + (r.bytes * 1000) / limits.minBodyBytesPerSecond;
      if (now - r.startedAt <= allowedMs) continue;
      reading.delete(r);
      count('too_slow', 'tooSlow');
      const { req } = r;
      r.res.once('finish', () => req.socket.destroy());
      refuse(r.res, 408, 'request body too slow');
      req.destroy();
    }
    if (reading.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  /** The body has arrived (or not): refuses, or hands the request to the handler and sends its answer. */
  const onBody = (r: BodyRead, body: Buffer | 'too_large' | 'aborted'): void => {
    reading.delete(r);
    stats.reading -= 1;
    const { req, res } = r;
    if (body === 'too_large') {
      refuseTooLarge(req, res);
      return;
    }
    if (body === 'aborted') {
      if (res.headersSent) return; // cut off as too slow
      count('aborted', 'aborted');
      res.destroy();
      return;
    }
    if (r.hasBody && stats.inFlight >= limits.maxInFlight) {
      count('busy', 'busy');
      refuse(res, 503, 'busy', { 'Retry-After': '1' });
      return;
    }
    stats.inFlight += 1;
    let response: ReturnType<WebhookHandler>;
    try {
      response = options.handler(toReceiverRequest(req, body, r.headers));
    } catch (err) {
      response = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (!(response instanceof Promise)) {
      stats.inFlight -= 1;
      reply(req, res, response);
      return;
    }
    response.then(
      (answer) => {
        stats.inFlight -= 1;
        reply(req, res, answer);
      },
      (err: unknown) => {
        stats.inFlight -= 1;
        failed(req, res, err);
      },
    );
  };
  /** Sends the handler's answer; one Node refuses (a header value it will not write) becomes a logged 500. */
  const reply = (req: IncomingMessage, res: ServerResponse, response: ReceiverResponse): void => {
    try {
      send(res, response);
    } catch (err) {
      failed(req, res, err);
    }
  };
  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    logger.error('Receiver request failed', { err, path: requestPath(req.url) });
    refuse(res, 500, 'internal error');
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    req.on('error', ignore);
    res.on('error', ignore);
    stats.requests += 1;
    const headers = readHeaders(req);
    if (declaredTooLarge(req, headers)) {
      refuseTooLarge(req, res);
      return;
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    if (closing && hasBody) {
      refuse(res, 503, 'shutting down');
      return;
    }
    stats.reading += 1;
    // Its listeners fire on later turns: it is in `reading` before any of them can take it out.
    reading.add(new BodyRead(req, res, headers, hasBody, limits.maxBodyBytes, onBody));
    sweeper ??= setInterval(sweepSlowBodies, SLOW_BODY_SWEEP_MS).unref();
  };

  const server: Server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks both timeouts on this period (default 30 s, which would blunt a 10 s headersTimeout).
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    ...(options.limits?.maxHeaderSize === undefined ? {} : { maxHeaderSize: options.limits.maxHeaderSize }),
  });
  // A client may half-close (shutdown its write side) after sending its request and still read the answer:
  // without this Node would end the socket at the client's FIN, and a journaled message would go unanswered.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on('request', onRequest);
  // Expect: 100-continue (curl sends it for large bodies): refuse an oversize body before it is sent.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (declaredTooLarge(req)) {
      stats.requests += 1;
      req.on('error', () => {});
      res.on('error', () => {});
      count('too_large', 'tooLarge');
      refuse(res, 413, 'body too large');
      return;
    }
    res.writeContinue();
    onRequest(req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    let served = false;
    try {
      served = options.onUpgrade?.(req, socket, head) ?? false;
    } catch (err) {
      logger.warn('Upgrade handler failed', { error: err as Error });
    }
    if (!served && !socket.destroyed) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroy();
    }
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    stats.clientErrors += 1;
    logger.debug('Receiver client error', { code: err.code });
    if (err.code !== 'ECONNRESET' && socket.writable && socket.bytesWritten === 0) {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });

  await listen(server, options.host, options.port);
  const { port } = server.address() as AddressInfo;
  const host = options.host;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  logger.info('Receiver listening', { host, port });

  let closed: Promise<void> | undefined;
  const whenClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  return {
    address: { host, port },
    url: `http://${urlHost}:${port}`,
    get stats() {
      return { ...stats };
    },
    close() {
      closed ??= (async () => {
        closing = true;
        server.close();
        server.closeIdleConnections();
        // Bodies still arriving were not acknowledged and nothing of them is journaled: cut them now.
        for (const r of reading) r.req.socket.destroy();
        const stop = new AbortController();
        const deadline = clock.sleep(limits.closeTimeoutMs, stop.signal).then(
          () => {
            logger.warn('Receiver close deadline passed; cutting connections', { inFlight: stats.inFlight });
            server.closeAllConnections();
          },
          () => {},
        );
        await whenClosed;
        stop.abort();
        await deadline;
      })();
      return closed;
    },
    async destroy() {
      closing = true;
      clearInterval(sweeper);
      if (server.listening) server.close();
      server.closeAllConnections();
      await whenClosed;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new AppError('LISTEN_FAILED', listenErrorMessage(err, { host, port }), { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** What the operator can do about each bind error; all of them are fixed in EVENTSUBD_LISTEN or around it. */
const LISTEN_ERRORS: Readonly<Record<string, (port: number) => string>> = {
  EADDRINUSE: () => 'the address is already in use (EADDRINUSE): stop the process that holds it, or set EVENTSUBD_LISTEN to another port',
  EACCES: (port) =>
    port < 1024
      ? `permission denied (EACCES): port ${port} is privileged (below 1024); use a port from 1024 behind a reverse proxy, or grant CAP_NET_BIND_SERVICE`
      : 'permission denied (EACCES): set EVENTSUBD_LISTEN to another address or port',
  EADDRNOTAVAIL: () => 'this machine has no such address (EADDRNOTAVAIL): use 127.0.0.1, 0.0.0.0 or an address of one of its interfaces',
  ENOTFOUND: () => 'the host name does not resolve (ENOTFOUND): use an IP address such as 127.0.0.1',
  EAI_AGAIN: () => 'the host name could not be resolved now (EAI_AGAIN): use an IP address such as 127.0.0.1',
};

/**
 * The one-line message of a failed bind, naming EVENTSUBD_LISTEN and what to change:
 * `Cannot listen on 127.0.0.1:8080 (EVENTSUBD_LISTEN): the address is already in use (EADDRINUSE): ...`.
 */
export function listenErrorMessage(err: NodeJS.ErrnoException, address: { host: string; port: number }): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  const why = (err.code && LISTEN_ERRORS[err.code]?.(address.port)) ?? err.code ?? err.message;
  return `Cannot listen on ${host}:${address.port} (EVENTSUBD_LISTEN): ${why}`;
}

function ignore(): void {}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
