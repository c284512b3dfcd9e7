import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CursorSaver } from '../../src/delivery/cursor-saver.js';
import { silentLogger } from '../../src/lib/logger.js';

/** A cursor store whose saves wait until released, recording every value written. */
function slowStore(): { saves: number[]; release: () => void; failNext: boolean; save(seq: number): Promise<void> } {
  let gate: (() => void) | undefined;
  const store = {
    saves: [] as number[],
    failNext: false,
    release: () => gate?.(),
    async save(seq: number): Promise<void> {
      await new Promise<void>((resolve) => {
        gate = resolve;
      });
      if (store.failNext) {
        store.failNext = false;
        throw new Error('EIO');
      }
      store.saves.push(seq);
    },
  };
  return store;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

test('CursorSaver writes at most one save at a time and covers the moves made meanwhile with one more', async () => {
  const store = slowStore();
  const saver = new CursorSaver({ cursor: store, logger: silentLogger, saved: 0 });
  const first = saver.save(1);
  for (let seq = 2; seq <= 100; seq++) void saver.save(seq);
  store.release();
  await settle();
  store.release();
  await first;
  await settle();
  assert.deepEqual(store.saves, [1, 100]);
  assert.equal(saver.saved, 100);
  await saver.save(100);
  assert.deepEqual(store.saves, [1, 100], 'no write when nothing moved');
});

test('CursorSaver keeps the last good value when a save fails, and flush() writes the wanted one', async () => {
  const store = slowStore();
  const saver = new CursorSaver({ cursor: store, logger: silentLogger, saved: 5 });
  store.failNext = true;
  const failing = saver.save(7);
  store.release();
  await failing;
  assert.equal(saver.saved, 5);
  const flushing = saver.flush();
  await settle();
  store.release();
  await flushing;
  assert.deepEqual(store.saves, [7]);
  assert.equal(saver.saved, 7);
});
