/**
 * The one place that talks HTTP to Twitch: undici `request` with an explicit dispatcher, a signal and
 * timeouts. It always reads the body to the end (an unread body pins the socket), parses JSON when it can,
 * and turns network errors and timeouts into a one-line `TwitchUnreachableError` that names the method and
 * the path but never the query string, a header or a body (where tokens and secrets live).
 */
import { request, type Dispatcher } from 'undici';
import { AbortedError, TwitchUnreachableError, throwIfAborted } from '../lib/errors.js';
import { ErrorBody } from './wire.js';

/** Headers as undici and node:http hand them over: lower-case names, repeated ones as arrays. */
export type RawHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface HttpCall {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Absolute URL, query included. Only its path ever reaches a message. */
  url: string;
  headers?: Record<string, string>;
  body?: string;
  dispatcher?: Dispatcher | undefined;
  signal?: AbortSignal | undefined;
  /** Applied to both the wait for headers and the gap between body chunks. Default 10 000 ms. */
  timeoutMs?: number | undefined;
}

export interface HttpResult {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The parsed JSON body, or undefined when it is empty or not JSON. */
  body: unknown;
  /** The raw body text. */
  text: string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Performs one request and reads its whole answer.
 * @throws AbortedError when `signal` aborts; TwitchUnreachableError on any network error or timeout.
 */
export async function httpRequest(call: HttpCall): Promise<HttpResult> {
  throwIfAborted(call.signal);
  const timeout = call.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const res = await request(call.url, {
      method: call.method,
      headers: call.headers,
      body: call.body,
      dispatcher: call.dispatcher,
      signal: call.signal,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: flattenHeaders(res.headers), body: parseJson(text), text };
  } catch (err) {
    if (call.signal?.aborted) throw new AbortedError({ cause: call.signal.reason });
    throw new TwitchUnreachableError(`${call.method} ${pathOf(call.url)} failed: ${describeCause(err)}`, {
      cause: err,
    });
  }
}

/** The path of a URL without its query string or fragment, for messages and metrics. */
export function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split(/[?#]/)[0] ?? '';
  }
}

/** Joins a base URL (with or without a trailing slash) and a path that starts with "/". */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

/**
 * Twitch's `message` (or the first part of a non-JSON body) as one line of at most 200 characters, with
 * any of `secrets` blanked out in case Twitch ever echoes one back.
 */
export function twitchMessageOf(res: HttpResult, secrets: readonly (string | undefined)[] = []): string {
  const parsed = ErrorBody.safeParse(res.body);
  const raw = (parsed.success ? (parsed.data.message ?? parsed.data.error) : undefined) ?? (res.body === undefined ? res.text : '');
  let line = raw.replace(/\s+/g, ' ').trim();
  for (const secret of secrets) {
    if (secret) line = line.split(secret).join('[redacted]');
  }
  if (line.length > 200) line = line.slice(0, 197) + '...';
  return line || 'no message';
}

function flattenHeaders(headers: RawHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** undici's error code and first message line (they name hosts and ports, never headers or bodies). */
function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err).split('\n')[0] ?? 'unknown error';
  const code = (err as { code?: unknown }).code;
  const cause = err.cause instanceof Error ? `: ${err.cause.message.split('\n')[0]}` : '';
  const message = (err.message.split('\n')[0] ?? '') + cause;
  return typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message;
}

/**
 * Exactly `application/x-www-form-urlencoded`: some servers (the twitch-cli mock) ignore the body when a
 * `; charset=…` suffix is present (twitchdev/twitch-cli, internal/mock_auth/app_access_token.go).
 */
const FORM = 'application/x-www-form-urlencoded';

/** `POST {base}{path}` with a form body, as id.twitch.tv takes every parameter (secrets never in the URL). */
export function postForm(
  base: string,
  path: string,
  form: URLSearchParams,
  options: { dispatcher?: HttpCall['dispatcher']; signal?: AbortSignal | undefined; timeoutMs?: number | undefined },
): Promise<HttpResult> {
  return httpRequest({
    method: 'POST',
    url: joinUrl(base, path),
    headers: { 'content-type': FORM, accept: 'application/json' },
    body: form.toString(),
    dispatcher: options.dispatcher,
    signal: options.signal,
    timeoutMs: options.timeoutMs,
  });
}
