import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { CursorStore } from '../../src/journal/cursor.js';

function stateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-cursor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('CursorStore.load() returns 0 when no cursor was saved', async (t) => {
  const store = new CursorStore({ stateDir: stateDir(t), name: 'forward' });
  assert.equal(await store.load(), 0);
});

test('CursorStore.save() persists the seq in cursors/<name>.json, 0600 in a 0700 dir, and load() reads it back', async (t) => {
  const dir = stateDir(t);
  const store = new CursorStore({ stateDir: dir, name: 'forward' });
  await store.save(42);
  await store.save(43);
  assert.equal(await new CursorStore({ stateDir: dir, name: 'forward' }).load(), 43);
  assert.equal(store.path, join(dir, 'cursors', 'forward.json'));
  assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), { seq: 43 });
  assert.equal(statSync(store.path).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'cursors')).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(join(dir, 'cursors')), ['forward.json'], 'no temp file left');
  assert.equal(await new CursorStore({ stateDir: dir, name: 'stream' }).load(), 0, 'cursors are per name');
});

test('CursorStore keeps the old value and leaves no temp file when the rename fails', async (t) => {
  const dir = stateDir(t);
  await new CursorStore({ stateDir: dir, name: 'forward' }).save(7);
  const failing = new CursorStore({
    stateDir: dir,
    name: 'forward',
    fs: {
      rename: async () => {
        throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      },
    },
  });
  await assert.rejects(failing.save(8), { code: 'STATE_DIR_UNUSABLE', message: /EIO/ });
  assert.equal(await failing.load(), 7);
  assert.deepEqual(readdirSync(join(dir, 'cursors')), ['forward.json']);
});

test('CursorStore rejects bad names, bad seqs and unreadable files with STATE_DIR_UNUSABLE', async (t) => {
  const dir = stateDir(t);
  assert.throws(() => new CursorStore({ stateDir: dir, name: '../escape' }), { code: 'STATE_DIR_UNUSABLE' });
  const store = new CursorStore({ stateDir: dir, name: 'forward' });
  await assert.rejects(store.save(-1), { code: 'STATE_DIR_UNUSABLE' });
  await assert.rejects(store.save(1.5), { code: 'STATE_DIR_UNUSABLE' });
  mkdirSync(join(dir, 'cursors'), { recursive: true });
  writeFileSync(store.path, '{"seq":"12"}');
  await assert.rejects(store.load(), { code: 'STATE_DIR_UNUSABLE', message: /current value is "12"/ });
  writeFileSync(store.path, 'nope');
  await assert.rejects(store.load(), { code: 'STATE_DIR_UNUSABLE', message: /not valid JSON/ });
});
