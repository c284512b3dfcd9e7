/**
 * The small HTTP vocabulary the routes share: a parsed request, a reply value (routes return replies, the
 * server writes them, so a fault can drop one), and Twitch's two error body shapes.
 */
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';

export interface Req {
  method: string;
  /** Path as requested, no query. */
  rawPath: string;
  /** Path with aliases resolved (`/auth/token` → `/oauth2/token`, `/eventsub/...` → `/helix/eventsub/...`). */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Serialised as JSON. */
  json?: unknown;
  /** Sent as-is (text/plain) when `json` is absent. */
  text?: string;
  /** Runs once the reply has been written (or dropped): e.g. the verification challenge after a 202. */
  after?: () => void;
}

/** id.twitch.tv errors: `{status, message}` without `error` (as in https://dev.twitch.tv/docs/authentication/revoke-tokens/). */
export function oauthError(status: number, message: string): Reply {
  return { status, json: { status, message } };
}

/** Helix errors: `{error, status, message}`, the shape Helix answers with (observed; Twitch documents the statuses). */
export function helixError(status: number, message: string): Reply {
  return { status, json: { error: STATUS_CODES[status] ?? 'Error', status, message } };
}

/** Parameters of an OAuth request: the query string, overlaid by a form body (with or without `; charset=`). */
export function formParams(req: Req): URLSearchParams {
  const params = new URLSearchParams(req.query);
  const type = String(req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded' && req.body.length > 0) {
    for (const [k, v] of new URLSearchParams(req.body.toString('utf8'))) params.set(k, v);
  }
  return params;
}

export type JsonResult = { ok: true; value: unknown } | { ok: false };

/** Parses a JSON body; an empty body is `{ ok: false }`. */
export function parseJson(body: Buffer): JsonResult {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

/** The token after `Authorization: <scheme> `, with the scheme lower-cased; undefined when absent or malformed. */
export function authorization(req: Req): { scheme: string; token: string } | undefined {
  const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(String(req.headers.authorization ?? ''));
  if (!match?.[1] || !match[2]) return undefined;
  return { scheme: match[1].toLowerCase(), token: match[2] };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A refusal by the Emulator API (the object or the control routes), with the HTTP status the control API answers
 * it with: 404 for an unknown id, 409 for a state that does not allow it. A plain Error, like the emulator's other
 * refusals: it is a test tool, and its errors never reach the daemon's error codes.
 */
export class EmulatorRequestError extends Error {
  readonly status: number;

  constructor(status: 404 | 409, message: string) {
    super(message);
    this.name = 'EmulatorRequestError';
    this.status = status;
  }
}
