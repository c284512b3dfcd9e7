/**
 * The admission rules of the WebSocket stream's upgrade request, pure except for `refuseUpgrade`: where the
 * bearer token comes from, how it is compared, and how `?since=` is read.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** The request URL, resolved against a dummy origin; undefined when it cannot be parsed. */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * The token a client presented: `Authorization: Bearer <t>` first, else `?access_token=<t>` (browsers cannot
 * set headers on a WebSocket; the query form may end up in proxy logs, so prefer the header).
 */
export function presentedToken(req: IncomingMessage, url: URL): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return url.searchParams.get('access_token') ?? undefined;
}

/** Compares in constant time (both sides hashed first, so their lengths do not leak either). */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}

/** `?since=`: undefined when absent, the seq when it is a non-negative integer, null when malformed. */
export function parseSince(value: string | null): number | undefined | null {
  if (value === null) return undefined;
  if (!/^\d{1,16}$/.test(value)) return null;
  const seq = Number(value);
  return Number.isSafeInteger(seq) ? seq : null;
}

/** Answers the upgrade request with an HTTP error and closes the socket once it is written. */
export function refuseUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  const all: Record<string, string | number> = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(message),
    ...headers,
  };
  const head = Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  socket.on('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${head}\r\n\r\n${message}`);
}
