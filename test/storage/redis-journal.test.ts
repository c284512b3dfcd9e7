import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { formatLine, serializeEntry, toRecord, verifiedJson } from '../../src/journal/format.js';
import type { JournalEntry, JournalRecord } from '../../src/journal/types.js';
import { systemClock } from '../../src/lib/clock.js';
import { AppError } from '../../src/lib/errors.js';
import { createJsonLogger, type Logger } from '../../src/lib/logger.js';
import { RedisConnection } from '../../src/storage/redis-connection.js';
import { RedisJournal, type RedisJournalOptions } from '../../src/storage/redis-journal.js';
import type { RedisDurability } from '../../src/storage/types.js';
import { entry } from '../journal/helpers.js';
import { redisClient, startRedisServer } from '../helpers/redis-server.js';
import type { RedisClient } from '../../src/storage/types.js';
import { untilTurn } from '../helpers/wait.js';

const PREFIX = 'eventsubd:test-client';
const STREAM = `${PREFIX}:journal`;

function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createJsonLogger({ sink: { write: (l: string) => lines.push(l) }, level: 'debug' }), lines };
}

/** A started connection and a journal on it, both closed after the test (journal first). */
async function open(
  t: TestContext,
  url: string,
  o: Partial<RedisJournalOptions> & { durability?: RedisDurability } = {},
): Promise<{ journal: RedisJournal; connection: RedisConnection; lines: string[] }> {
  const { logger, lines } = captureLogger();
  const durability = o.durability ?? { kind: 'fsync' };
  const connection = new RedisConnection({ url, durability, clock: systemClock, logger });
  t.after(() => connection.close());
  await connection.start();
  const journal = await RedisJournal.open({ connection, prefix: PREFIX, clock: systemClock, logger, durability, ...o });
  t.after(() => journal.close());
  return { journal, connection, lines };
}

function admin(t: TestContext, url: string): Promise<RedisClient> {
  return redisClient(t, url, { reconnect: false });
}

/** The file journal's record JSON for this entry: its line without the checksum field. */
function fileJournalJson(seq: number, e: JournalEntry): string {
  const json = verifiedJson(formatLine(seq, serializeEntry(e)).slice(0, -1));
  assert.ok(json);
  return json;
}

async function collect(it: AsyncIterable<JournalRecord>): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

test('RedisJournal append/read/range/recent/follow round-trip the file journal\'s exact record JSON at ids <seq>-0', async (t) => {
  const server = await startRedisServer(t);
  const { journal } = await open(t, server.url);
  const entries = [1, 2, 3].map((i) => entry(i, new Date(Date.now() - (3 - i) * 1000).toISOString()));
  const appended = [];
  for (const e of entries) appended.push(await journal.append(e));
  const expected = entries.map((e, i) => toRecord(i + 1, e));
  assert.deepEqual(appended, expected);
  assert.equal(journal.head, 3);
  assert.equal(journal.firstSeq, 1);

  const client = await admin(t, server.url);
  const raw = await client.xRange(STREAM, '-', '+');
  assert.deepEqual(raw?.map((x) => x.id), ['1-0', '2-0', '3-0']);
  raw?.forEach((x, i) => assert.deepEqual(x.message, { record: fileJournalJson(i + 1, entries[i]!) }));

  assert.deepEqual(await journal.read(0), expected);
  assert.deepEqual(await journal.read(1, 1), [expected[1]]);
  assert.deepEqual(await collect(journal.range(1)), expected.slice(1));
  assert.deepEqual(await collect(journal.range(0, 2)), expected.slice(0, 2));
  assert.deepEqual(await collect(journal.recent(Date.parse(entries[1]!.received_at))), expected.slice(1));

  const ac = new AbortController();
  const seen: JournalRecord[] = [];
  for await (const r of journal.follow(1, ac.signal)) {
    seen.push(r);
    if (seen.length === 2) void journal.append(entry(4));
    if (seen.length === 3) ac.abort();
  }
  assert.deepEqual(seen, [...expected.slice(1), toRecord(4, entry(4))]);
  const stats = journal.stats();
  assert.equal(stats.appends, 4);
  assert.ok(stats.fsyncs >= 1 && stats.fsyncs <= 4);
  assert.equal(stats.fsyncHistogram.count, 4);
  assert.equal(stats.segments, 0);
  assert.equal(stats.head, 4);
});

test('RedisJournal keeps seq dense across two instances appending 2 × 1,000 concurrently on one Redis', async (t) => {
  const server = await startRedisServer(t);
  const a = await open(t, server.url);
  const b = await open(t, server.url);
  const results = await Promise.all([
    ...Array.from({ length: 1000 }, (_, i) => a.journal.append(entry(i))),
    ...Array.from({ length: 1000 }, (_, i) => b.journal.append(entry(1000 + i))),
  ]);
  const seqs = results.map((r) => r!.seq).sort((x, y) => x - y);
  assert.deepEqual(seqs, Array.from({ length: 2000 }, (_, i) => i + 1));
  const all = await collect(a.journal.range(0, 2000));
  assert.deepEqual(all.map((r) => r.seq), seqs);
  assert.equal(new Set(all.map((r) => r.message_id)).size, 2000);
  // Pipelined: far fewer round trips than appends.
  assert.ok(a.journal.stats().fsyncs < 1000, `fsyncs ${a.journal.stats().fsyncs}`);
});

test('RedisJournal: the same message id appended at the same instant by two instances gives one entry; one resolves undefined', async (t) => {
  const server = await startRedisServer(t);
  const a = await open(t, server.url);
  const b = await open(t, server.url);
  for (let i = 0; i < 50; i++) {
    const [x, y] = await Promise.all([a.journal.append(entry(i)), b.journal.append(entry(i))]);
    const stored = [x, y].filter((r) => r !== undefined);
    assert.equal(stored.length, 1, `message ${i}: ${JSON.stringify([x, y])}`);
    assert.equal(stored[0]!.message_id, `msg-${i}`);
  }
  const client = await admin(t, server.url);
  assert.equal(await client.xLen(STREAM), 50);
  assert.equal(await a.journal.append(entry(7)), undefined, 'a later retry is a duplicate too');
  const ttl = await client.pTTL(`${PREFIX}:dedup:msg-7`);
  assert.ok(ttl > 20 * 60_000 && ttl <= 21 * 60_000, `dedup TTL ${ttl}`);
  assert.equal(await client.get(`${PREFIX}:dedup:msg-7`), String((await a.journal.read(0)).find((r) => r.message_id === 'msg-7')!.seq));
  await assert.rejects(
    RedisJournal.open({ connection: a.connection, prefix: PREFIX, clock: systemClock, logger: captureLogger().logger, durability: { kind: 'fsync' }, dedupRetentionMs: 60_000 }),
    { code: 'CONFIG_INVALID' },
  );
});

test('RedisJournal.follow() sees what another instance appends, through the shared XREAD BLOCK tail', async (t) => {
  const server = await startRedisServer(t);
  const writer = await open(t, server.url);
  const reader = await open(t, server.url);
  const ac = new AbortController();
  const seen: JournalRecord[] = [];
  const following = (async () => {
    for await (const r of reader.journal.follow(0, ac.signal)) {
      seen.push(r);
      if (seen.length === 5) ac.abort();
    }
  })();
  for (let i = 1; i <= 5; i++) await writer.journal.append(entry(i));
  await following;
  assert.deepEqual(seen.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.equal(reader.journal.head, 5);
});

test('RedisJournal survives kill -9 of Redis mid-load: every resolved append is stored once, outage appends reject within ~5 s', async (t) => {
  const server = await startRedisServer(t);
  const { journal, connection } = await open(t, server.url);
  const follower = await open(t, server.url);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const followed: number[] = [];
  const following = (async () => {
    for await (const r of follower.journal.follow(0, ac.signal)) followed.push(r.seq);
  })();

  const resolved = new Map<string, number>();
  let next = 0;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop) {
      const e = entry(next++);
      try {
        const r = await journal.append(e);
        if (r) resolved.set(e.message_id, r.seq);
      } catch {
        // Rejected: Twitch would retry; nothing is promised.
      }
    }
  };
  const workers = Array.from({ length: 16 }, () => worker());
  await untilTurn(() => resolved.size >= 300, '300 appends before the crash');
  await server.kill9();
  await untilTurn(() => !connection.ready && !journal.writable, 'not writable after the crash');
  const t0 = performance.now();
  await assert.rejects(journal.append(entry(1_000_000)), (err: unknown) => err instanceof AppError && err.code === 'REDIS_UNAVAILABLE');
  const waited = performance.now() - t0;
  assert.ok(waited >= 4_000 && waited < 7_000, `rejected after ${waited} ms`);

  await server.restart();
  await untilTurn(() => journal.writable, 'writable again without a new RedisJournal', 15_000);
  const before = resolved.size;
  await untilTurn(() => resolved.size >= before + 100, 'appends resolve again after the restart', 15_000);
  stop = true;
  await Promise.all(workers);

  const client = await admin(t, server.url);
  const stored = (await client.xRange(STREAM, '-', '+')) ?? [];
  const byId = new Map<string, number>();
  for (const { id, message } of stored) {
    const record = JSON.parse(message.record!) as JournalRecord;
    assert.equal(`${record.seq}-0`, id);
    assert.equal(byId.has(record.message_id), false, `${record.message_id} stored twice`);
    byId.set(record.message_id, record.seq);
  }
  for (const [id, seq] of resolved) assert.equal(byId.get(id), seq, `${id} resolved with seq ${seq} but is not stored so`);

  // The follower rode out the outage: it ends with every stored seq, once, in order.
  const last = stored.at(-1)!.id;
  await untilTurn(() => followed.at(-1) === Number(last.split('-')[0]), 'the follower reaching the head', 15_000);
  ac.abort();
  await following;
  assert.deepEqual(followed, stored.map((s) => Number(s.id.split('-')[0])));
});

test('RedisJournal.open() succeeds while Redis is down; the head becomes known and appends work once it is up', async (t) => {
  const server = await startRedisServer(t);
  const first = await open(t, server.url);
  await first.journal.append(entry(1));
  await first.journal.append(entry(2));
  await server.stop();
  const { journal } = await open(t, server.url);
  assert.equal(journal.writable, false);
  assert.equal(journal.head, 0);
  await server.restart();
  await untilTurn(() => journal.writable && journal.head === 2, 'writable with the head read from Redis', 15_000);
  assert.equal((await journal.append(entry(3)))?.seq, 3);
});

test('RedisJournal.prune() trims by age (received_at) and by approximate bytes, never without a limit', async (t) => {
  const server = await startRedisServer(t);
  const old = new Date(Date.now() - 2 * 3600_000).toISOString();
  const fresh = new Date().toISOString();
  const unlimited = await open(t, server.url);
  for (let i = 1; i <= 10; i++) await unlimited.journal.append(entry(i, old));
  for (let i = 11; i <= 15; i++) await unlimited.journal.append(entry(i, fresh));
  assert.equal(await unlimited.journal.prune(), 0, 'no retention set: nothing trimmed');

  const byAge = await open(t, server.url, { retention: { maxAgeMs: 3600_000 } });
  await untilTurn(() => byAge.journal.head === 15, 'head read');
  const removed = await byAge.journal.prune();
  assert.ok(removed === 10 || (removed === 0 && byAge.journal.firstSeq === 11), `removed ${removed}`);
  assert.equal(byAge.journal.firstSeq, 11);
  assert.deepEqual((await byAge.journal.read(0)).map((r) => r.seq), [11, 12, 13, 14, 15]);

  for (let i = 16; i <= 200; i++) await byAge.journal.append(entry(i, fresh));
  const client = await admin(t, server.url);
  const usage = Number(await client.memoryUsage(STREAM));
  const bySize = await open(t, server.url, { retention: { maxBytes: Math.floor(usage / 4) } });
  await bySize.journal.prune();
  const left = await client.xLen(STREAM);
  assert.ok(left < 190 / 2 && left >= 1, `${left} entries left`);
  const records = await bySize.journal.read(0, 1000);
  assert.equal(records.at(-1)!.seq, 200, 'the newest entries are kept');
  assert.equal(bySize.journal.firstSeq, records[0]!.seq);
});

test('RedisJournal skips an entry whose record field does not parse, reports it once, and goes on', async (t) => {
  const server = await startRedisServer(t);
  const { journal, lines } = await open(t, server.url);
  await journal.append(entry(1));
  const client = await admin(t, server.url);
  await client.xAdd(STREAM, '2-0', { record: '{"seq":2,"message_id":' });
  await client.set(`${PREFIX}:journal:seq`, '2');
  assert.equal((await journal.append(entry(3)))?.seq, 3);
  assert.deepEqual((await journal.read(0)).map((r) => r.seq), [1, 3]);
  assert.deepEqual((await collect(journal.range(0))).map((r) => r.seq), [1, 3]);
  assert.equal(journal.stats().corrupt, 1);
  assert.equal(lines.filter((l) => /record field is not a record/.test(l)).length, 1);
});

test('RedisJournal with replicas:N waits for N replicas: with none it rejects (JOURNAL_UNWRITABLE), with one it resolves', async (t) => {
  const primary = await startRedisServer(t);
  const lonely = await open(t, primary.url, { durability: { kind: 'replicas', replicas: 1 } });
  await assert.rejects(lonely.journal.append(entry(1)), { code: 'JOURNAL_UNWRITABLE', message: /Only 0 of 1 Redis replicas/ });
  const client = await admin(t, primary.url);
  // The primary's default waits 5 s for more replicas before a diskless full sync.
  await client.configSet('repl-diskless-sync-delay', '0');
  await startRedisServer(t, { args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  const deadline = performance.now() + 10_000;
  while (!/connected_slaves:1\b[\s\S]*state=online/.test(await client.info('replication'))) {
    assert.ok(performance.now() < deadline, 'the replica did not come online');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => lonely.journal.append(entry(100 + i))));
  assert.equal(results.filter((r) => r !== undefined).length, 50);
  assert.ok(lonely.journal.stats().fsyncs < 50, 'one WAIT covers many appends');
});
