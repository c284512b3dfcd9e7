/**
 * One forward attempt: the request a journal record becomes (README.md "Delivery to your application")
 * and its outcome, a 2xx or what went wrong. No retries here: the forwarder owns those.
 */
import { request, type Dispatcher } from 'undici';
import type { Clock } from '../lib/clock.js';
import type { JournalRecord } from '../journal/types.js';
import { signForward } from './signature.js';

/** Why an attempt failed: an HTTP `status` other than 2xx, or a `code` (`TIMEOUT`, `ECONNREFUSED`, ...). */
export interface AttemptFailure {
  status?: number;
  code?: string;
}

export interface ForwardTarget {
  url: string;
  secret?: string | undefined;
  dispatcher?: Dispatcher | undefined;
  clock: Clock;
  /** Measured on `clock`. */
  timeoutMs: number;
}

/**
 * The body and headers for `record`. The body is `JSON.stringify(record)`, which is the journal line itself
 * (without its newline): the line was written by JSON.stringify with `seq` first, and parsing it keeps that
 * key order. The signature, when a secret is set, covers exactly these bytes.
 */
export function forwardRequest(record: JournalRecord, secret: string | undefined): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(record);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'eventsubd',
    'eventsubd-seq': String(record.seq),
    'eventsubd-message-id': record.message_id,
  };
  if (secret) headers['eventsubd-signature'] = signForward(secret, body);
  return { body, headers };
}

/**
 * POSTs once; undefined on a 2xx, else the failure. Redirects are not followed (a 3xx is a failure).
 * Never throws: an abort through `signal` also comes back as a failure, which the caller ignores.
 */
export async function postOnce(
  target: ForwardTarget,
  req: { body: string; headers: Record<string, string> },
  signal: AbortSignal,
): Promise<AttemptFailure | undefined> {
  const timer = new AbortController();
  const timedOut = new AbortController();
  target.clock.sleep(target.timeoutMs, timer.signal).then(
    () => timedOut.abort(),
    () => undefined,
  );
  const both = AbortSignal.any([signal, timedOut.signal]);
  try {
    const res = await request(target.url, { method: 'POST', headers: req.headers, body: req.body, dispatcher: target.dispatcher, signal: both });
    await res.body.dump({ limit: 64 * 1024, signal: both }).catch(() => undefined);
    return res.statusCode >= 200 && res.statusCode < 300 ? undefined : { status: res.statusCode };
  } catch (err) {
    return { code: timedOut.signal.aborted ? 'TIMEOUT' : errorCode(err) };
  } finally {
    timer.abort();
  }
}

/** The first string `code` along the cause chain (undici passes `ECONNREFUSED` etc. through). */
function errorCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return 'NETWORK_ERROR';
}


