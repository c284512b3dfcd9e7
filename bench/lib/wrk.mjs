/**
 * Runs `wrk` (Debian's package) with bench/wrk/cycle.lua, which cycles through a pre-signed corpus of
 * complete requests (bench/lib/corpus.mjs), each wrk thread through its own disjoint share, and parses its
 * summary: requests, req/s, latency percentiles, socket errors, answers with status >= 400, requests
 * sent, and whether a thread wrapped around its share (it would then resend ids: the run is void).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMsOf, startChild } from './proc.mjs';

const SCRIPTS = fileURLToPath(new URL('../wrk/', import.meta.url));

/**
 * Runs wrk once, on the first `limit` requests of the corpus (all when 0). `rate` > 0 uses
 * cycle-paced.lua, which sends at that constant rate (req/s) instead of as fast as answers come back.
 * Resolves with the parsed summary plus `rps`, `socketErrors`, `cpuMs` (wrk's own CPU time during the
 * run, from samples every 100 ms: its start-up, reading the corpus, is left out) and `command`.
 * @throws Error when wrk fails or prints no summary.
 */
export function runWrk({ url, corpus, limit = 0, connections, threads = 1, seconds, rate = 0, timeoutS = 10 }) {
  return wrkProcess({ url, corpus, limit, connections, threads, seconds, rate, timeoutS });
}

/**
 * Runs wrk (no time limit of its own, at most `maxSeconds`) until `until()`, polled every `everyMs`,
 * resolves true; then stops it with SIGINT, after which wrk prints its summary as usual.
 */
export function runWrkUntil({ url, corpus, connections, until, everyMs = 200, maxSeconds = 3600 }) {
  return wrkProcess({ url, corpus, limit: 0, connections, threads: 1, seconds: maxSeconds, rate: 0, timeoutS: 10, until, everyMs });
}

async function wrkProcess({ url, corpus, limit, connections, threads, seconds, rate, timeoutS, until, everyMs }) {
  const script = rate > 0 ? 'cycle-paced.lua' : 'cycle.lua';
  const tail = [String(threads), String(Math.round(rate)), String(limit || 'inf')];
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', `${timeoutS}s`, '-s'];
  const wrk = startChild('wrk', [...args, join(SCRIPTS, script), url, '--', corpus, ...tail]);
  const samples = [];
  let polling = false;
  let stopped = false;
  const sampler = setInterval(() => {
    const v = cpuMsOf(wrk.child.pid);
    if (Number.isFinite(v)) samples.push([performance.now(), v]);
  }, 100);
  const poller =
    until &&
    setInterval(async () => {
      if (polling || stopped) return;
      polling = true;
      try {
        if (await until()) {
          stopped = true;
          wrk.child.kill('SIGINT');
        }
      } catch {
        // the receiver may be busy: try again at the next tick
      } finally {
        polling = false;
      }
    }, everyMs);
  const code = await wrk.exited;
  clearInterval(sampler);
  if (poller) clearInterval(poller);
  const last = samples.at(-1);
  const window = until ? Infinity : seconds * 1000;
  const first = last && samples.find(([t]) => t >= last[0] - window);
  const cpuMs = last && first && last !== first ? ((last[1] - first[1]) * Math.min(window, last[0] - first[0])) / (last[0] - first[0]) : Number.NaN;
  const line = wrk.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (code !== 0 || !line) throw new Error(`wrk exited ${code}: ${wrk.stderr.trim() || wrk.stdout.trim()}`);
  const r = JSON.parse(line.slice('BENCH_JSON '.length));
  return {
    ...r,
    rps: r.requests / (r.duration_us / 1e6),
    socketErrors: r.connect + r.read + r.write + r.timeout,
    cpuMs,
    command: `wrk ${args.join(' ')} bench/wrk/${script} ${url.replace(/:\d+$/, ':PORT')} -- CORPUS ${tail.join(' ')}`,
  };
}
