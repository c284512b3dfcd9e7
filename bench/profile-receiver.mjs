#!/usr/bin/env node
/**
 * One receiver under wrk, with V8's CPU profile of the measured run: the tool behind BENCHMARKS.md's "A profile"
 * and the step-by-step profiles of the receiver's hot path. Not a test: it prints figures.
 *
 *   node bench/profile-receiver.mjs [--target eventsubd|twurple|plain] [-c 32] [-s 4] [--rate N] [--tmpfs] [--top 25]
 *                                   [--node-args=--max-semi-space-size=16] [--no-profile]
 *
 * `--rate N` sends at N req/s (bench/wrk/cycle-paced.lua, as the report's half-rate figure does) instead of as fast
 * as answers come back. `--tmpfs` puts eventsubd's state directory on /dev/shm (fdatasync is then free: what is left is CPU). Build
 * first (`npm run build`); needs Debian's wrk. Everything stays on 127.0.0.1.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulator } from '../dist/emulator/index.js';
import { writeCorpus } from './lib/corpus.mjs';
import { summarizeProfile } from './lib/cpuprofile.mjs';
import { openInspector } from './lib/inspector.mjs';
import { SECRET, startTarget } from './lib/targets.mjs';
import { runWrk } from './lib/wrk.mjs';

const { values: a } = parseArgs({
  options: {
    target: { type: 'string', default: 'eventsubd' },
    c: { type: 'string', default: '32' },
    s: { type: 'string', default: '4' },
    tmpfs: { type: 'boolean', default: false },
    rate: { type: 'string', default: '0' },
    'node-args': { type: 'string', default: '' },
    top: { type: 'string', default: '25' },
    'no-profile': { type: 'boolean', default: false },
  },
});
const seconds = Number(a.s);
const dir = mkdtempSync(join('/dev/shm', 'eventsubd-prof-'));
const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
try {
  const warm = join(dir, 'warm.bin');
  const main = join(dir, 'main.bin');
  await writeCorpus(warm, { count: 30_000, secret: SECRET });
  await writeCorpus(main, { count: 40_000 * seconds, secret: SECRET });
  const target = await startTarget(a.target, {
    emulator,
    nodeArgs: [...(a['node-args'] ? a['node-args'].split(' ') : []), ...(a['no-profile'] ? [] : ['--inspect-port=127.0.0.1:0'])],
    stateRoot: a.tmpfs ? '/dev/shm' : tmpdir(),
  });
  try {
    await runWrk({ url: target.url, corpus: warm, connections: Number(a.c), seconds: 1 });
    const inspector = a['no-profile'] ? undefined : await openInspector(target.handle);
    await inspector?.startProfiler();
    const cpu0 = cpuUs(target.pid);
    const run = await runWrk({ url: target.url, corpus: main, connections: Number(a.c), seconds, rate: Number(a.rate) });
    const cpu = cpuUs(target.pid) - cpu0;
    const profile = inspector ? summarizeProfile(await inspector.stopProfiler(), { top: Number(a.top), lastMs: seconds * 1000 }) : undefined;
    inspector?.close();
    const counts = await target.counts();
    console.log(`${a.target} c=${a.c}${a.tmpfs ? ' tmpfs' : ''}: ${Math.round(run.rps)} req/s, p50 ${(run.p50_us / 1000).toFixed(1)} ms p99 ${(run.p99_us / 1000).toFixed(1)} ms, errors ${run.socketErrors}, non-2xx ${run.non2xx ?? 0}, counts ${JSON.stringify(counts)}, process CPU ${(cpu / run.requests).toFixed(1)} µs/request`);
    if (profile) {
      console.log(`idle ${(profile.idleShare * 100).toFixed(1)}%`);
      for (const x of profile.byArea.slice(0, 12)) console.log(`  area ${(x.busy * 100).toFixed(1).padStart(5)}%  ${x.name}`);
      for (const x of profile.byFunction) console.log(`  fn   ${(x.busy * 100).toFixed(1).padStart(5)}%  ${x.name}`);
    }
  } finally {
    await target.stop();
  }
} finally {
  await emulator.close();
  rmSync(dir, { recursive: true, force: true });
}

/** User + system CPU time of a process, in µs (all its threads: the fdatasyncs in libuv's pool count too). */
function cpuUs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}
