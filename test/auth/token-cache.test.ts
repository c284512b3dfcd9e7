import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { TokenCache } from '../../src/auth/token-cache.js';
import { StateDirError } from '../../src/lib/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs, CLIENT_ID, FakeOAuth, tempDir } from './fakes.js';

test('TokenCache.write() creates a 0700 directory and a 0600 file that read() returns field for field', async (t) => {
  const dir = join(await tempDir(t), 'nested', 'state');
  const clock = new FakeClock();
  const cache = new TokenCache({ stateDir: dir, clock });
  const token = new FakeOAuth(clock).tokenFor('cache-test-token-value-1');

  await cache.write(token);

  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(dir, 'token.json'))).mode & 0o777, 0o600);
  const file = JSON.parse(await readFile(join(dir, 'token.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(file, {
    access_token: 'cache-test-token-value-1',
    client_id: CLIENT_ID,
    obtained_at: '2026-11-24T10:00:00.000Z',
    expires_at: new Date(clock.now() + 5_011_271_000).toISOString(),
    validated_at: '2026-11-24T10:00:00.000Z',
  });
  assert.deepEqual(await cache.read(), {
    accessToken: 'cache-test-token-value-1',
    clientId: CLIENT_ID,
    obtainedAt: clock.now(),
    expiresAt: clock.now() + 5_011_271_000,
    validatedAt: clock.now(),
  });
});

test('TokenCache stores a never-expiring token as expires_at null and reads it back as MAX_SAFE_INTEGER', async (t) => {
  const clock = new FakeClock();
  const cache = new TokenCache({ stateDir: await tempDir(t), clock });
  await cache.write(new FakeOAuth(clock).tokenFor('never-expiring-token-1', CLIENT_ID, 0));
  const file = JSON.parse(await readFile(cache.path, 'utf8')) as Record<string, unknown>;
  assert.equal(file.expires_at, null);
  assert.equal((await cache.read())?.expiresAt, Number.MAX_SAFE_INTEGER);
});

test('TokenCache.read() returns undefined when the file is missing, without logging', async (t) => {
  const logs = captureLogs();
  const cache = new TokenCache({ stateDir: await tempDir(t), clock: new FakeClock(), logger: logs.logger });
  assert.equal(await cache.read(), undefined);
  assert.deepEqual(logs.lines, []);
});

test('TokenCache.read() ignores a corrupt file with a warning that never shows its content', async (t) => {
  const dir = await tempDir(t);
  const logs = captureLogs();
  const cache = new TokenCache({ stateDir: dir, clock: new FakeClock(), logger: logs.logger });
  await writeFile(join(dir, 'token.json'), '{"access_token":"secret-partial-token-zz');
  assert.equal(await cache.read(), undefined);
  const records = logs.records();
  assert.equal(records.length, 1);
  assert.equal(records[0]?.level, 'warn');
  assert.match(String(records[0]?.msg), /not valid JSON/);
  assert.ok(!logs.lines.join('').includes('secret-partial-token'));
});

test('TokenCache.read() ignores a file of the wrong shape, naming the bad fields but not the values', async (t) => {
  const dir = await tempDir(t);
  const logs = captureLogs();
  const cache = new TokenCache({ stateDir: dir, clock: new FakeClock(), logger: logs.logger });
  await writeFile(
    join(dir, 'token.json'),
    JSON.stringify({ access_token: 'secret-shaped-token-yy', client_id: CLIENT_ID, obtained_at: 'yesterday', expires_at: 5 }),
  );
  assert.equal(await cache.read(), undefined);
  const [record] = logs.records();
  assert.equal(record?.level, 'warn');
  assert.deepEqual(record?.fields, ['obtained_at', 'expires_at']);
  assert.ok(!logs.lines.join('').includes('secret-shaped-token'));
});

test('TokenCache.write() is atomic: concurrent readers only ever see a complete token from some writer', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const logs = captureLogs();
  const cache = new TokenCache({ stateDir: dir, clock, logger: logs.logger });
  const oauth = new FakeOAuth(clock);
  // Long values make a torn write visible if the file were written in place.
  const values = Array.from({ length: 40 }, (_, i) => `atomic-token-${i}-` + 'x'.repeat(20_000));
  await cache.write(oauth.tokenFor(values[0]!));
  const seen: Array<string | undefined> = [];
  let writing = true;
  const reader = async (): Promise<void> => {
    while (writing) seen.push((await cache.read())?.accessToken);
  };
  const readers = Array.from({ length: 4 }, reader);
  await Promise.all(values.map((v) => cache.write(oauth.tokenFor(v))));
  writing = false;
  await Promise.all(readers);

  assert.ok(seen.length > 0);
  const known = new Set(values);
  for (const v of seen) assert.ok(v !== undefined && known.has(v), 'a reader saw a missing, partial or foreign token');
  assert.deepEqual(logs.lines, [], 'no reader met an unparsable file');
  assert.ok(known.has((await cache.read())?.accessToken ?? ''));
  assert.deepEqual(await readdir(dir), ['token.json'], 'no temp file is left behind');
});

test('TokenCache.write() fails with STATE_DIR_UNUSABLE naming the path when the state dir cannot be created', async (t) => {
  const root = await tempDir(t);
  await writeFile(join(root, 'a-file'), 'not a directory');
  const stateDir = join(root, 'a-file', 'state');
  const cache = new TokenCache({ stateDir, clock: new FakeClock() });
  await assert.rejects(cache.write(new FakeOAuth(new FakeClock()).tokenFor('never-written-token')), (err: unknown) => {
    assert.ok(err instanceof StateDirError);
    assert.equal(err.code, 'STATE_DIR_UNUSABLE');
    assert.ok(err.message.includes(stateDir));
    return true;
  });
});

test('TokenCache.remove() deletes the file and tolerates a missing one', async (t) => {
  const clock = new FakeClock();
  const cache = new TokenCache({ stateDir: await tempDir(t), clock });
  await cache.write(new FakeOAuth(clock).tokenFor('removable-token-1'));
  await cache.remove();
  assert.equal(await cache.read(), undefined);
  await cache.remove();
});
