/**
 * Issue 12, "Done when", end to end through the built CLI (dist/main.js) and a daemon child process against the
 * emulator, driven only through its HTTP control API as a person at a browser would be: a declared
 * `channel.follow` v2 fails with AUTHORIZATION_MISSING naming the moderator; `eventsubd authorize` (consent
 * given at the emulator) records the grant and revokes the user token; the daemon then creates the follow; the
 * moderator disconnecting the app marks the grant revoked and the follow blocked; a new `authorize` brings it
 * back, all with one daemon process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { BIN, ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { freePort, status, useFixture, waitFor, type Fixture } from '../daemon/harness.js';

const FOLLOW = { type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1000', moderator_user_id: '2000' } };
type UserTokens = { data: Array<{ token: string; valid: boolean }> };
const ONLINE = { type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1000' } };

async function control<T = unknown>(f: Fixture, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await request(f.emulator.url + path, {
    method,
    dispatcher: f.agent,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  assert.ok(res.statusCode < 300, `${method} ${path}: ${res.statusCode} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** `eventsubd authorize` as a child process; the test opens the URL it prints, as the user's browser. */
async function authorizeInBrowser(f: Fixture, env: Record<string, string>): Promise<CliResult & { page: string }> {
  const child = spawn(process.execPath, [BIN, 'authorize'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const line = stderr.split('\n').find((l) => l.includes('/oauth2/authorize?'));
      if (line) resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`authorize exited ${code} before printing a URL: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const consent = await request(url, { dispatcher: f.agent });
  await consent.body.dump();
  assert.equal(consent.statusCode, 302);
  const back = await request(consent.headers.location as string, { dispatcher: f.agent });
  const page = await back.body.text();
  assert.equal(back.statusCode, 200, page);
  return { code: await exited, stdout, stderr, page };
}

test('authorize end to end: AUTHORIZATION_MISSING, authorize, created, disconnect, blocked, authorize again, recreated: one daemon', async (t) => {
  const { f, start } = await useFixture(t, { subscriptions: [FOLLOW, ONLINE] });
  const redirect = `http://127.0.0.1:${await freePort()}/callback`;
  await control(f, 'POST', '/_emulator/redirect-uris', { redirect_uri: redirect });
  const env = f.env({ TWITCH_REDIRECT_URL: redirect });
  const d = await start({ TWITCH_REDIRECT_URL: redirect });
  const outputs: string[] = [];

  // The daemon's first sync: the follow waits for its moderator.
  const waiting = await waitFor('the follow waiting for authorization', async () => {
    const s = await status(f);
    return s.authorization.missing.length === 1 ? s : false;
  });
  assert.equal(waiting.authorization.missing[0]?.user_id, '2000');

  // The CLI says the same, and what to run.
  const sync = await runCli(['subscriptions', 'sync'], { env });
  outputs.push(sync.stdout, sync.stderr);
  assert.equal(sync.code, 1, sync.stderr);
  assert.match(sync.stdout, /! needs authorization: user 2000 \(moderator_user_id\) must grant moderator:read:followers: run eventsubd authorize --user 2000/);
  assert.match(sync.stderr, /\neventsubd: AUTHORIZATION_MISSING: 1 declared subscription waits for authorization: user 2000 \(moderator_user_id\) must grant moderator:read:followers; run eventsubd authorize --user 2000\n$/);

  // The moderator consents (set through the emulator's control API) and eventsubd authorize records it.
  await control(f, 'POST', '/_emulator/consent', { user_id: '2000', login: 'mod_marigold' });
  const first = await authorizeInBrowser(f, env);
  outputs.push(first.stdout, first.stderr, first.page);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Authorized mod_marigold \(2000\) by authorization_code: moderator:read:followers; the user token was revoked\./);
  assert.match(first.stdout, new RegExp(`Asked the running daemon \\(pid ${d.pid}\\) to sync`));
  const tokens = (await control<UserTokens>(f, 'GET', '/_emulator/user-tokens')).data;
  assert.equal(tokens.length, 1);
  assert.equal(tokens[0]!.valid, false, 'the emulator shows the user token revoked');
  const recordPath = join(f.stateDir, 'authorizations.json');
  const record = (): { users: Record<string, { scopes: string[]; revoked_at: string | null }> } => JSON.parse(readFileSync(recordPath, 'utf8'));
  assert.equal(statSync(recordPath).mode & 0o777, 0o600);
  assert.deepEqual(record().users['2000']?.scopes, ['moderator:read:followers']);

  // The daemon creates the follow, without a restart.
  const created = await waitFor('the follow created and verified', async () => {
    const follow = f.emulator.subscriptions().find((s) => s.type === 'channel.follow' && s.status === 'enabled');
    const s = await status(f);
    return follow && s.authorization.missing.length === 0 ? follow : false;
  });

  // The moderator disconnects the app.
  assert.deepEqual((await control<{ revoked: string[] }>(f, 'POST', '/_emulator/users/2000/disconnect', {})).revoked, [created.id]);
  const blocked = await waitFor('the follow reported blocked', async () => {
    const s = await status(f);
    return s.sync.blocked?.some((b) => b.id === created.id && b.status === 'authorization_revoked') && s.authorization.revoked.length === 1 ? s : false;
  });
  assert.equal(blocked.authorization.revoked[0]?.user_id, '2000');
  assert.equal(blocked.authorization.missing[0]?.user_id, '2000');
  assert.notEqual(record().users['2000']?.revoked_at, null, 'the grant marked revoked');
  const list = await runCli(['authorizations', 'list'], { env });
  outputs.push(list.stdout, list.stderr);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^2000 mod_marigold revoked .*\(revoked /m);
  assert.match(list.stdout, /Waiting for 2000 \(moderator_user_id\) to grant moderator:read:followers: run eventsubd authorize --user 2000/);

  // A new authorize brings it back.
  const again = await authorizeInBrowser(f, env);
  outputs.push(again.stdout, again.stderr, again.page);
  assert.equal(again.code, 0, again.stderr);
  await waitFor('the follow recreated', async () => {
    const s = await status(f);
    const follow = f.emulator.subscriptions().find((x) => x.type === 'channel.follow' && x.status === 'enabled' && x.id !== created.id);
    return follow && s.authorization.missing.length === 0 && s.authorization.revoked.length === 0;
  });
  assert.ok(d.running, 'the same daemon process throughout');

  const all = (await control<UserTokens>(f, 'GET', '/_emulator/user-tokens')).data;
  assert.equal(all.length, 2);
  for (const token of all) {
    assert.equal(token.valid, false);
    for (const text of [...outputs, d.stderr, readFileSync(recordPath, 'utf8')]) assert.ok(!text.includes(token.token), 'a user token leaked');
  }
});
