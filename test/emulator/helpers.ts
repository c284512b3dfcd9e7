/** Shared helpers for the emulator tests: a started emulator on a FakeClock, HTTP calls, a tiny receiver. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { request } from 'undici';
import { startEmulator, type Emulator, type EmulatorClient, type EmulatorOptions } from '../../src/emulator/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { untilTurn } from '../helpers/wait.js';

export interface Started {
  emu: Emulator;
  clock: FakeClock;
  client: EmulatorClient;
}

/** Starts an emulator on a FakeClock, closed after the test. */
export async function setup(t: TestContext, options: EmulatorOptions = {}): Promise<Started> {
  const clock = new FakeClock();
  const emu = await startEmulator({ clock, ...options });
  t.after(() => emu.close());
  const client = emu.clients[0];
  if (!client) throw new Error('emulator started without a client');
  return { emu, clock, client };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read Twitch's JSON answers field by field
  json: any;
}

/** Any request; the body is always read (and parsed as JSON when it is). */
export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

export function form(params: Record<string, string>): { headers: Record<string, string>; body: string } {
  return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() };
}

/** Mints an app token for `client` and returns its value. */
export async function mint(emu: Emulator, client: EmulatorClient): Promise<string> {
  const res = await call(`${emu.authUrl}/token`, {
    method: 'POST',
    ...form({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' }),
  });
  if (res.status !== 200) throw new Error(`mint failed: ${res.status} ${res.text}`);
  return res.json.access_token as string;
}

/** A Helix call to /helix/eventsub/subscriptions with Bearer auth and Client-Id. */
export async function helix(
  emu: Emulator,
  init: { method?: string; token: string; clientId: string; query?: string; body?: unknown; path?: string },
): Promise<Answer> {
  const path = init.path ?? '/helix/eventsub/subscriptions';
  return call(`${emu.url}${path}${init.query ? `?${init.query}` : ''}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${init.token}`,
      'client-id': init.clientId,
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(init.body === undefined ? {} : { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }),
  });
}

export const SECRET = 's3cRe7-this-is-a-test-secret';

/** A valid webhook create body for stream.online. */
export function webhookBody(overrides: { type?: string; version?: string; condition?: unknown; transport?: unknown } = {}): unknown {
  return {
    type: overrides.type ?? 'stream.online',
    version: overrides.version ?? '1',
    condition: overrides.condition ?? { broadcaster_user_id: '1234' },
    transport: overrides.transport ?? { method: 'webhook', callback: 'https://events.example.com/twitch/eventsub', secret: SECRET },
  };
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A local webhook receiver that records requests and answers with `respond`. */
export async function startReceiver(
  t: TestContext,
  respond: (req: Received) => { status: number; body: string } | Promise<{ status: number; body: string }>,
): Promise<{ origin: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(r);
      void Promise.resolve(respond(r)).then((answer) => {
        if (res.destroyed) return;
        res.writeHead(answer.status, { 'content-type': 'text/plain' });
        res.end(answer.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { origin: `http://127.0.0.1:${port}`, received };
}

/**
 * Waits until `check` returns true, for async work in the emulator that announces no event (a verification's
 * outcome): the last resort, checked on every turn of the event loop with no timed sleep.
 */
export function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  return untilTurn(check, 'the condition', timeoutMs);
}
