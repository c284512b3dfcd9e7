/**
 * STATE_DIR/authorizations.json (src/auth/grant-store.ts): grants merge, a grant event keeps what `authorize`
 * recorded, a revocation is marked and cleared by the next grant, an unreadable record is kept aside, never
 * overwritten, and the file is 0600 with no token in it.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { GrantStore } from '../../src/auth/grant-store.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs, tempDir } from './fakes.js';

async function store(t: Parameters<typeof tempDir>[0]) {
  const dir = join(await tempDir(t), 'state');
  const clock = new FakeClock();
  const logs = captureLogs();
  return { dir, clock, logs, grants: new GrantStore({ stateDir: dir, clock, logger: logs.logger }) };
}

test('grants merge scopes, a grant event keeps the recorded grant, a revocation is marked and cleared by the next grant', async (t) => {
  const { dir, clock, grants } = await store(t);
  assert.deepEqual(await grants.list(), [], 'no file yet: no grant');
  await grants.recordGrant({ userId: '2000', login: 'mod', scopes: ['moderator:read:followers'], how: 'authorization_code' });
  await clock.advance(1000);
  await grants.recordGrant({ userId: '2000', login: 'mod', scopes: ['bits:read'], how: 'device_code' });
  let [g] = await grants.list();
  assert.deepEqual([g?.scopes, g?.how, g?.revokedAt], [['bits:read', 'moderator:read:followers'], 'device_code', null]);

  await grants.recordEvent({ userId: '2000', login: 'mod' });
  [g] = await grants.list();
  assert.deepEqual([g?.scopes, g?.how], [['bits:read', 'moderator:read:followers'], 'device_code'], 'the event names no scopes: the record stays');

  await grants.markRevoked('2000', null);
  [g] = await grants.list();
  assert.equal(g?.revokedAt, new Date(clock.now()).toISOString());
  assert.equal(g?.login, 'mod');
  await grants.recordEvent({ userId: '2000', login: 'mod' });
  [g] = await grants.list();
  assert.deepEqual([g?.scopes, g?.how, g?.revokedAt], [[], 'grant_event', null], 'a new grant after a revocation starts afresh');

  await grants.markRevoked('3000', null);
  assert.deepEqual((await grants.list()).map((r) => [r.userId, r.revokedAt !== null]), [['2000', false], ['3000', true]]);
  assert.equal((await stat(join(dir, 'authorizations.json'))).mode & 0o777, 0o600);
  assert.equal((await stat(dir)).mode & 0o777, 0o700, 'the state directory is created 0700');
});

test('an unreadable record is read as empty, reported, and kept aside as .bad on the next change', async (t) => {
  const { dir, grants, logs } = await store(t);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'authorizations.json');
  await writeFile(path, '{"version": 1, "users": {"2000": {"login": 3}}', { mode: 0o600 });
  assert.deepEqual(await grants.list(), []);
  assert.ok(logs.records().some((r) => r.level === 'warn' && /not in the expected shape/.test(String(r.msg))));
  await grants.recordGrant({ userId: '1000', login: 's', scopes: ['bits:read'], how: 'authorization_code' });
  assert.equal(await readFile(`${path}.bad`, 'utf8'), '{"version": 1, "users": {"2000": {"login": 3}}');
  assert.deepEqual((await grants.list()).map((r) => r.userId), ['1000']);
});

test('a symlink planted as authorizations.json is refused, its target untouched', async (t) => {
  const { dir, grants } = await store(t);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = join(dir, '..', 'elsewhere.json');
  await writeFile(target, 'precious');
  await symlink(target, join(dir, 'authorizations.json'));
  await assert.rejects(grants.list(), (err: Error & { code?: string }) => err.code === 'STATE_DIR_UNUSABLE' && /authorizations\.json/.test(err.message));
  assert.equal(await readFile(target, 'utf8'), 'precious');
});
