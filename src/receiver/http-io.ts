/** Reading a node:http request into a ReceiverRequest: the capped body, the path, the distinct headers. */
import type { IncomingMessage } from 'node:http';
import type { ReceiverRequest } from './types.js';

/**
 * Reads the whole body, stopping (and pausing the stream) as soon as it passes `maxBytes`; `progress.bytes`
 * follows what has arrived. Resolves `'aborted'` when the request ends without its full body (client gone,
 * request timeout). Never rejects.
 */
export function readBody(req: IncomingMessage, maxBytes: number, progress?: { bytes: number }): Promise<Buffer | 'too_large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: Buffer | 'too_large' | 'aborted'): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onAbort);
      req.off('error', onAbort);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (progress) progress.bytes = size;
      if (size > maxBytes) {
        chunks.length = 0;
        req.pause();
        finish('too_large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish(Buffer.concat(chunks, size));
    const onAbort = (): void => finish('aborted');
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onAbort);
    req.on('error', onAbort);
  });
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
 * The request's headers by lower-case name, from `rawHeaders`: a header sent once is a string, a repeated one
 * an array of every value (so a repeated Twitch header stays visible). Node's own `headers`/`headersDistinct`
 * are not touched: each would build its object again.
 */
export function readHeaders(req: IncomingMessage): ReceiverRequest['headers'] {
  const headers: ReceiverRequest['headers'] = Object.create(null) as ReceiverRequest['headers'];
  const raw = req.rawHeaders;
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
