/**
 * The fast path of a notification's body: one strict pass over the verified bytes that checks they are JSON
 * and finds where the fields the journal keeps lie, so that the journal line is assembled from those bytes
 * instead of parsing the body into objects and serialising them again.
 *
 * It answers only for the common case and says "take the slow path" (undefined) for everything else, the slow
 * path (message.ts `parseBody`) then decides: a body that is not valid JSON, not of the notification's shape,
 * that holds a line break (a journal line is one line), a leading BOM, an escape in a key or in one of the
 * subscription's strings, a repeated key among those read, a number whose text would not come back the same
 * through JSON.parse and JSON.stringify (an exponent, which can overflow to Infinity; `-0`; more than 300
 * characters), or nesting deeper than MAX_DEPTH. So for every body it accepts, the record read back from the
 * journal equals the record the slow path writes (test/receiver/fast-body.test.ts checks both paths byte by
 * byte and record by record, and checks against JSON.parse that no invalid body passes).
 */
import { isUtf8 } from 'node:buffer';
import type { ReceivedSubscription } from './types.js';

/** What the journal line needs from a notification body: the subscription's fields and the raw spans. */
export interface NotificationSpans {
  subscription: ReceivedSubscription;
  /** `[start, end)` of the subscription's `condition` object in the body. */
  condition: readonly [number, number];
  /** `[start, end)` of `event` (an object), or undefined. */
  event: readonly [number, number] | undefined;
  /** `[start, end)` of `events` (an array), or undefined. */
  events: readonly [number, number] | undefined;
}

/** Deeper nesting goes to the slow path (JSON.parse has no limit of its own but the stack's). */
export const MAX_DEPTH = 64;
const MAX_NUMBER_LENGTH = 300;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** -1: invalid JSON or a case for the slow path. Module state keeps the scanner free of per-call closures. */
const FAIL = -1;
let buf: Buffer = Buffer.alloc(0);
let len = 0;
/** Set by scanString: the string just scanned held an escape. */
let escaped = false;

/**
 * The spans of a compact notification body (`{"subscription":{...},"event":{...}}`, any key order, unknown
 * keys allowed), or undefined when the slow path must decide (see the module comment).
 */
export function scanNotification(body: Buffer): NotificationSpans | undefined {
  if (body.length === 0 || body[0] === 0xef || body.indexOf(0x0a) !== -1 || body.indexOf(0x0d) !== -1 || !isUtf8(body)) return undefined;
  buf = body;
  len = body.length;
  try {
    return scanTop();
  } finally {
    buf = EMPTY;
  }
}
const EMPTY = Buffer.alloc(0);

function scanTop(): NotificationSpans | undefined {
  let i = skipWs(0);
  if (buf[i] !== OPEN_OBJECT) return undefined;
  let subscription: ReceivedSubscription | undefined;
  let condition: readonly [number, number] | undefined;
  let event: readonly [number, number] | undefined;
  let events: readonly [number, number] | undefined;
  let sawSubscription = false;
  i = skipWs(i + 1);
  if (buf[i] === CLOSE_OBJECT) return undefined;
  for (;;) {
    if (buf[i] !== QUOTE) return undefined;
    const keyEnd = scanString(i);
    if (keyEnd === FAIL || escaped) return undefined;
    const key = keyOf(i + 1, keyEnd - 1);
    i = skipWs(keyEnd);
    if (buf[i] !== COLON) return undefined;
    const start = skipWs(i + 1);
    if (key === 'subscription') {
      if (sawSubscription || buf[start] !== OPEN_OBJECT) return undefined;
      sawSubscription = true;
      const r = scanSubscription(start);
      if (r === undefined) return undefined;
      [i, subscription, condition] = r;
    } else {
      i = scanValue(start, 1);
      if (i === FAIL) return undefined;
      if (key === 'event') {
        if (event !== undefined || buf[start] !== OPEN_OBJECT) return undefined;
        event = [start, i];
      } else if (key === 'events') {
        if (events !== undefined || buf[start] !== OPEN_ARRAY) return undefined;
        events = [start, i];
      }
    }
    i = skipWs(i);
    if (buf[i] === COMMA) {
      i = skipWs(i + 1);
      continue;
    }
    if (buf[i] !== CLOSE_OBJECT) return undefined;
    break;
  }
  if (skipWs(i + 1) !== len) return undefined;
  if (subscription === undefined || condition === undefined || (event === undefined && events === undefined)) return undefined;
  return { subscription, condition, event, events };
}

/** The subscription object at `i`: `[end, subscription, condition span]`, or undefined for the slow path. */
function scanSubscription(i: number): [number, ReceivedSubscription, readonly [number, number]] | undefined {
  let id: string | undefined;
  let type: string | undefined;
  let version: string | undefined;
  let status: string | undefined;
  let condition: readonly [number, number] | undefined;
  i = skipWs(i + 1);
  if (buf[i] === CLOSE_OBJECT) return undefined;
  for (;;) {
    if (buf[i] !== QUOTE) return undefined;
    const keyEnd = scanString(i);
    if (keyEnd === FAIL || escaped) return undefined;
    const key = keyOf(i + 1, keyEnd - 1);
    i = skipWs(keyEnd);
    if (buf[i] !== COLON) return undefined;
    const start = skipWs(i + 1);
    const end = scanValue(start, 2);
    if (end === FAIL) return undefined;
    switch (key) {
      case 'id':
      case 'type':
      case 'version':
      case 'status': {
        // A non-empty string without escapes (status may be empty): anything else is the slow path's to judge.
        if (buf[start] !== QUOTE || escaped || (key !== 'status' && end - start < 3)) return undefined;
        const value = buf.toString('utf8', start + 1, end - 1);
        if (key === 'id') {
          if (id !== undefined) return undefined;
          id = value;
        } else if (key === 'type') {
          if (type !== undefined) return undefined;
          type = value;
        } else if (key === 'version') {
          if (version !== undefined) return undefined;
          version = value;
        } else {
          if (status !== undefined) return undefined;
          status = value;
        }
        break;
      }
      case 'condition':
        if (condition !== undefined || buf[start] !== OPEN_OBJECT) return undefined;
        condition = [start, end];
        break;
    }
    i = skipWs(end);
    if (buf[i] === COMMA) {
      i = skipWs(i + 1);
      continue;
    }
    if (buf[i] !== CLOSE_OBJECT) return undefined;
    break;
  }
  if (id === undefined || type === undefined || version === undefined || condition === undefined) return undefined;
  // The condition as an object too, for the callbacks (it is small: a few ids).
  const parsed = JSON.parse(buf.toString('utf8', condition[0], condition[1])) as Record<string, unknown>;
  const subscription: ReceivedSubscription = { id, type, version, condition: parsed };
  if (status !== undefined) subscription.status = status;
  return [i + 1, subscription, condition];
}

/** A key's text (no escapes, checked by the caller); the few the scanner looks for are ASCII. */
function keyOf(start: number, end: number): string {
  return end - start <= 12 ? buf.toString('latin1', start, end) : '';
}

function skipWs(i: number): number {
  // Line breaks were ruled out before the scan; space and tab are left.
  while (i < len && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
  return i;
}

/** End (exclusive) of the JSON value at `i`, or FAIL. */
function scanValue(i: number, depth: number): number {
  const c = buf[i];
  if (c === QUOTE) return scanString(i);
  if (c === OPEN_OBJECT) return depth >= MAX_DEPTH ? FAIL : scanObject(i, depth + 1);
  if (c === OPEN_ARRAY) return depth >= MAX_DEPTH ? FAIL : scanArray(i, depth + 1);
  if (c === 0x74) return literal(i, 'true');
  if (c === 0x66) return literal(i, 'false');
  if (c === 0x6e) return literal(i, 'null');
  return scanNumber(i);
}

function scanObject(i: number, depth: number): number {
  i = skipWs(i + 1);
  if (buf[i] === CLOSE_OBJECT) return i + 1;
  for (;;) {
    if (buf[i] !== QUOTE) return FAIL;
    i = scanString(i);
    if (i === FAIL) return FAIL;
    i = skipWs(i);
    if (buf[i] !== COLON) return FAIL;
    i = scanValue(skipWs(i + 1), depth);
    if (i === FAIL) return FAIL;
    i = skipWs(i);
    if (buf[i] === COMMA) {
      i = skipWs(i + 1);
      continue;
    }
    return buf[i] === CLOSE_OBJECT ? i + 1 : FAIL;
  }
}

function scanArray(i: number, depth: number): number {
  i = skipWs(i + 1);
  if (buf[i] === CLOSE_ARRAY) return i + 1;
  for (;;) {
    i = scanValue(i, depth);
    if (i === FAIL) return FAIL;
    i = skipWs(i);
    if (buf[i] === COMMA) {
      i = skipWs(i + 1);
      continue;
    }
    return buf[i] === CLOSE_ARRAY ? i + 1 : FAIL;
  }
}

/** End of the string whose opening quote is at `i` (after the closing quote), or FAIL; sets `escaped`. */
function scanString(i: number): number {
  escaped = false;
  i++;
  while (i < len) {
    const c = buf[i]!;
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return FAIL;
    if (c === BACKSLASH) {
      escaped = true;
      const e = buf[i + 1];
      if (e === 0x75) {
        if (!isHex(buf[i + 2]) || !isHex(buf[i + 3]) || !isHex(buf[i + 4]) || !isHex(buf[i + 5])) return FAIL;
        i += 6;
        continue;
      }
      // " \ / b f n r t
      if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return FAIL;
      i += 2;
      continue;
    }
    i++;
  }
  return FAIL;
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46));
}

/**
 * End of the number at `i`, or FAIL: JSON's grammar (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`),
 * and FAIL too for the numbers whose text does not survive JSON.parse + JSON.stringify (see the module comment).
 */
function scanNumber(i: number): number {
  const start = i;
  let nonZero = false;
  const negative = buf[i] === 0x2d;
  if (negative) i++;
  if (buf[i] === 0x30) i++;
  else if (isDigit(buf[i])) {
    nonZero = true;
    while (isDigit(buf[i])) i++;
  } else return FAIL;
  if (buf[i] === 0x2e) {
    i++;
    if (!isDigit(buf[i])) return FAIL;
    while (isDigit(buf[i])) {
      if (buf[i] !== 0x30) nonZero = true;
      i++;
    }
  }
  // An exponent is valid JSON, but `1e999` becomes Infinity, which JSON.stringify writes as null.
  if (buf[i] === 0x65 || buf[i] === 0x45) return FAIL;
  if (negative && !nonZero) return FAIL; // -0 would come back as 0
  if (i - start > MAX_NUMBER_LENGTH) return FAIL;
  return i;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function literal(i: number, text: string): number {
  for (let k = 0; k < text.length; k++) if (buf[i + k] !== text.charCodeAt(k)) return FAIL;
  return i + text.length;
}
