/**
 * The corpus of signed notifications a load generator cycles through: every message has a unique message
 * id and a unique event id (so neither of eventsubd's dedup keys repeats) and a timestamp taken just
 * before the run (well inside Twitch's 10-minute replay window). The file holds complete HTTP/1.1 requests,
 * as Twitch sends them, each preceded by its length in 8 decimal digits, so that wrk's Lua script reads
 * each one as a single string.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { signMessage } from '../../dist/twitch/signature.js';

/** The one subscription every message belongs to: what Twurple serves at /event/stream.online.1337. */
export const BROADCASTER_ID = '1337';
export const SUBSCRIPTION_ID = 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4';

/** The notification body for message `n`, as Twitch sends a stream.online (compact JSON). */
export function notificationBody(eventId, startedAt) {
  return JSON.stringify({
    subscription: {
      id: SUBSCRIPTION_ID,
      status: 'enabled',
      type: 'stream.online',
      version: '1',
      condition: { broadcaster_user_id: BROADCASTER_ID },
      transport: { method: 'webhook', callback: 'https://events.example.com/twitch/eventsub' },
      created_at: '2026-01-01T00:00:00.000000000Z',
      cost: 0,
    },
    event: {
      id: eventId,
      broadcaster_user_id: BROADCASTER_ID,
      broadcaster_user_login: 'cool_user',
      broadcaster_user_name: 'Cool_User',
      type: 'live',
      started_at: startedAt,
    },
  });
}

/** Every receiver under test serves this path (eventsubd gets it from EVENTSUB_CALLBACK_URL). */
export const WEBHOOK_PATH = `/event/stream.online.${BROADCASTER_ID}`;

/** One complete request as Twitch sends it (header names as Twitch spells them). */
export function httpRequest({ id, timestamp, signature, body, path = WEBHOOK_PATH }) {
  return (
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Twitch-Eventsub-Webhooks/1.0\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Twitch-Eventsub-Message-Id: ${id}\r\nTwitch-Eventsub-Message-Retry: 0\r\n` +
    `Twitch-Eventsub-Message-Type: notification\r\nTwitch-Eventsub-Message-Signature: ${signature}\r\n` +
    `Twitch-Eventsub-Message-Timestamp: ${timestamp}\r\nTwitch-Eventsub-Subscription-Type: stream.online\r\n` +
    `Twitch-Eventsub-Subscription-Version: 1\r\n\r\n${body}`
  );
}

/**
 * Writes `count` freshly signed messages to `path`. Ids are UUID-shaped, `<random run prefix>-<n>`, so two corpora never share
 * an id. Resolves with `{count, bytes, ms}`.
 */
export async function writeCorpus(path, { count, secret }) {
  const started = performance.now();
  const r = randomBytes(12).toString('hex');
  // UUID-shaped like Twitch's message ids, the counter in the last group.
  const prefix = `${r.slice(0, 8)}-${r.slice(8, 12)}-4${r.slice(12, 15)}-a${r.slice(15, 18)}`;
  const timestamp = new Date().toISOString();
  const out = createWriteStream(path);
  let bytes = 0;
  let chunk = '';
  for (let n = 0; n < count; n++) {
    const id = `${prefix}-${String(n).padStart(12, '0')}`;
    const body = notificationBody(`ev-${id}`, timestamp);
    const request = httpRequest({ id, timestamp, signature: signMessage(secret, id, timestamp, body), body });
    const line = `${String(Buffer.byteLength(request)).padStart(8, '0')}${request}`;
    chunk += line;
    if (chunk.length > 1 << 20) {
      bytes += chunk.length;
      if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
      chunk = '';
    }
  }
  bytes += chunk.length;
  await new Promise((resolve, reject) => out.end(chunk, (err) => (err ? reject(err) : resolve())));
  return { count, bytes, ms: performance.now() - started };
}
