import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEmulator } from '../../src/emulator/index.js';
import { AppError, ConfigError } from '../../src/lib/errors.js';
import { tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { call, form, helix, mint, setup, webhookBody } from './helpers.js';

test('a restarted emulator with the same state file keeps clients, tokens, grants, consents, subscriptions and users', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'emulator.json');
  const { emu, client } = await setup(t, { stateFile: file });
  const appToken = await mint(emu, client);
  emu.addRedirectUri('http://localhost:4000/callback');
  const userToken = emu.registerUserToken({ userId: '12345', login: 'demo_streamer', scopes: ['moderator:read:followers'] });
  emu.setConsent({ userId: '12345', login: 'demo_streamer' });
  emu.registerUser({ id: '777', login: 'other_user' });
  const created = await helix(emu, {
    method: 'POST',
    token: appToken,
    clientId: client.clientId,
    body: webhookBody({ type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '12345', moderator_user_id: '12345' } }),
  });
  assert.equal(created.status, 202);
  await emu.close();
  assert.equal(statSync(file).mode & 0o777, 0o600, 'the state file holds secrets: 0600');
  assert.deepEqual(readdirSync(dir.path), ['emulator.json'], 'no temporary file is left');

  const again = await startEmulator({ clock: new FakeClock(), stateFile: file });
  t.after(() => again.close());
  assert.deepEqual(again.clients, emu.clients, 'the same client, secret and redirect URLs');
  const validated = await call(`${again.authUrl}/validate`, { headers: { authorization: `OAuth ${appToken}` } });
  assert.equal(validated.status, 200, 'the app token a daemon cached still validates');
  assert.equal(again.userTokens()[0]?.token, userToken);
  assert.deepEqual(again.grants(), [{ user_id: '12345', login: 'demo_streamer', scopes: ['moderator:read:followers'] }]);
  const list = await helix(again, { token: appToken, clientId: client.clientId });
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.data, [{ ...created.json.data[0], status: 'enabled' }]);
  assert.deepEqual(again.users().map((u) => u.login).sort(), ['demo_streamer', 'other_user']);
  const consentPage = await call(`${again.url}/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: client.clientId, redirect_uri: 'http://localhost:4000/callback', scope: 'user:bot' }).toString()}`);
  assert.equal(consentPage.status, 302, 'the consent set before the restart still answers the authorize page');
});

test('the options client wins over the state file client with the same id; the file keeps the others', async (t) => {
  const dir = tempDir();
  const file = join(dir.path, 'state.json');
  const first = await startEmulator({ clock: new FakeClock(), stateFile: file, clients: [{ clientId: 'aaaaaaaaaa', clientSecret: 'old-secret-0123' }, {}] });
  const generated = first.clients[1]!;
  await first.close();
  const second = await startEmulator({ clock: new FakeClock(), stateFile: file, clients: [{ clientId: 'aaaaaaaaaa', clientSecret: 'new-secret-0123' }] });
  // after() hooks run in the order they were added: the emulator writes its state file as it closes, then the
  // directory goes (the other way round, rmdir met the file being written: ENOTEMPTY).
  t.after(async () => {
    await second.close();
    dir.cleanup();
  });
  assert.deepEqual(
    second.clients.map((c) => [c.clientId, c.clientSecret]),
    [
      ['aaaaaaaaaa', 'new-secret-0123'],
      [generated.clientId, generated.clientSecret],
    ],
  );
  const res = await call(`${second.authUrl}/token`, { method: 'POST', ...form({ client_id: 'aaaaaaaaaa', client_secret: 'old-secret-0123', grant_type: 'client_credentials' }) });
  assert.equal(res.status, 403, 'the old secret no longer works');
});

test('the state file is rewritten after each change, whole and valid JSON', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'state.json');
  const { emu } = await setup(t, { stateFile: file });
  emu.registerUser({ id: '1', login: 'one' });
  await emu.close();
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { users: unknown[]; format: string };
  assert.equal(saved.format, 'eventsubd-emulator-state');
  assert.deepEqual(saved.users, [{ id: '1', login: 'one', display_name: 'one' }]);
});

test('a corrupt state file is a ConfigError naming --state (exit 78)', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const file = join(dir.path, 'state.json');
  for (const content of ['{"format": "eventsubd-emulator-state", "vers', '{"format":"something-else"}', '[]']) {
    writeFileSync(file, content);
    await assert.rejects(startEmulator({ stateFile: file }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal((err as AppError).code, 'CONFIG_INVALID');
      assert.equal(err.setting, '--state');
      assert.match(err.message, /^--state: .*state\.json/);
      return true;
    });
  }
});
