import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Agent } from 'undici';
import { AppError } from '../../src/lib/errors.js';
import { backoffDelay } from '../../src/lib/retry.js';
import { HelixEventSubClient, type HelixCallInfo, type HelixEventSubClientOptions } from '../../src/twitch/helix.js';
import { AppToken } from '../../src/twitch/tokens.js';
import type { TokenSource } from '../../src/twitch/types.js';
import type { CreateSubscriptionBody } from '../../src/twitch/wire.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { closedPort, sendJson, startServer, type Handler, type LocalServer } from './local-server.js';

const CLIENT_ID = 'wbmytr93xzw8zbg0p1izqyzzc5mbiz';
const CALLBACK = 'https://events.example.com/twitch/eventsub';
const WEBHOOK_SECRET = '5f1a6e7cd2e7137ccf9e15b2f43fe639';
const PATH = '/helix/eventsub/subscriptions';

/** Hands out tok-1, then a new value on each tokenRejected of the current one; counts calls. */
class CountingTokens implements TokenSource {
  getCalls = 0;
  rejectedCalls = 0;
  #n = 1;
  current: AppToken;
  constructor(private readonly clock: FakeClock) {
    this.current = this.#mint();
  }
  async getToken(): Promise<AppToken> {
    this.getCalls += 1;
    return this.current;
  }
  async tokenRejected(rejected: AppToken): Promise<AppToken> {
    this.rejectedCalls += 1;
    if (rejected.sameValueAs(this.current)) {
      this.#n += 1;
      this.current = this.#mint();
    }
    return this.current;
  }
  #mint(): AppToken {
    return AppToken.fromClientCredentials({ access_token: `tok-${this.#n}-secretvalue`, expires_in: 3600 }, CLIENT_ID, this.clock.now());
  }
}

interface Rig {
  server: LocalServer;
  helix: HelixEventSubClient;
  clock: FakeClock;
  tokens: CountingTokens;
  calls: HelixCallInfo[];
}

async function rig(
  t: { after(fn: () => Promise<void>): void },
  handler: Handler,
  options: Partial<HelixEventSubClientOptions> & { clock?: FakeClock } = {},
): Promise<Rig> {
  const server = await startServer(handler);
  t.after(() => server.close());
  const clock = options.clock ?? new FakeClock(Date.parse('2026-11-24T10:00:00.000Z'), { autoAdvance: true });
  const tokens = new CountingTokens(clock);
  const calls: HelixCallInfo[] = [];
  const helix = new HelixEventSubClient({
    apiUrl: `${server.origin}/helix`,
    clientId: CLIENT_ID,
    tokens,
    clock,
    dispatcher: server.dispatcher,
    random: () => 0.5,
    onCall: (info) => calls.push(info),
    ...options,
  });
  return { server, helix, clock, tokens, calls };
}

const body: CreateSubscriptionBody = {
  type: 'stream.online',
  version: '1',
  condition: { broadcaster_user_id: '1234' },
  transport: { method: 'webhook', callback: CALLBACK, secret: WEBHOOK_SECRET },
};

function sub(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: randomUUID(),
    status: 'enabled',
    type: 'stream.online',
    version: '1',
    condition: { broadcaster_user_id: '1234' },
    created_at: '2026-11-24T10:00:00Z',
    transport: { method: 'webhook', callback: CALLBACK },
    cost: 1,
    ...overrides,
  };
}

const created = (s: Record<string, unknown>): unknown => ({ data: [s], total: 1, total_cost: 1, max_total_cost: 10000 });
const page = (data: unknown[], cursor?: string): unknown => ({
  data,
  total: data.length,
  total_cost: data.length,
  max_total_cost: 10000,
  pagination: cursor ? { cursor } : {},
});

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.ok(!err.message.includes('secretvalue') && !err.message.includes(WEBHOOK_SECRET), 'message leaks a secret');
    assert.ok(!err.message.includes('\n'), 'message is one line');
    return err;
  }
  assert.fail('expected a rejection');
}

test('HelixEventSubClient.create() sends Bearer, Client-Id and the JSON body, and returns the 202 answer', async (t) => {
  const s = sub({ status: 'webhook_callback_verification_pending' });
  const { server, helix, tokens, calls } = await rig(t, (_req, res) => sendJson(res, 202, created(s)));
  const result = await helix.create(body);
  const [req] = server.requests;
  assert.equal(req?.method, 'POST');
  assert.equal(req?.url, PATH);
  assert.equal(req?.headers.authorization, 'Bearer tok-1-secretvalue');
  assert.equal(req?.headers['client-id'], CLIENT_ID);
  assert.equal(req?.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(req?.body ?? ''), body);
  assert.equal(result.adopted, false);
  assert.equal(result.subscription.id, s.id);
  assert.equal(result.totalCost, 1);
  assert.equal(result.maxTotalCost, 10000);
  assert.equal(tokens.getCalls, 1);
  assert.deepEqual(calls, [{ method: 'POST', path: PATH, status: 202, durationMs: 0 }]);
});

test('HelixEventSubClient retries a 401 once with the token from tokenRejected', async (t) => {
  const { server, helix, tokens } = await rig(t, (req, res) =>
    req.headers.authorization === 'Bearer tok-1-secretvalue'
      ? sendJson(res, 401, { error: 'Unauthorized', status: 401, message: 'Invalid OAuth token' })
      : sendJson(res, 200, page([sub()])),
  );
  const result = await helix.list();
  assert.equal(result.subscriptions.length, 1);
  assert.equal(tokens.rejectedCalls, 1);
  assert.equal(tokens.getCalls, 1);
  assert.deepEqual(
    server.requests.map((r) => r.headers.authorization),
    ['Bearer tok-1-secretvalue', 'Bearer tok-2-secretvalue'],
  );
});

test('HelixEventSubClient fails with TWITCH_UNAUTHORIZED on a second 401', async (t) => {
  const { server, helix, tokens } = await rig(t, (_req, res) =>
    sendJson(res, 401, { error: 'Unauthorized', status: 401, message: 'Client ID and OAuth token do not match' }),
  );
  const err = await rejection(helix.delete('abc'));
  assert.equal(err.code, 'TWITCH_UNAUTHORIZED');
  assert.equal(err.message, `DELETE ${PATH} failed: 401 Client ID and OAuth token do not match`);
  assert.equal(server.requests.length, 2);
  assert.equal(tokens.rejectedCalls, 1);
});

test('HelixEventSubClient.list() follows the cursor over 3 pages with the filter on each', async (t) => {
  const pages = [page([sub(), sub()], 'c1'), page([sub()], 'c2'), { ...(page([sub()]) as object), total_cost: 7 }];
  const { server, helix } = await rig(t, (_req, res, i) => sendJson(res, 200, pages[i]));
  const result = await helix.list({ type: 'stream.online' });
  const queries = server.requests.map((r) => new URL(r.url, 'http://x').searchParams);
  assert.deepEqual(queries.map((q) => q.get('type')), ['stream.online', 'stream.online', 'stream.online']);
  assert.deepEqual(queries.map((q) => q.get('after')), [null, 'c1', 'c2']);
  assert.equal(result.pages, 3);
  assert.equal(result.subscriptions.length, 4);
  assert.equal(result.totalCost, 7);
  assert.equal(result.maxTotalCost, 10000);
});

test('HelixEventSubClient.list() refuses two filters at run time without a request', async (t) => {
  const { server, helix } = await rig(t, (_req, res) => sendJson(res, 200, page([])));
  const twoFilters = { status: 'enabled', type: 'stream.online' } as unknown as { status: string };
  const err = await rejection(helix.list(twoFilters));
  assert.equal(err.code, 'USAGE_ERROR');
  assert.equal(server.requests.length, 0);
});

test('HelixEventSubClient waits until Ratelimit-Reset after a 429 with an empty bucket, then succeeds', async (t) => {
  const clock = new FakeClock(Date.parse('2026-11-24T10:00:00.000Z'), { autoAdvance: true });
  const reset = clock.now() / 1000 + 20;
  const { server, helix } = await rig(
    t,
    (_req, res, i) =>
      i === 0
        ? sendJson(res, 429, { error: 'Too Many Requests', status: 429, message: 'Too Many Requests' }, {
            'ratelimit-limit': '800',
            'ratelimit-remaining': '0',
            'ratelimit-reset': String(reset),
          })
        : sendJson(res, 202, created(sub())),
    { clock },
  );
  const result = await helix.create(body);
  assert.equal(result.adopted, false);
  assert.equal(server.requests.length, 2);
  assert.ok(clock.now() >= reset * 1000, 'the retry went out after Ratelimit-Reset');
  assert.ok(clock.now() <= reset * 1000 + 1000, 'and not much later');
});

test('HelixEventSubClient.create() maps a 429 with points left to SUBSCRIPTION_LIMIT without retrying', async (t) => {
  const { server, helix } = await rig(t, (_req, res) =>
    sendJson(res, 429, { error: 'Too Many Requests', status: 429, message: 'maximum subscriptions with type and condition exceeded' }, {
      'ratelimit-limit': '800',
      'ratelimit-remaining': '799',
    }),
  );
  const err = await rejection(helix.create(body));
  assert.equal(err.code, 'SUBSCRIPTION_LIMIT');
  assert.match(err.message, /maximum subscriptions with type and condition exceeded/);
  assert.equal(server.requests.length, 1);
});

test('HelixEventSubClient gives up with TWITCH_RATE_LIMITED after 5 empty-bucket 429s', async (t) => {
  const { server, helix } = await rig(t, (_req, res) => sendJson(res, 429, { message: 'Too Many Requests' }));
  const err = await rejection(helix.list());
  assert.equal(err.code, 'TWITCH_RATE_LIMITED');
  assert.equal(server.requests.length, 6);
});

test('HelixEventSubClient retries 5xx with jittered exponential backoff, then succeeds', async (t) => {
  const { server, helix, clock } = await rig(t, (_req, res, i) =>
    i < 2 ? sendJson(res, 503 - i, { message: 'upstream' }) : sendJson(res, 200, page([sub()])),
  );
  const result = await helix.list();
  assert.equal(result.subscriptions.length, 1);
  assert.equal(server.requests.length, 3);
  const expected = [1, 2].map((a) => backoffDelay(a, { baseMs: 500, maxMs: 10_000, random: () => 0.5 }));
  assert.deepEqual(clock.sleeps, expected);
  assert.deepEqual(expected, [375, 750]);
});

test('HelixEventSubClient stops retrying 5xx after `attempts` tries with TWITCH_HTTP_ERROR', async (t) => {
  const { server, helix } = await rig(t, (_req, res) => sendJson(res, 500, { message: 'internal' }), { retry: { attempts: 3 } });
  const err = await rejection(helix.delete('x'));
  assert.equal(err.code, 'TWITCH_HTTP_ERROR');
  assert.equal((err as AppError & { status: number }).status, 500);
  assert.equal(server.requests.length, 3);
});

test('HelixEventSubClient retries a connection reset', async (t) => {
  const { server, helix } = await rig(t, (_req, res, i) => (i === 0 ? void res.socket?.destroy() : sendJson(res, 200, page([sub()]))));
  const result = await helix.list();
  assert.equal(result.subscriptions.length, 1);
  assert.equal(server.requests.length, 2);
});

test('HelixEventSubClient retries a request that times out', async (t) => {
  const { server, helix } = await rig(
    t,
    (_req, res, i) => {
      if (i > 0) sendJson(res, 204, undefined);
    },
    { timeoutMs: 50 },
  );
  await helix.delete('abc');
  assert.equal(server.requests.length, 2);
  assert.equal(new URL(server.requests[1]?.url ?? '', 'http://x').searchParams.get('id'), 'abc');
});

test('HelixEventSubClient reports TWITCH_UNREACHABLE after all attempts when nothing listens', async () => {
  const port = await closedPort();
  const dispatcher = new Agent();
  const clock = new FakeClock(0, { autoAdvance: true });
  const helix = new HelixEventSubClient({
    apiUrl: `http://127.0.0.1:${port}/helix`,
    clientId: CLIENT_ID,
    tokens: new CountingTokens(clock),
    clock,
    dispatcher,
    retry: { attempts: 3 },
  });
  const err = await rejection(helix.list({ status: 'enabled' }));
  await dispatcher.close();
  assert.equal(err.code, 'TWITCH_UNREACHABLE');
  assert.match(err.message, /^GET \/helix\/eventsub\/subscriptions failed: .*ECONNREFUSED.*\(after 3 attempts\)$/);
  assert.equal(clock.sleeps.length, 2);
});

test('HelixEventSubClient.create() whose answer was lost retries, gets 409 and adopts: one subscription', async (t) => {
  const store: Record<string, unknown>[] = [];
  const { server, helix } = await rig(t, (req, res) => {
    if (req.method === 'GET') return sendJson(res, 200, page(store));
    const sent = JSON.parse(req.body) as CreateSubscriptionBody;
    if (store.length > 0) return sendJson(res, 409, { error: 'Conflict', status: 409, message: 'subscription already exists' });
    const { secret: _secret, ...transport } = sent.transport as { secret: string };
    store.push(sub({ ...sent, transport, status: 'webhook_callback_verification_pending' }));
    res.socket?.destroy(); // recorded, but the 202 never arrives
  });
  const result = await helix.create(body);
  assert.equal(store.length, 1);
  assert.equal(result.adopted, true);
  assert.equal(result.subscription.id, store[0]?.id);
  assert.deepEqual(
    server.requests.map((r) => `${r.method} ${r.url}`),
    [`POST ${PATH}`, `POST ${PATH}`, `GET ${PATH}?type=stream.online`],
  );
});

test('HelixEventSubClient.create() 409 without a matching twin is SUBSCRIPTION_CONFLICT', async (t) => {
  const others = [
    sub({ transport: { method: 'webhook', callback: 'https://other.example.com/cb' } }),
    sub({ condition: { broadcaster_user_id: '1234', extra: 'x' } }),
    sub({ version: '2' }),
    sub({ status: 'webhook_callback_verification_failed' }),
  ];
  const { helix } = await rig(t, (req, res) =>
    req.method === 'GET' ? sendJson(res, 200, page(others)) : sendJson(res, 409, { message: 'subscription already exists' }),
  );
  const err = await rejection(helix.create(body));
  assert.equal(err.code, 'SUBSCRIPTION_CONFLICT');
  assert.match(err.message, /subscription already exists/);
});

test('HelixEventSubClient.create() maps 400 and other 403s to TwitchHttpError and a missing grant to AUTHORIZATION_MISSING, no retry, secret blanked', async (t) => {
  const { server, helix } = await rig(t, (_req, res, i) =>
    i === 0
      ? sendJson(res, 400, { error: 'Bad Request', status: 400, message: `secret ${WEBHOOK_SECRET} is invalid` })
      : i === 1
        ? sendJson(res, 403, { error: 'Forbidden', status: 403, message: 'subscription missing proper authorization' })
        : sendJson(res, 403, { error: 'Forbidden', status: 403, message: 'Client-Id header does not match the token' }),
  );
  const bad = await rejection(helix.create(body));
  assert.equal(bad.code, 'TWITCH_HTTP_ERROR');
  assert.equal(bad.message, `POST ${PATH} failed: 400 secret [redacted] is invalid`);
  // https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription: 403 when a user has not granted the scopes.
  const missing = await rejection(helix.create(body));
  assert.equal(missing.code, 'AUTHORIZATION_MISSING');
  assert.equal(missing.message, 'Cannot create stream.online v1: 403 subscription missing proper authorization');
  const forbidden = await rejection(helix.create(body));
  assert.equal(forbidden.code, 'TWITCH_HTTP_ERROR');
  assert.equal(forbidden.message, `POST ${PATH} failed: 403 Client-Id header does not match the token`);
  assert.equal(server.requests.length, 3);
});

test('HelixEventSubClient.delete() sends ?id= and maps 404 to SUBSCRIPTION_NOT_FOUND', async (t) => {
  const { server, helix, calls } = await rig(t, (_req, res, i) =>
    i === 0 ? void res.writeHead(204).end() : sendJson(res, 404, { error: 'Not Found', status: 404, message: 'subscription not found' }),
  );
  await helix.delete('26b1c993-bfcf');
  assert.equal(server.requests[0]?.method, 'DELETE');
  assert.equal(server.requests[0]?.url, `${PATH}?id=26b1c993-bfcf`);
  const err = await rejection(helix.delete('gone'));
  assert.equal(err.code, 'SUBSCRIPTION_NOT_FOUND');
  assert.deepEqual(calls.map((c) => `${c.path} ${c.status}`), [`${PATH} 204`, `${PATH} 404`]);
});

test('HelixEventSubClient maps bodies of the wrong shape to TWITCH_BAD_RESPONSE', async (t) => {
  const { helix } = await rig(t, (req, res) =>
    req.method === 'GET' ? sendJson(res, 200, { data: [{ id: 'x' }] }) : void res.writeHead(202).end('<html>'),
  );
  assert.equal((await rejection(helix.list())).code, 'TWITCH_BAD_RESPONSE');
  assert.equal((await rejection(helix.create(body))).code, 'TWITCH_BAD_RESPONSE');
});

test('HelixEventSubClient paces by the Ratelimit headers it sees', async (t) => {
  const { helix, clock } = await rig(
    t,
    (_req, res) => sendJson(res, 200, page([]), { 'ratelimit-limit': '800', 'ratelimit-remaining': '0' }),
    { windowMs: 60_000 },
  );
  await helix.list();
  await helix.list();
  assert.deepEqual(clock.sleeps, [75]);
  assert.equal(helix.pacer.snapshot().limit, 800);
});

test('HelixEventSubClient rejects with ABORTED when aborted during a backoff wait', async (t) => {
  const clock = new FakeClock(0);
  const { server, helix } = await rig(t, (_req, res) => sendJson(res, 503, { message: 'down' }), { clock });
  const controller = new AbortController();
  const pending = helix.list({}, { signal: controller.signal });
  while (clock.pending === 0) await flushMicrotasks(1);
  controller.abort();
  const err = await rejection(pending);
  assert.equal(err.code, 'ABORTED');
  assert.equal(server.requests.length, 1);
});

test('HelixEventSubClient passes a token failure through without sending anything', async (t) => {
  const { server, helix, tokens } = await rig(t, (_req, res) => sendJson(res, 200, page([])));
  tokens.getToken = () => Promise.reject(new AppError('TOKEN_UNAVAILABLE', 'Cannot mint an app token: no client secret'));
  const err = await rejection(helix.list());
  assert.equal(err.code, 'TOKEN_UNAVAILABLE');
  assert.equal(server.requests.length, 0);
});

test('usersByLogin: lowercases and deduplicates, asks at most 100 logins a request, joins the pages', async (t) => {
  const r = await rig(t, (req, res) => {
    const logins = new URL(req.url, 'http://x').searchParams.getAll('login');
    sendJson(res, 200, { data: logins.filter((l) => !l.startsWith('ghost')).map((l, i) => ({ id: `${1000 + i}`, login: l, display_name: l.toUpperCase() })) });
  });
  const logins = ['Alice', 'alice', ...Array.from({ length: 150 }, (_, i) => `user${i}`), 'ghost1'];
  const users = await r.helix.usersByLogin(logins);
  assert.equal(r.server.requests.length, 2);
  const perRequest = r.server.requests.map((q) => new URL(q.url, 'http://x').searchParams.getAll('login'));
  assert.deepEqual(perRequest.map((l) => l.length), [100, 52]);
  assert.ok(r.server.requests.every((q) => q.url.startsWith('/helix/users?')));
  assert.equal(perRequest[0]![0], 'alice');
  assert.equal(users.length, 151);
  assert.deepEqual(users[0], { id: '1000', login: 'alice', display_name: 'ALICE' });
});

test('usersByLogin: a body without data is TWITCH_BAD_RESPONSE, a 400 a TWITCH_HTTP_ERROR', async (t) => {
  const bad = await rig(t, (_req, res) => sendJson(res, 200, { users: [] }));
  await assert.rejects(bad.helix.usersByLogin(['alice']), (err: unknown) => err instanceof AppError && err.code === 'TWITCH_BAD_RESPONSE');
  const refused = await rig(t, (_req, res) => sendJson(res, 400, { error: 'Bad Request', status: 400, message: 'Invalid login names, emails or IDs in request' }));
  await assert.rejects(refused.helix.usersByLogin(['alice']), (err: unknown) => err instanceof AppError && err.code === 'TWITCH_HTTP_ERROR' && /Invalid login/.test(err.message));
});
