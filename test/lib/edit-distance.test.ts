import assert from 'node:assert/strict';
import { test } from 'node:test';
import { editDistance, nearestName } from '../../src/lib/edit-distance.js';
import { mulberry32 } from '../helpers/prng.js';

/** The textbook recurrence, with memo: the reference the fast version is checked against. */
function reference(a: string, b: string): number {
  const memo = new Map<string, number>();
  const d = (i: number, j: number): number => {
    if (i === 0) return j;
    if (j === 0) return i;
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let best = Math.min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
    if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d(i - 2, j - 2) + 1);
    memo.set(key, best);
    return best;
  };
  return d(a.length, b.length);
}

test('editDistance() counts insertions, deletions, substitutions and adjacent swaps as 1 each', () => {
  assert.equal(editDistance('channel.folow', 'channel.follow'), 1);
  assert.equal(editDistance('EVENTSUBD_LISTN', 'EVENTSUBD_LISTEN'), 1);
  assert.equal(editDistance('chanenl', 'channel'), 1);
  assert.equal(editDistance('broadcaster_id', 'broadcaster_user_id'), 5);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('abc', ''), 3);
  assert.equal(editDistance('same', 'same'), 0);
});

test('editDistance() agrees with the plain recurrence on random strings', () => {
  const random = mulberry32(13);
  const word = (): string => Array.from({ length: Math.floor(random() * 9) }, () => 'abc_'[Math.floor(random() * 4)]).join('');
  for (let i = 0; i < 500; i++) {
    const a = word();
    const b = word();
    assert.equal(editDistance(a, b), reference(a, b), `${a} / ${b}`);
  }
});

test('nearestName() suggests the nearest candidate within reach, ignoring case, and nothing for an unrelated name', () => {
  const names = ['EVENTSUBD_LISTEN', 'EVENTSUBD_FORWARD_URL', 'EVENTSUBD_STATE_DIR'];
  assert.equal(nearestName('EVENTSUBD_FORWRD_URL', names), 'EVENTSUBD_FORWARD_URL');
  assert.equal(nearestName('eventsubd_listen', names), 'EVENTSUBD_LISTEN');
  assert.equal(nearestName('EVENTSUBD_COLOUR', names), undefined);
  assert.equal(nearestName('ab', ['xy']), 'xy', 'short names: a distance of 2 is still within reach');
  assert.equal(nearestName('abc', ['xyz']), undefined);
  assert.equal(nearestName('user', ['broadcaster_user_id'], { maxDistance: 3 }), undefined);
});
