import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Journal } from '../../src/journal/journal.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { allLines, entry, tempJournalDir } from './helpers.js';

const SEG1 = '00000000000000000001.jsonl';

async function journalWith(dir: string, count: number, options: { segmentMaxBytes?: number } = {}): Promise<void> {
  const journal = await Journal.open({ dir, clock: new FakeClock(), ...options });
  for (let i = 1; i <= count; i++) await journal.append(entry(i));
  await journal.close();
}

test('Journal.open() drops a torn last line without a newline; the next append gets head + 1', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 3);
  const path = join(dir, SEG1);
  const goodSize = statSync(path).size;
  appendFileSync(path, '{"seq":4,"message_id":"torn","message_ty');

  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.equal(journal.head, 3);
  assert.equal(statSync(path).size, goodSize);
  assert.equal((await journal.append(entry(4))).seq, 4);
  assert.deepEqual(
    allLines(dir).map((l) => (JSON.parse(l) as { message_id: string }).message_id),
    ['msg-1', 'msg-2', 'msg-3', 'msg-4'],
  );
});

test('Journal.open() drops a last line that is complete but not JSON (zeros from a crash)', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 2);
  appendFileSync(join(dir, SEG1), '\0\0\0\0{"seq":3,"mess\n');
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.equal(journal.head, 2);
  assert.equal((await journal.append(entry(3))).seq, 3);
  assert.equal(allLines(dir).length, 3);
});

test('Journal.open() keeps an empty last segment (crash right after a roll) and continues from its name', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 2);
  writeFileSync(join(dir, '00000000000000000003.jsonl'), '', { mode: 0o600 });
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.equal(journal.head, 2);
  assert.equal(journal.firstSeq, 1);
  assert.equal((await journal.append(entry(3))).seq, 3);
  assert.equal(readFileSync(join(dir, '00000000000000000003.jsonl'), 'utf8').split('\n')[0]!.slice(0, 9), '{"seq":3,');
});

test('Journal.open() ignores files that are not segments', async (t) => {
  const dir = tempJournalDir(t);
  await journalWith(dir, 1);
  writeFileSync(join(dir, 'notes.txt'), 'hello');
  writeFileSync(join(dir, '123.jsonl'), 'garbage');
  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.equal(journal.head, 1);
});

test('Journal survives SIGKILL mid-stream: every seq acknowledged by the child is on disk exactly once', async (t) => {
  const dir = tempJournalDir(t);
  const fixture = fileURLToPath(new URL('./fixtures/append-child.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, '24'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child printed too little: ${out.length} bytes; stderr: ${err}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > 1500) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`child exited early; stderr: ${err}`));
    });
  });
  assert.equal(await exited, 'SIGKILL');

  const acknowledged = out
    .split('\n')
    .filter((l) => /^\d+ \S+$/.test(l))
    .map((l) => l.split(' ') as [string, string]);
  assert.ok(acknowledged.length > 1500);
  const maxAcked = Math.max(...acknowledged.map(([seq]) => Number(seq)));

  const journal = await Journal.open({ dir, clock: new FakeClock() });
  t.after(() => journal.close());
  assert.ok(journal.head >= maxAcked, `head ${journal.head} >= ${maxAcked}`);
  const records = await journal.read(0, 1_000_000);
  assert.deepEqual(
    records.map((r) => r.seq),
    Array.from({ length: journal.head }, (_, i) => i + 1),
    'seqs are dense from 1 to head',
  );
  const bySeq = new Map(records.map((r) => [r.seq, r.message_id]));
  for (const [seq, id] of acknowledged) assert.equal(bySeq.get(Number(seq)), id, `seq ${seq}`);
  assert.equal(new Set(records.map((r) => r.message_id)).size, records.length, 'no message twice');
  assert.ok(journal.stats().segments > 1, 'the run crossed segment roll-overs');
  assert.equal((await journal.append(entry(0))).seq, journal.head);
});
