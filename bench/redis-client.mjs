/**
 * Which Redis client the Redis journal (issue 15) uses, measured rather than guessed: `node bench/redis-client.mjs`.
 *
 * For each client, on ONE connection to a fresh `redis-server` (loopback, temporary dir, AOF on) with
 * `appendfsync always` and again with `appendfsync no`:
 *   (a) 20,000 EVALSHA of a script shaped like the journal's append (SET NX of a dedup key with PX 1200000, INCR of
 *       the seq, XADD of a ~600-byte JSON record; returns the seq), all issued at once, so the client pipelines them:
 *       ops/s and the p50/p99 latency from issue to answer;
 *   (b) 20,000 of the same, each awaited before the next: ops/s (one round trip, and with `always` one fsync, each).
 * Then the offline queue: with it turned off, how long a command takes to fail once the server is gone.
 *
 * Needs `redis-server` on PATH. `redis` (node-redis, the chosen client) is a dependency; `ioredis`, the one it was
 * compared with, is not kept: `npm install --no-save ioredis` first to measure it too (else it is left out).
 * README "Dependencies" records the figures of this machine.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const N = 20_000;
const WARMUP = 500;
const DEDUP_TTL_MS = 1_200_000;

/** KEYS: dedup key, seq key, stream. ARGV: dedup TTL in ms, record JSON. Returns the new seq, or -1 for a duplicate. */
const APPEND_SCRIPT = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return -1 end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], seq .. '-0', 'r', ARGV[2])
return seq`;

/** A ~600-byte record, as the journal stores a stream.online notification. */
function record(i) {
  const id = `bench-${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
  return JSON.stringify({
    seq: i,
    message_id: id,
    received_at: '2026-12-05T09:00:00.000Z',
    subscription_type: 'stream.online',
    subscription_version: '1',
    subscription_id: 'f1c2a387-161a-49f9-a165-0f21d7a4e1c4',
    message_timestamp: '2026-12-05T08:59:59.123456789Z',
    event: {
      id: `ev-${id}`,
      broadcaster_user_id: '1337',
      broadcaster_user_login: 'cool_user',
      broadcaster_user_name: 'Cool_User',
      type: 'live',
      started_at: '2026-12-05T08:59:58.000000000Z',
    },
    padding: 'x'.repeat(150),
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A fresh redis-server; resolves on its "Ready to accept connections" line. */
async function startServer(appendfsync) {
  const dir = await mkdtemp(join(tmpdir(), 'eventsubd-bench-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', appendfsync,
    '--save', '', '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', '',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve, reject) => {
    let log = '';
    child.once('error', (err) => reject(err.code === 'ENOENT' ? new Error('redis-server is not installed: install Debian\'s redis-server; .ci/run does') : err));
    void exited.then(() => reject(new Error(`redis-server exited before it was ready:\n${log}`)));
    const onData = (d) => {
      log = (log + d).slice(-4000);
      if (log.includes('Ready to accept connections')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Each client behind the same three calls, its offline queue OFF (fail fast while Redis is down). */
const CLIENTS = {
  async redis(url) {
    const { createClient } = await import('redis');
    const client = createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 100 } });
    client.on('error', () => {});
    await client.connect();
    const sha = await client.scriptLoad(APPEND_SCRIPT);
    return {
      append: (i) => client.evalSha(sha, { keys: [`d:${i}`, 'seq', 'journal'], arguments: [String(DEDUP_TTL_MS), record(i)] }),
      ping: () => client.ping(),
      emitter: client,
      close: () => client.destroy(),
    };
  },
  async ioredis(url, autoPipelining = true) {
    const { Redis } = await import('ioredis');
    const client = new Redis(url, { enableAutoPipelining: autoPipelining, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => 100 });
    client.on('error', () => {});
    await client.connect();
    const sha = await client.script('LOAD', APPEND_SCRIPT);
    return {
      append: (i) => client.evalsha(sha, 3, `d:${i}`, 'seq', 'journal', DEDUP_TTL_MS, record(i)),
      ping: () => client.ping(),
      emitter: client,
      close: () => client.disconnect(),
    };
  },
  'ioredis (no auto-pipelining)': (url) => CLIENTS.ioredis(url, false),
};

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function measure(name, appendfsync) {
  const server = await startServer(appendfsync);
  const client = await CLIENTS[name](server.url);
  try {
    let i = 0;
    for (const end = i + WARMUP; i < end; i++) await client.append(i);

    const latencies = new Float64Array(N);
    const first = i;
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: N }, (_, k) => {
      const issued = performance.now();
      return client.append(first + k).then((seq) => {
        latencies[k] = performance.now() - issued;
        return Number(seq);
      });
    }));
    const concurrentS = (performance.now() - t0) / 1000;
    i += N;
    if (answers[N - 1] !== first + N) throw new Error(`${name}: the last concurrent append got seq ${answers[N - 1]}, not ${first + N}`);
    const sorted = Array.from(latencies).sort((a, b) => a - b);

    const t1 = performance.now();
    let last;
    for (const end = i + N; i < end; i++) last = Number(await client.append(i));
    const sequentialS = (performance.now() - t1) / 1000;
    if (last !== i) throw new Error(`${name}: the last sequential append got seq ${last}, not ${i}`);

    // Offline queue off: once the client saw the connection drop, a command must fail at once.
    const reconnecting = new Promise((resolve) => client.emitter.once('reconnecting', resolve));
    await server.kill9();
    await reconnecting;
    const t2 = performance.now();
    const failure = await client.ping().then(() => 'answered?!', (err) => err.constructor.name);
    const failFastMs = performance.now() - t2;

    return {
      client: name,
      appendfsync,
      concurrentOps: Math.round(N / concurrentS),
      p50: sorted[Math.floor(N / 2)],
      p99: percentile(sorted, 0.99),
      sequentialOps: Math.round(N / sequentialS),
      failFast: `${failFastMs.toFixed(1)} ms (${failure})`,
    };
  } finally {
    await client.close();
    await server.stop();
  }
}

const names = Object.keys(CLIENTS);
if (!(await import('ioredis').then(() => true, () => false))) {
  console.log('ioredis is not installed (npm install --no-save ioredis): measuring redis only.\n');
  names.splice(1);
}
const rows = [];
for (const appendfsync of ['always', 'no']) {
  for (const name of names) rows.push(await measure(name, appendfsync));
}

const header = ['client', 'appendfsync', `(a) ${N} at once, ops/s`, 'p50 ms', 'p99 ms', `(b) ${N} awaited, ops/s`, 'PING while down fails in'];
const table = [header, ...rows.map((r) => [
  r.client, r.appendfsync, r.concurrentOps.toLocaleString('en'), r.p50.toFixed(1), r.p99.toFixed(1), r.sequentialOps.toLocaleString('en'), r.failFast,
])];
const widths = header.map((_, c) => Math.max(...table.map((row) => row[c].length)));
const line = (row) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of table.slice(1)) console.log(line(row));
