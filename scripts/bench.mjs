#!/usr/bin/env node
// `npm run bench`: measures eventsubd (receiver, durability, sync, token churn, memory, start-up) on this
// machine and writes BENCHMARKS.md. Not a test: it asserts nothing, it reports. See BENCHMARKS.md, "How
// to run", for the options; everything stays on 127.0.0.1.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulator } from '../dist/emulator/index.js';
import { renderReport } from '../bench/lib/report.mjs';
import { ROOT } from '../bench/lib/targets.mjs';
import { commitRates, fdatasyncLatency, runProfile, runTmpfs } from '../bench/sections/diagnose.mjs';
import { runMemoryNotifications, runMemorySubscriptions } from '../bench/sections/memory.mjs';
import { runStartup } from '../bench/sections/startup.mjs';
import { closeSyncEmulator, desiredSet, runSync } from '../bench/sections/sync.mjs';
import { runPaced, runThroughput } from '../bench/sections/throughput.mjs';
import { runTokenChurn } from '../bench/sections/tokens.mjs';
import { runConduit } from '../bench/sections/conduit.mjs';
import { redisServerVersion, startBenchRedis } from '../bench/lib/redis-server.mjs';

const SECTIONS = ['startup', 'tokens', 'throughput', 'memory', 'sync', 'conduit'];
const MIB = 1024 * 1024;
/** Connections open for the constant-rate run at half rate: enough that one is nearly always free. */
const PACED_CONNECTIONS = 128;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    million: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    'from-json': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  process.stdout.write(`Usage: npm run bench [-- OPTIONS]
  --quick         a short run (2 rounds of 2 s, 100,000 notifications, 2,000 subscriptions): about 3 minutes
  --million       send the full 1,000,000 notifications for the memory figure (default 300,000)
  --rounds N      alternating rounds of the receiver runs (default 4, quick 2)
  --seconds S     length of each measured receiver run (default 3, quick 2)
  --only LIST     run only these sections: ${SECTIONS.join(',')}
  --out FILE      where to write the report (default BENCHMARKS.md; '-' for stdout only)
  --from-json F   re-render a report from the results.json of an earlier run
`);
  process.exit(0);
}

const quick = args.quick;
const options = {
  mode: quick ? 'quick' : args.million ? 'million' : 'default',
  rounds: Number(args.rounds ?? (quick ? 2 : 4)),
  seconds: Number(args.seconds ?? (quick ? 2 : 3)),
  warmSeconds: 1,
  connections: [32, 64],
  notifications: args.million ? 1_000_000 : quick ? 100_000 : 300_000,
  subscriptions: quick ? 2_000 : 10_000,
  syncWindowMs: 6_000,
  tokenCalls: 1_000,
  startupRounds: quick ? 3 : 5,
  tmpfsRounds: quick ? 1 : 2,
  sections: args.only ? args.only.split(',') : SECTIONS,
  goals: { idleBytes: 80 * MIB, afterBytes: 150 * MIB, readyMs: 250, p99Ms: 10, restartMs: 1000 },
};
const outPath = args.out ?? join(ROOT, 'BENCHMARKS.md');

function write(results) {
  const markdown = renderReport(results);
  if (outPath === '-') process.stdout.write(markdown);
  else {
    writeFileSync(outPath, markdown);
    process.stderr.write(`bench: wrote ${outPath}\n`);
  }
}

if (args['from-json']) {
  write(JSON.parse(readFileSync(args['from-json'], 'utf8')));
  process.exit(0);
}

for (const s of options.sections) if (!SECTIONS.includes(s)) throw new Error(`Unknown section ${s}: the sections are ${SECTIONS.join(', ')}`);
// Only the receiver's figures load it with wrk.
if (options.sections.some((s) => s === 'throughput' || s === 'memory') && spawnSync('wrk', ['-v']).error) {
  process.stderr.write('bench: wrk is not installed (Debian: apt-get install wrk)\n');
  process.exit(1);
}
if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
  process.stderr.write('bench: dist/ is missing: run `npm run build` first (npm run bench does)\n');
  process.exit(1);
}

const log = (line) => process.stderr.write(`bench: ${line}\n`);
const cpuTimes = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
/** Pressure stall totals (µs) of `cpu` and `io`: how long some task waited for a CPU, or for I/O. */
const pressure = () => {
  const read = (what) => {
    try {
      return Number(/^some .*total=(\d+)/m.exec(readFileSync(`/proc/pressure/${what}`, 'utf8'))?.[1]);
    } catch {
      return Number.NaN;
    }
  };
  return { cpu: read('cpu'), io: read('io'), at: performance.now() };
};
const sh = (cmd, argv) => {
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
};

function machine() {
  const twurple = JSON.parse(readFileSync(join(ROOT, 'node_modules', '@twurple', 'eventsub-http', 'package.json'), 'utf8')).version;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const dirty = sh('git', ['status', '--porcelain', '--', 'src']) ? ' (src/ modified)' : '';
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: release(),
    node: process.version,
    wrk: (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'not installed').replace(/ Copyright.*$/, ''),
    twurple,
    redis: redisServerVersion() ?? 'redis-server not installed',
    eventsubd: `${pkg.version}, commit ${sh('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown'}${dirty}`,
    stateFs: sh('findmnt', ['-no', 'FSTYPE,SOURCE', '-T', tmpdir()])?.replace(/\s+/g, ' on ') ?? 'unknown',
    tmpdir: tmpdir(),
  };
}

const tmpDir = mkdtempSync(join(tmpdir(), 'eventsubd-bench-'));
/**
 * The signed corpora (up to ~1.2 GB for --million) live on tmpfs when there is one: written to the state
 * directories' disk, their writeback would compete with the journal's fdatasyncs during the measured runs.
 */
const corpusDir = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'eventsubd-bench-corpus-')) : tmpDir;
const results = { options, machine: machine(), startedAt: new Date().toISOString(), loadBefore: loadavg(), sections: {}, errors: {} };
const cpu0 = cpuTimes();
const pressure0 = pressure();
const started = performance.now();
const emulator = await startEmulator();
const ctx = { ...options, tmpDir, corpusDir, emulator, root: ROOT, log };

async function section(name, fn) {
  if (!options.sections.includes(name)) return;
  const t0 = performance.now();
  log(`--- ${name}`);
  try {
    results.sections[name] = await fn();
  } catch (err) {
    results.errors[name] = err instanceof Error ? err.stack ?? err.message : String(err);
    log(`${name} FAILED: ${results.errors[name]}`);
  }
  log(`${name} took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

try {
  await section('startup', () => runStartup(ctx, { rounds: options.startupRounds }));
  await section('tokens', () => runTokenChurn(ctx, { count: options.tokenCalls }));
  await section('throughput', async () => {
    // The Redis journal's figure (issue 15) runs in the same rounds, against a durable redis-server of its own.
    let redis;
    let redisMissing;
    try {
      redis = await startBenchRedis(tmpDir);
      log(`redis-server for the Redis journal figure: ${redis.url} (appendonly yes, appendfsync always), ${redis.version}`);
    } catch (err) {
      redisMissing = err instanceof Error ? err.message : String(err);
      log('');
      log('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
      log(`!!! NO REDIS JOURNAL FIGURE: cannot start redis-server: ${redisMissing}`);
      log('!!! Install it (Debian: apt-get install redis-server) and run the bench again.');
      log('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
      log('');
    }
    let runs;
    try {
      runs = await runThroughput({ ...ctx, redis });
    } finally {
      await redis?.stop();
    }
    const paced = await runPaced(ctx, runs, PACED_CONNECTIONS);
    const tmpfs = await runTmpfs(ctx, options.tmpfsRounds);
    const profile = await runProfile(ctx, 32);
    const fsync = await fdatasyncLatency(tmpdir());
    const commits = await commitRates(tmpdir(), quick ? 1 : 3);
    return { runs, paced, tmpfs, profile, fsync, commits, redis: redis ? { version: redis.version } : { missing: redisMissing } };
  });
  await section('memory', async () => {
    const notifications = await runMemoryNotifications(ctx, { count: options.notifications, goalBytes: options.goals.afterBytes });
    return { notifications };
  });
  await section('sync', async () => {
    const sync = await runSync(ctx, { count: options.subscriptions, windowMs: options.syncWindowMs });
    let memory;
    try {
      memory = await runMemorySubscriptions(ctx, { emulator: sync.emulator, desired: desiredSet(sync.count, sync.changed) });
    } finally {
      sync.emulatorProfile = await closeSyncEmulator(sync);
      delete sync.emulator;
    }
    // With fewer subscriptions the emulator is not the bound: the client's pacing alone.
    const control = quick ? undefined : await runSync(ctx, { count: 2_000, windowMs: options.syncWindowMs, phases: 1 });
    if (control) {
      await closeSyncEmulator(control);
      delete control.emulator;
    }
    return { ...sync, memory, control };
  });
  await section('conduit', () => runConduit(ctx, { events: quick ? 10_000 : 50_000, rounds: quick ? 2 : 3 }));
} finally {
  await emulator.close();
  const cpu1 = cpuTimes();
  const delta = cpu1.map((v, i) => v - cpu0[i]);
  const total = delta.reduce((a, b) => a + b, 0);
  results.stealShare = (delta[7] ?? 0) / total;
  const pressure1 = pressure();
  const wallUs = (pressure1.at - pressure0.at) * 1000;
  results.pressure = { cpu: (pressure1.cpu - pressure0.cpu) / wallUs, io: (pressure1.io - pressure0.io) / wallUs };
  results.loadAfter = loadavg();
  results.seconds = (performance.now() - started) / 1000;
  results.finishedAt = new Date().toISOString();
  mkdirSync(tmpDir, { recursive: true });
  const json = join(tmpDir, 'results.json');
  writeFileSync(json, JSON.stringify(results, null, 1));
  log(`raw results: ${json}`);
  write(results);
  for (const f of ['round-warm.bin', 'round-main.bin', 'paced-warm.bin', 'paced-main.bin', 'tmpfs-warm.bin', 'tmpfs-main.bin', 'profile-warm.bin', 'profile-main.bin', 'memory.bin']) {
    rmSync(join(corpusDir, f), { force: true });
  }
  if (corpusDir !== tmpDir) rmSync(corpusDir, { recursive: true, force: true });
  log(`done in ${(results.seconds / 60).toFixed(1)} min`);
}
