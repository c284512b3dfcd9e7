import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent } from 'undici';
import { AppError } from '../../src/lib/errors.js';
import { OAuthClient } from '../../src/twitch/oauth.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { closedPort, sendJson, startServer, type Handler, type LocalServer } from './local-server.js';

const CLIENT_ID = 'hof5gwx0su6owfnys0yan9c87zr6t';
const SECRET = '41vpdji4e9gif29md0ouet6fktd2';
const TOKEN = 'jostpf5q0uzmxmkba9iyug38kjtgh';

async function setup(
  t: { after(fn: () => Promise<void>): void },
  handler: Handler,
  opts: { clientSecret?: string } = { clientSecret: SECRET },
): Promise<{ server: LocalServer; oauth: OAuthClient; clock: FakeClock }> {
  const server = await startServer(handler);
  t.after(() => server.close());
  const clock = new FakeClock();
  const oauth = new OAuthClient({
    authUrl: `${server.origin}/oauth2`,
    clientId: CLIENT_ID,
    clientSecret: opts.clientSecret,
    dispatcher: server.dispatcher,
    clock,
  });
  return { server, oauth, clock };
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

function assertNoSecrets(err: Error): void {
  assert.ok(!err.message.includes(SECRET), 'message leaks the client secret');
  assert.ok(!err.message.includes(TOKEN), 'message leaks the token');
  assert.ok(!err.message.includes('\n'), 'message is one line');
}

test('OAuthClient.mint() posts exactly the client-credentials form and returns an AppToken', async (t) => {
  const { server, oauth, clock } = await setup(t, (_req, res) =>
    sendJson(res, 200, { access_token: TOKEN, expires_in: 5011271, token_type: 'bearer' }),
  );
  const token = await oauth.mint();
  const [req] = server.requests;
  assert.ok(req);
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/oauth2/token');
  assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.equal(req.headers.authorization, undefined);
  assert.deepEqual(Object.fromEntries(new URLSearchParams(req.body)), {
    client_id: CLIENT_ID,
    client_secret: SECRET,
    grant_type: 'client_credentials',
  });
  assert.equal(token.reveal(), TOKEN);
  assert.equal(token.clientId, CLIENT_ID);
  assert.equal(token.origin, 'minted');
  assert.equal(token.obtainedAt, clock.now());
  assert.equal(token.expiresAt, clock.now() + 5011271 * 1000);
});

test('OAuthClient.mint() maps 400 and 403 to TWITCH_AUTH_FAILED with exit 77 and Twitch message', async (t) => {
  const answers = [
    { status: 400, message: 'invalid client' },
    { status: 403, message: 'invalid client secret' },
  ];
  const { oauth } = await setup(t, (_req, res, i) => sendJson(res, answers[i]!.status, answers[i]));
  for (const answer of answers) {
    const err = await rejection(oauth.mint());
    assert.equal(err.code, 'TWITCH_AUTH_FAILED');
    assert.equal(err.exitCode, 77);
    assert.equal((err as AppError & { status: number }).status, answer.status);
    assert.match(err.message, new RegExp(`${answer.status} ${answer.message}$`));
    assertNoSecrets(err);
  }
});

test('OAuthClient.mint() maps other statuses to TWITCH_HTTP_ERROR and a bad 200 to TWITCH_BAD_RESPONSE', async (t) => {
  const { server, oauth } = await setup(t, (_req, res, i) =>
    i === 0 ? sendJson(res, 503, { status: 503, message: 'down for maintenance' }) : sendJson(res, 200, { token: 'x' }),
  );
  const http = await rejection(oauth.mint());
  assert.equal(http.code, 'TWITCH_HTTP_ERROR');
  assert.equal(http.message, 'POST /oauth2/token failed: 503 down for maintenance');
  const bad = await rejection(oauth.mint());
  assert.equal(bad.code, 'TWITCH_BAD_RESPONSE');
  assert.equal(server.requests.length, 2, 'no retries inside the client');
});

test('OAuthClient.mint() without a client secret is a ConfigError naming TWITCH_CLIENT_SECRET and sends nothing', async (t) => {
  const { server, oauth } = await setup(t, (_req, res) => sendJson(res, 200, {}), {});
  const err = await rejection(oauth.mint());
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal((err as AppError & { setting?: string }).setting, 'TWITCH_CLIENT_SECRET');
  assert.match(err.message, /TWITCH_CLIENT_SECRET/);
  assert.equal(server.requests.length, 0);
});

test('OAuthClient.mint() reports an unreachable endpoint without the secret', async () => {
  const port = await closedPort();
  const dispatcher = new Agent();
  const oauth = new OAuthClient({
    authUrl: `http://127.0.0.1:${port}/oauth2`,
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    dispatcher,
    clock: new FakeClock(),
  });
  const err = await rejection(oauth.mint());
  await dispatcher.close();
  assert.equal(err.code, 'TWITCH_UNREACHABLE');
  assert.match(err.message, /^POST \/oauth2\/token failed: .*ECONNREFUSED/);
  assertNoSecrets(err);
});

test('OAuthClient.validate() sends OAuth <token> and parses app, user and null-scope answers', async (t) => {
  const answers = [
    { client_id: CLIENT_ID, scopes: [], expires_in: 5206826 },
    { client_id: CLIENT_ID, login: 'twitchdev', user_id: '141981764', scopes: ['channel:read:subscriptions'], expires_in: 5520838 },
    { client_id: CLIENT_ID, scopes: null, expires_in: 3600 },
  ];
  const { server, oauth } = await setup(t, (_req, res, i) => sendJson(res, 200, answers[i]));
  const app = await oauth.validate(TOKEN);
  const user = await oauth.validate(TOKEN);
  const nullScopes = await oauth.validate(TOKEN);
  assert.equal(server.requests[0]?.method, 'GET');
  assert.equal(server.requests[0]?.url, '/oauth2/validate');
  assert.equal(server.requests[0]?.headers.authorization, `OAuth ${TOKEN}`);
  assert.equal(app?.user_id, undefined);
  assert.deepEqual(app?.scopes, []);
  assert.equal(user?.user_id, '141981764');
  assert.equal(user?.login, 'twitchdev');
  assert.deepEqual(nullScopes?.scopes, []);
  assert.equal(nullScopes?.expires_in, 3600);
});

test('OAuthClient.validate() resolves null on 401 and rejects other statuses and bad shapes', async (t) => {
  const { oauth } = await setup(t, (_req, res, i) => {
    if (i === 0) return sendJson(res, 401, { status: 401, message: 'invalid access token' });
    if (i === 1) return sendJson(res, 401, undefined);
    if (i === 2) return sendJson(res, 500, { status: 500, message: `oops ${TOKEN}` });
    return sendJson(res, 200, { scopes: [] });
  });
  assert.equal(await oauth.validate(TOKEN), null);
  assert.equal(await oauth.validate(TOKEN), null, 'empty 401 body (twitch-cli mock)');
  const http = await rejection(oauth.validate(TOKEN));
  assert.equal(http.code, 'TWITCH_HTTP_ERROR');
  assertNoSecrets(http);
  const bad = await rejection(oauth.validate(TOKEN));
  assert.equal(bad.code, 'TWITCH_BAD_RESPONSE');
});

test('OAuthClient.revoke() posts client_id and token as a form; 400 resolves, 404 rejects', async (t) => {
  const { server, oauth } = await setup(t, (_req, res, i) => {
    if (i === 0) return void res.writeHead(200).end();
    if (i === 1) return sendJson(res, 400, { status: 400, message: 'Invalid token' });
    return sendJson(res, 404, { status: 404, message: 'client does not exist' });
  });
  await oauth.revoke(TOKEN);
  const [req] = server.requests;
  assert.equal(req?.method, 'POST');
  assert.equal(req?.url, '/oauth2/revoke');
  assert.equal(req?.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.deepEqual(Object.fromEntries(new URLSearchParams(req?.body)), { client_id: CLIENT_ID, token: TOKEN });
  await oauth.revoke(TOKEN);
  const err = await rejection(oauth.revoke(TOKEN));
  assert.equal(err.code, 'TWITCH_HTTP_ERROR');
  assert.equal(err.message, 'POST /oauth2/revoke failed: 404 client does not exist');
  assertNoSecrets(err);
});
