/** Reading a node:http request into a ReceiverRequest: the capped body, the path, the distinct headers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReceiverRequest } from './types.js';

/**
 * Reads a request's whole body, stopping (and pausing the stream) as soon as it passes `maxBytes`, then calls
 * `done` once: with the body, `'too_large'`, or `'aborted'` when the request ends without its full body
 * (client gone, request timeout). `bytes` follows what has arrived and `startedAt` (performance.now()) when the
 * reading began, for the slow-body check. Plain listeners and no promise: it runs for every request.
 */
export class BodyRead {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly headers: ReceiverRequest['headers'];
  readonly hasBody: boolean;
  readonly startedAt = performance.now();
  bytes = 0;
  done = false;
  readonly #max: number;
  readonly #onDone: (read: BodyRead, body: Buffer | 'too_large' | 'aborted') => void;
  #chunks: Buffer[] = [];

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    headers: ReceiverRequest['headers'],
    hasBody: boolean,
    maxBytes: number,
    onDone: (read: BodyRead, body: Buffer | 'too_large' | 'aborted') => void,
  ) {
    this.req = req;
    this.res = res;
    this.headers = headers;
    this.hasBody = hasBody;
    this.#max = maxBytes;
    this.#onDone = onDone;
    req.on('data', (chunk: Buffer) => this.#data(chunk));
    // A body that came in one chunk is that chunk (Node gives each its own memory), not a copy.
    req.on('end', () => this.#finish(this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.bytes)));
    req.on('close', () => this.#finish('aborted'));
    req.on('error', () => this.#finish('aborted'));
  }

  #data(chunk: Buffer): void {
    if (this.done) return;
    this.bytes += chunk.length;
    if (this.bytes > this.#max) {
      this.#chunks = [];
      this.req.pause();
      this.#finish('too_large');
      return;
    }
    this.#chunks.push(chunk);
  }

  #finish(result: Buffer | 'too_large' | 'aborted'): void {
    if (this.done) return;
    this.done = true;
    this.#chunks = [];
    this.#onDone(this, result);
  }
}

/** The path of a request target, without the query; absolute-form targets are reduced to their path. */
export function requestPath(url: string | undefined): string {
  let target = url ?? '/';
  if (/^https?:\/\//i.test(target)) {
    try {
      target = new URL(target).pathname;
    } catch {
      return target;
    }
  }
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * The request's headers by lower-case name: a header sent once is a string, a repeated one an array of every
 * value (so a repeated Twitch header stays visible). Node builds `req.headers` for every request anyway (its
 * server reads Host and Expect), joining or dropping repeated values: when no name repeats, that object is
 * exactly this one and is taken as it is; otherwise they are read again from `rawHeaders`, into an object
 * without a prototype. Either way only own keys are meaningful: look names up, never enumerate inherited ones.
 */
export function readHeaders(req: IncomingMessage): ReceiverRequest['headers'] {
  const node = req.headers;
  let names = 0;
  for (const name in node) {
    if (typeof node[name] !== 'string') return readRawHeaders(req.rawHeaders);
    names += 1;
  }
  return names * 2 === req.rawHeaders.length ? node : readRawHeaders(req.rawHeaders);
}

/** `readHeaders` from the raw name/value list (any name may repeat). */
export function readRawHeaders(raw: readonly string[]): ReceiverRequest['headers'] {
  const headers: ReceiverRequest['headers'] = Object.create(null) as ReceiverRequest['headers'];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else headers[name] = [seen, value];
  }
  return headers;
}

/** Builds the handler's request from the request and its body, with the headers from `readHeaders`. */
export function toReceiverRequest(req: IncomingMessage, body: Buffer, headers = readHeaders(req)): ReceiverRequest {
  return { method: req.method ?? '', path: requestPath(req.url), headers, body };
}
