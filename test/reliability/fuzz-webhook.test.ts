/**
 * Issue #6, item 2: hostile webhook requests, randomized and seeded. The real receiver (`startReceiver` +
 * `createWebhookHandler`) with a real `Journal` in a temp dir gets EVENTSUBD_FUZZ_N (default 2000; full run
 * 20000) malformed requests drawn by a mulberry32 PRNG seeded with EVENTSUBD_FUZZ_SEED (default DEFAULT_SEED, so
 * every run draws the same requests unless told otherwise; printed, so a failure reproduces). Not one may get a 2xx, nothing may be journaled, the server stays up (a valid message afterwards
 * gets 204) and memory growth stays bounded. Counts per class are printed for RELIABILITY.md.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'undici';
import { Journal } from '../../src/journal/journal.js';
import { systemClock } from '../../src/lib/clock.js';
import { Dedup } from '../../src/receiver/dedup.js';
import { createWebhookHandler } from '../../src/receiver/handler.js';
import { startReceiver } from '../../src/receiver/server.js';
import { signMessage } from '../../src/twitch/signature.js';
import { tempDir } from '../helpers/cli.js';
import { mulberry32 } from '../helpers/prng.js';

/** The seed when EVENTSUBD_FUZZ_SEED is not set: a fixed one, so that the suite is the same on every run. */
const DEFAULT_SEED = 20261125;
const SEED = Number(process.env.EVENTSUBD_FUZZ_SEED ?? DEFAULT_SEED) >>> 0;
const N = Math.max(100, Number(process.env.EVENTSUBD_FUZZ_N ?? 2000) || 2000);
const SECRET = 'fuzz-secret-0123456789';
const OTHER_SECRET = 'other-secret-0123456789';
const PATH = '/twitch/eventsub';
/** Heap and RSS may grow by at most this much over the whole run (measured after a full GC). */
const MEMORY_BOUND_BYTES = 160 * 1024 * 1024;
/** Growth allowed in the second half of the run: live heap (after GC), and RSS (the allocator keeps some). */
const LATE_HEAP_BOUND_BYTES = 8 * 1024 * 1024;
const LATE_RSS_BOUND_BYTES = 48 * 1024 * 1024;
/** V8's `gc()` without `--expose-gc` on the command line, so that heap figures count live objects only. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Memory after a full collection. */
const liveMemory = (): NodeJS.MemoryUsage => {
  gc();
  return process.memoryUsage();
};


interface Fuzzed {
  method?: string;
  path?: string;
  /** Flat [name, value, name, value...] so a header can be sent twice. */
  headers: string[];
  body: Buffer;
}

const REQUIRED = ['twitch-eventsub-message-id', 'twitch-eventsub-message-timestamp', 'twitch-eventsub-message-type', 'twitch-eventsub-message-signature'];

function messageBody(id: string): string {
  return JSON.stringify({
    subscription: { id: 'sub-1', status: 'enabled', type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1' }, transport: { method: 'webhook', callback: 'https://x.example/twitch/eventsub' }, created_at: '2026-01-01T00:00:00Z', cost: 0 },
    event: { broadcaster_user_id: '1', id },
  });
}

/** A valid, signed notification: the material every class mutates. */
function valid(id: string, body = messageBody(id), ts = new Date().toISOString(), type = 'notification', secret = SECRET): Map<string, string> & { body: string } {
  const h = new Map<string, string>([
    ['content-type', 'application/json'],
    ['twitch-eventsub-message-id', id],
    ['twitch-eventsub-message-timestamp', ts],
    ['twitch-eventsub-message-type', type],
    ['twitch-eventsub-message-retry', '0'],
    ['twitch-eventsub-message-signature', signMessage(secret, id, ts, body)],
  ]);
  return Object.assign(h, { body });
}

const flat = (h: Map<string, string>): string[] => [...h].flat();

/** The hostile classes. Each returns one request; none is a valid, correctly signed message. */
function classes(rnd: () => number, replayOf: { id: string; body: string; ts: string; sig: string }): Record<string, (id: string) => Fuzzed> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const junk = (max: number): string => {
    const n = Math.floor(rnd() * max);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(0x20 + Math.floor(rnd() * 0x5f));
    return s;
  };
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
  return {
    'missing header': (id) => {
      const v = valid(id);
      v.delete(pick(REQUIRED));
      return { headers: flat(v), body: Buffer.from(v.body) };
    },
    'duplicated header': (id) => {
      const v = valid(id);
      const name = pick(REQUIRED);
      return { headers: [...flat(v), name, rnd() < 0.5 ? v.get(name)! : junk(40)], body: Buffer.from(v.body) };
    },
    'random header values': (id) => {
      const v = valid(id);
      const forced = pick(REQUIRED); // at least one required header is garbage, else the message could be valid
      for (const name of REQUIRED) if (name === forced || rnd() < 0.5) v.set(name, junk(rnd() < 0.1 ? 4000 : 80) || '\u007f');
      if (rnd() < 0.3) v.set('twitch-eventsub-message-signature', 'sha256=' + junk(64));
      return { headers: flat(v), body: Buffer.from(v.body) };
    },
    'truncated body': (id) => {
      const v = valid(id);
      const b = Buffer.from(v.body);
      return { headers: flat(v), body: b.subarray(0, Math.floor(rnd() * b.length)) };
    },
    'oversized body': (id) => {
      const v = valid(id);
      return { headers: flat(v), body: Buffer.concat([Buffer.from(v.body), Buffer.alloc(1024 * 1024 + Math.floor(rnd() * 4096), 0x20)]) };
    },
    'wrong content type, unsigned': (id) => {
      const v = valid(id);
      v.set('content-type', pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', junk(30)]));
      v.set('twitch-eventsub-message-signature', signMessage(OTHER_SECRET, id, v.get('twitch-eventsub-message-timestamp')!, v.body));
      return { headers: flat(v), body: Buffer.from(rnd() < 0.5 ? v.body : 'a=1&b=2') };
    },
    'invalid UTF-8': (id) => {
      // Signed with the right secret, invalid bytes where JSON needs structure; or random bytes with any signature.
      const raw = rnd() < 0.5 ? Buffer.concat([Buffer.from('{"subscription":'), bytes(1 + Math.floor(rnd() * 8)).map((b) => b | 0x80), Buffer.from('}')]) : bytes(Math.floor(rnd() * 512));
      const v = valid(id);
      const ts = v.get('twitch-eventsub-message-timestamp')!;
      v.set('twitch-eventsub-message-signature', signMessage(rnd() < 0.5 ? SECRET : OTHER_SECRET, id, ts, raw));
      return { headers: flat(v), body: raw };
    },
    'bad signature form': (id) => {
      const v = valid(id);
      const sig = v.get('twitch-eventsub-message-signature')!;
      const hex = sig.slice('sha256='.length);
      const ts = v.get('twitch-eventsub-message-timestamp')!;
      const forms = [
        hex,
        sig.toUpperCase(),
        'sha256=' + hex.toUpperCase(),
        'sha1=' + hex.slice(0, 40),
        'SHA256=' + hex,
        'sha256= ' + hex,
        'sha256=' + hex.slice(0, 63),
        'sha256=' + hex + '0',
        signMessage(OTHER_SECRET, id, ts, v.body),
        signMessage(SECRET, id, ts, JSON.stringify(JSON.parse(v.body), null, 1)),
        signMessage(SECRET, id + 'x', ts, v.body),
        signMessage(SECRET + ' ', id, ts, v.body),
        'sha256=',
        'sha256=' + '0'.repeat(64),
      ];
      v.set('twitch-eventsub-message-signature', pick(forms));
      return { headers: flat(v), body: Buffer.from(v.body) };
    },
    'replay, changed body': () => {
      const body = replayOf.body.replace('"broadcaster_user_id":"1"}', `"broadcaster_user_id":"${Math.floor(rnd() * 1e6)}"}`);
      return { headers: flat(new Map([['content-type', 'application/json'], ['twitch-eventsub-message-id', replayOf.id], ['twitch-eventsub-message-timestamp', replayOf.ts], ['twitch-eventsub-message-type', 'notification'], ['twitch-eventsub-message-signature', replayOf.sig]])), body: Buffer.from(body) };
    },
    'replay, changed timestamp': () => {
      const ts = new Date(Date.parse(replayOf.ts) + 1 + Math.floor(rnd() * 60_000)).toISOString();
      return { headers: flat(new Map([['content-type', 'application/json'], ['twitch-eventsub-message-id', `${replayOf.id}`], ['twitch-eventsub-message-timestamp', ts], ['twitch-eventsub-message-type', 'notification'], ['twitch-eventsub-message-signature', replayOf.sig]])), body: Buffer.from(replayOf.body) };
    },
    'signed, stale or future timestamp': (id) => {
      const offset = (11 + Math.floor(rnd() * 10_000)) * 60_000 * (rnd() < 0.5 ? -1 : 1);
      const v = valid(id, undefined, new Date(Date.now() + offset).toISOString());
      return { headers: flat(v), body: Buffer.from(v.body) };
    },
    'signed, malformed JSON or shape': (id) => {
      const body = pick(['', '{', 'null', '[]', '{"subscription":null}', '{"subscription":{},"event":{}}', '{"event":{}}', junk(200), messageBody(id).slice(0, -1), '{"subscription":{"id":1,"type":2}}']);
      const v = valid(id, body, undefined, pick(['notification', 'revocation']));
      return { headers: flat(v), body: Buffer.from(body) };
    },
    'signed, unknown type or bad timestamp': (id) => {
      // (Node trims surrounding header whitespace, so 'notification ' would be a valid type: not used.)
      const bad = rnd() < 0.5;
      const type = bad ? pick(['Notification', 'NOTIFICATION', 'notifications', 'bogus', 'x' + junk(20)]) : 'notification';
      const ts = bad ? new Date().toISOString() : pick(['2026-02-30T00:00:00Z', 'yesterday', new Date().toUTCString(), String(Date.now())]);
      const body = messageBody(id);
      const v = valid(id, body, ts, type);
      return { headers: flat(v), body: Buffer.from(body) };
    },
    'wrong method or path': (id) => {
      const v = valid(id);
      return rnd() < 0.5
        ? { method: pick(['GET', 'PUT', 'DELETE', 'PATCH']), headers: flat(v), body: pick(['GET']) === 'GET' ? Buffer.alloc(0) : Buffer.from(v.body) }
        : { path: pick([PATH + '/', PATH.toUpperCase(), PATH + 'x', '/', '/twitch', PATH + '/../eventsub2']), headers: flat(v), body: Buffer.from(v.body) };
    },
  };
}

test(`fuzz: ${N} hostile webhook requests (seed ${SEED}) get no 2xx, journal nothing, and leave the receiver up with bounded memory`, async (t) => {
  t.diagnostic(`EVENTSUBD_FUZZ_SEED=${SEED} EVENTSUBD_FUZZ_N=${N}`);
  const dir = tempDir('eventsubd-fuzz-');
  const journal = await Journal.open({ dir: join(dir.path, 'journal'), clock: systemClock });
  const handler = createWebhookHandler({ webhookPath: PATH, secrets: () => [SECRET], clock: systemClock, journal, dedup: new Dedup({ clock: systemClock }) });
  const server = await startReceiver({ host: '127.0.0.1', port: 0, handler });
  // A fresh client pool every 500 requests: in a 20,000-request run an undici Agent that had many requests
  // refused or cut off ended up queueing every request without a socket (the server still answered new
  // connections). That is a client artefact; the rotation keeps it out of the measurement.
  const agents: Agent[] = [];
  const agentFor = (i: number): Agent => (agents[Math.floor(i / 500)] ??= new Agent({ connections: 16, keepAliveTimeout: 1_000 }));
  t.after(async () => {
    for (const a of agents) await a.destroy().catch(() => {});
    await server.close();
    await journal.close();
    dir.cleanup();
  });
  let clientTimeouts = 0;
  const sendOne = async (r: Fuzzed, i = 0): Promise<number> => {
    try {
      const res = await request(server.url + (r.path ?? PATH), {
        method: (r.method ?? 'POST') as 'POST',
        headers: r.headers,
        body: r.body,
        dispatcher: agentFor(i),
        headersTimeout: 10_000,
        signal: AbortSignal.timeout(15_000),
      });
      await res.body.dump();
      return res.statusCode;
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') clientTimeouts += 1;
      return 0; // the server cut the connection (e.g. an oversized body), or the client refused a header: not a 2xx
    }
  };

  // One valid message first: the material of the replays; it is journaled once.
  const first = valid(`valid-${randomBytes(4).toString('hex')}`);
  assert.equal(await sendOne({ headers: flat(first), body: Buffer.from(first.body) }), 204);
  const replayOf = { id: first.get('twitch-eventsub-message-id')!, body: first.body, ts: first.get('twitch-eventsub-message-timestamp')!, sig: first.get('twitch-eventsub-message-signature')! };

  const rnd = mulberry32(SEED);
  const table = classes(rnd, replayOf);
  const names = Object.keys(table);
  // Names are drawn up front, requests built when sent (in index order, so a seed still reproduces a run):
  // holding 20,000 requests, some of 1 MiB, at once would measure the test's memory, not the receiver's.
  const plan = Array.from({ length: N }, (_, i) => {
    let name = names[Math.floor(rnd() * names.length)]!;
    if (name === 'oversized body' && rnd() < 0.8) name = 'truncated body'; // 1 MiB each: keep them rare
    return { name, i };
  });

  const memBefore = liveMemory();
  /** Taken when half the plan was sent: memory that kept growing after it would not be bounded. */
  let memHalf: NodeJS.MemoryUsage | undefined;
  const counts = new Map<string, { sent: number; byStatus: Record<string, number> }>();
  const twoXX: string[] = [];
  /** Requests that took over a second (a stalled connection): reported, they are not failures. */
  const slow: string[] = [];
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < plan.length) {
        const { name, i } = plan[next++]!;
        const t0 = Date.now();
        const status = await sendOne(table[name]!(`fuzz-${i}`), i);
        if (memHalf === undefined && next >= plan.length / 2) memHalf = liveMemory();
        if (Date.now() - t0 > 1_000) slow.push(`${name} #${i}: ${status} after ${Date.now() - t0} ms`);
        const c = counts.get(name) ?? { sent: 0, byStatus: {} };
        c.sent += 1;
        c.byStatus[status] = (c.byStatus[status] ?? 0) + 1;
        counts.set(name, c);
        if (status >= 200 && status < 300) twoXX.push(`${name}: ${status}`);
      }
    }),
  );
  const elapsed = Date.now() - started;
  const memAfter = liveMemory();
  for (const [name, c] of [...counts].sort()) t.diagnostic(`${name}: ${c.sent} ${JSON.stringify(c.byStatus)}`);
  const heapGrowth = memAfter.heapUsed - memBefore.heapUsed;
  const rssGrowth = memAfter.rss - memBefore.rss;
  const rssGrowthLate = memAfter.rss - (memHalf ?? memBefore).rss;
  const heapGrowthLate = memAfter.heapUsed - (memHalf ?? memBefore).heapUsed;
  const mib = (n: number): string => (n / 1048576).toFixed(1);
  t.diagnostic(
    `${N} requests in ${elapsed} ms; heap growth ${mib(heapGrowth)} MiB (second half ${mib(heapGrowthLate)}), ` +
      `RSS growth ${mib(rssGrowth)} MiB (second half ${mib(rssGrowthLate)})`,
  );

  t.diagnostic(`client-side timeouts: ${clientTimeouts}; slow (> 1 s): ${slow.length}${slow.length ? ': ' + slow.slice(0, 5).join('; ') : ''}`);
  assert.deepEqual(twoXX, [], `seed ${SEED}`);
  assert.equal([...counts.values()].reduce((a, c) => a + c.sent, 0), N);
  assert.equal(counts.size, names.length, 'every class was exercised');
  assert.equal(journal.head, 1, 'only the first valid message is journaled');
  // The server is still up and still accepts a valid message.
  const after = valid(`after-${randomBytes(4).toString('hex')}`);
  assert.equal(await sendOne({ headers: flat(after), body: Buffer.from(after.body) }), 204);
  assert.equal(journal.head, 2);
  // Client and server share this process, and the allocator keeps some of the 1 MiB bodies' memory: what must
  // hold is that memory stops growing, so the second half of the run may add little; the whole run has a cap.
  assert.ok(heapGrowthLate < LATE_HEAP_BOUND_BYTES, `heap grew ${heapGrowthLate} bytes in the second half`);
  assert.ok(rssGrowthLate < LATE_RSS_BOUND_BYTES, `RSS grew ${rssGrowthLate} bytes in the second half`);
  assert.ok(heapGrowth < MEMORY_BOUND_BYTES, `heap grew ${heapGrowth} bytes`);
  assert.ok(rssGrowth < MEMORY_BOUND_BYTES, `RSS grew ${rssGrowth} bytes`);
});
