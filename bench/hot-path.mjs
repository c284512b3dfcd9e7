#!/usr/bin/env node
/**
 * The receiver's JavaScript cost per notification, without sockets: the webhook handler (verification,
 * parsing, de-duplication) and the file journal (group commit on /dev/shm, where fdatasync is free) driven
 * in-process by 32 concurrent callers, as many requests as wrk would keep in flight. What it prints is the
 * CPU time per request that no HTTP server nor kernel shares: the part of BENCHMARKS.md's throughput that is
 * ours. Not a test: it prints figures.
 *
 *   node bench/hot-path.mjs [-n 200000] [-c 32] [--profile]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { Journal } from '../dist/journal/journal.js';
import { Dedup } from '../dist/receiver/dedup.js';
import { createWebhookHandler } from '../dist/receiver/handler.js';
import { signMessage } from '../dist/twitch/signature.js';
import { notificationBody, WEBHOOK_PATH } from './lib/corpus.mjs';
import { summarizeProfile } from './lib/cpuprofile.mjs';

const { values: a } = parseArgs({
  options: { n: { type: 'string', default: '200000' }, c: { type: 'string', default: '32' }, profile: { type: 'boolean', default: false } },
});
const total = Number(a.n);
const concurrency = Number(a.c);
const SECRET = 'bench-webhook-secret-0123456789';
const clock = { now: () => Date.now(), sleep: (ms, signal) => new Promise((r) => setTimeout(r, ms, signal)) };

const dir = mkdtempSync(join('/dev/shm', 'eventsubd-hot-'));
const journal = await Journal.open({ dir: join(dir, 'journal'), clock });
const dedup = new Dedup({ clock });
const handler = createWebhookHandler({ webhookPath: WEBHOOK_PATH, secrets: () => [SECRET], clock, journal, dedup });

const timestamp = new Date().toISOString();
const requests = [];
for (let i = 0; i < total; i++) {
  const id = `0f0c5d1e-2b3a-4c5d-8e9f-${String(i).padStart(12, '0')}`;
  const body = Buffer.from(notificationBody(`ev-${id}`, timestamp));
  const headers = {
    host: '127.0.0.1',
    'user-agent': 'Twitch-Eventsub-Webhooks/1.0',
    'content-type': 'application/json',
    'content-length': String(body.length),
    'twitch-eventsub-message-id': id,
    'twitch-eventsub-message-retry': '0',
    'twitch-eventsub-message-type': 'notification',
    'twitch-eventsub-message-signature': signMessage(SECRET, id, timestamp, body),
    'twitch-eventsub-message-timestamp': timestamp,
  };
  requests.push({ method: 'POST', path: WEBHOOK_PATH, headers, body });
}

async function run(from, to) {
  let next = from;
  let bad = 0;
  const worker = async () => {
    while (next < to) {
      const res = await handler(requests[next++]);
      if (res.status !== 204) bad += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return bad;
}

const warm = Math.min(20_000, Math.floor(total / 5));
await run(0, warm);
const session = a.profile ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const bad = await run(warm, total);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const n = total - warm;
console.log(
  `${n} requests, c=${concurrency}: ${Math.round(n / (ms / 1000))} req/s, ${((ms * 1000) / n).toFixed(1)} µs wall/request, ` +
    `${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU/request (user ${(cpu.user / n).toFixed(1)}), ${journal.stats().fsyncs} fsyncs, non-204 ${bad}`,
);
if (session) {
  const { profile } = await session.post('Profiler.stop');
  const s = summarizeProfile(profile, { top: 25 });
  for (const x of s.byFunction) console.log(`  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.name}`);
}
await journal.close();
rmSync(dir, { recursive: true, force: true });
