/**
 * The dedup window's snapshot (src/receiver/dedup-snapshot.ts): what a graceful stop saves is what the next start
 * holds, key for key and in eviction order; a torn, corrupt, foreign or oversized file is refused with a reason
 * (the daemon then rebuilds from the journal), never half-used.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Dedup } from '../../src/receiver/dedup.js';
import { loadDedupSnapshot, saveDedupSnapshot, type DedupSnapshot } from '../../src/receiver/dedup-snapshot.js';
import { tempDir } from '../auth/fakes.js';
import { FakeClock } from '../helpers/fake-clock.js';

const MARK = { seq: 42, messageId: 'message-42' };

/** A set with wrapped-around, re-added (dead slots) and expired keys: every part of the layout in use. */
async function busyDedup(clock: FakeClock, maxEntries = 5_000): Promise<{ dedup: Dedup; keys: string[] }> {
  const dedup = new Dedup({ clock, retentionMs: 60_000, maxEntries });
  const keys: string[] = [];
  for (let i = 0; i < 8_000; i++) {
    keys.push(`k-${i}`);
    dedup.add(`k-${i}`);
    if (i % 7 === 0) dedup.add(`k-${Math.floor(i / 2)}`); // a re-add: its old slot goes dead
    if (i % 1_000 === 0) await clock.advance(5_000);
  }
  return { dedup, keys };
}

async function loaded(path: string, maxEntries = 5_000): Promise<DedupSnapshot> {
  const s = await loadDedupSnapshot(path, maxEntries);
  assert.ok(s && !('problem' in s), `loaded: ${JSON.stringify(s && 'problem' in s ? s : 'none')}`);
  return s;
}

test('a saved dedup window comes back key for key, and forgets in the same order as the original as time passes', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const { dedup, keys } = await busyDedup(clock);
  const path = join(dir, 'dedup.snapshot');
  const written = await saveDedupSnapshot(path, dedup, MARK);
  assert.equal(written, dedup.size);
  assert.equal(statSync(path).mode & 0o777, 0o600);

  const snapshot = await loaded(path);
  assert.deepEqual({ seq: snapshot.seq, messageId: snapshot.messageId }, MARK);
  const copy = new Dedup({ clock, retentionMs: 60_000, maxEntries: 5_000 });
  assert.equal(copy.adopt(snapshot.state), true);
  const probe = [...keys, 'never-added', 'k-x'];
  const answers = (d: Dedup): boolean[] => probe.map((k) => d.has(k));
  assert.deepEqual(answers(copy), answers(dedup));
  assert.equal(copy.size, dedup.size);
  assert.ok(copy.size > 1_000 && copy.size < keys.length, `some keys held, some gone: ${copy.size}`);
  // The same eviction order: past the cap (new keys) and past the retention (time).
  for (let i = 0; i < 2_000; i++) {
    copy.add(`new-${i}`);
    dedup.add(`new-${i}`);
  }
  assert.deepEqual(answers(copy), answers(dedup));
  await clock.advance(30_000);
  assert.deepEqual(answers(copy), answers(dedup));
  assert.equal(copy.size, dedup.size);
});

test('a snapshot adopted later forgets what expired meanwhile', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const dedup = new Dedup({ clock, retentionMs: 60_000 });
  dedup.add('old');
  await clock.advance(40_000);
  dedup.add('recent');
  const path = join(dir, 'dedup.snapshot');
  await saveDedupSnapshot(path, dedup, MARK);
  await clock.advance(30_000); // 'old' is 70 s old now, 'recent' 30 s
  const copy = new Dedup({ clock, retentionMs: 60_000 });
  assert.equal(copy.adopt((await loaded(path, copy.maxEntries)).state), true);
  assert.equal(copy.has('old'), false);
  assert.equal(copy.has('recent'), true);
  assert.equal(copy.size, 1);
});

test('a damaged or foreign snapshot is refused with its reason, never half-used', async (t) => {
  const dir = await tempDir(t);
  const clock = new FakeClock();
  const { dedup } = await busyDedup(clock);
  const good = join(dir, 'good');
  await saveDedupSnapshot(good, dedup, MARK);
  const bytes = readFileSync(good);
  const eol = bytes.indexOf(0x0a);
  const header = JSON.parse(bytes.toString('utf8', 0, eol)) as Record<string, unknown>;
  const withHeader = (h: Record<string, unknown>): Buffer => Buffer.concat([Buffer.from(`${JSON.stringify(h)}\n`), bytes.subarray(eol + 1)]);
  const flipped = Buffer.from(bytes);
  flipped[eol + 1 + 100] = flipped[eol + 1 + 100]! ^ 0x01;

  const cases: Array<[string, Buffer | ((path: string) => void), RegExp, number?]> = [
    ['torn in the body', bytes.subarray(0, bytes.length - 1), /torn write/],
    ['torn in the header', bytes.subarray(0, 20), /header is missing/],
    ['empty', Buffer.alloc(0), /header is missing/],
    ['one bit flipped in the keys', flipped, /checksum does not match/],
    ['a header that is not JSON', Buffer.concat([Buffer.from('{nope\n'), bytes.subarray(eol + 1)]), /not JSON/],
    ['another format version', withHeader({ ...header, version: 2 }), /format .* is not this version's/],
    ['another digest', withHeader({ ...header, digest: 'sha1' }), /format/],
    ['a count that is not an integer', withHeader({ ...header, head: 1.5 }), /header is not valid/],
    ['a seq of 0', withHeader({ ...header, seq: 0 }), /header is not valid/],
    ['taken with another cap', Buffer.from(bytes), /cap of 5000 keys, not 4000/, 4_000],
    ['larger than any snapshot', Buffer.alloc(5_000 * 60 + 100_000, 0x20), /larger/],
    ['a symbolic link', (p) => symlinkSync(good, p), /symbolic link/],
    ['a directory', (p) => mkdirSync(p), /not a regular file/],
  ];
  for (const [name, content, problem, maxEntries] of cases) {
    const path = join(dir, name.replaceAll(' ', '-'));
    if (typeof content === 'function') content(path);
    else writeFileSync(path, content);
    const r = await loadDedupSnapshot(path, maxEntries ?? 5_000);
    assert.ok(r && 'problem' in r, `${name}: refused`);
    assert.match(r.problem, problem, name);
  }
  assert.equal(await loadDedupSnapshot(join(dir, 'missing'), 5_000), undefined, 'no snapshot: undefined, not a problem');

  // A header whose counts disagree with the arrays (same bytes, so the checksum holds) is refused by adopt.
  const lying = join(dir, 'lying');
  writeFileSync(lying, withHeader({ ...header, live: (header.live as number) + 1 }));
  const state = (await loaded(lying)).state;
  const target = new Dedup({ clock, retentionMs: 60_000, maxEntries: 5_000 });
  target.add('mine');
  assert.equal(target.adopt(state), false);
  assert.equal(target.has('mine'), true, 'a refused state changes nothing');
  assert.equal(target.size, 1);
});
