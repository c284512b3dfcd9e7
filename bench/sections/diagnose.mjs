/**
 * What bounds the receiver: measurements behind the throughput figures rather than guesses.
 * - fdatasync latency of the state directory's file system, idle (write ~10 KB, fdatasync, repeat), and the
 *   commit rates it allows: appending (as the journal does) or overwriting a pre-zeroed file, one commit at a
 *   time (as the journal does) or two overlapping (as a pipelined journal would);
 * - eventsubd with its state directory on tmpfs (/dev/shm), where fdatasync costs nothing: the same
 *   receiver without the disk;
 * - a CPU profile of eventsubd's JavaScript thread during a run, summarised by area and function, beside
 *   the split of its CPU time between that thread and the others (libuv's pool runs write/fdatasync).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { summarizeProfile } from '../lib/cpuprofile.mjs';
import { openInspector } from '../lib/inspector.mjs';
import { summarize } from '../lib/stats.mjs';
import { measureRun, roundCorpora } from './throughput.mjs';

/** Latency of write + fdatasync of `bytes` at the end of a file in `dir`, `n` times, in ms. */
export async function fdatasyncLatency(dir, { n = 300, bytes = 10_000 } = {}) {
  const path = join(mkdtempSync(join(dir, 'eventsubd-bench-fsync-')), 'probe');
  const handle = await open(path, 'w');
  const buf = Buffer.alloc(bytes, 0x61);
  const times = [];
  try {
    for (let i = 0; i < n; i++) {
      await handle.write(buf, 0, buf.length, i * bytes);
      const t0 = performance.now();
      await handle.datasync();
      times.push(performance.now() - t0);
    }
  } finally {
    await handle.close();
    rmSync(join(path, '..'), { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return { n, bytes, p50: times[Math.floor(n * 0.5)], p99: times[Math.floor(n * 0.99)], ...summarize(times) };
}

/**
 * Commits per second of write(`bytes`) + fdatasync on a file in `dir`, `n` commits, `overlap` at a time, each
 * write after the previous ones: appended to a growing file (the file's size changes: on ext4 each fdatasync
 * then commits the file-system journal, and commits queue behind each other), or over a file pre-zeroed and
 * fsynced first (only data to flush). Resolves `{ mode, overlap, perSecond, p50 }`.
 */
export async function commitRate(dir, { mode, overlap, n = 400, bytes = 5_000 }) {
  const path = join(mkdtempSync(join(dir, 'eventsubd-bench-commit-')), 'probe');
  const handle = await open(path, 'w+');
  const buf = Buffer.alloc(bytes, 0x61);
  const times = [];
  try {
    if (mode === 'overwrite') {
      const zeros = Buffer.alloc(1 << 20);
      for (let at = 0; at < n * bytes; at += zeros.length) await handle.write(zeros, 0, zeros.length, at);
      await handle.sync();
    }
    let next = 0;
    const commit = async () => {
      const at = next;
      next += bytes;
      await handle.write(buf, 0, buf.length, at);
      const t0 = performance.now();
      await handle.datasync();
      times.push(performance.now() - t0);
    };
    const started = performance.now();
    for (let i = 0; i < n; i += overlap) await Promise.all(Array.from({ length: overlap }, commit));
    const seconds = (performance.now() - started) / 1000;
    times.sort((a, b) => a - b);
    return { mode, overlap, perSecond: n / seconds, p50: times[Math.floor(times.length / 2)] };
  } finally {
    await handle.close();
    rmSync(join(path, '..'), { recursive: true, force: true });
  }
}

/** `commitRate` for appending and for overwriting, one and two at a time, alternating, `rounds` times; medians. */
export async function commitRates(dir, rounds = 3) {
  const cases = [
    { mode: 'append', overlap: 1 },
    { mode: 'append', overlap: 2 },
    { mode: 'overwrite', overlap: 1 },
    { mode: 'overwrite', overlap: 2 },
  ];
  const seen = cases.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of cases.entries()) seen[i].push(await commitRate(dir, c));
  }
  const mid = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return cases.map((c, i) => ({ ...c, perSecond: mid(seen[i].map((x) => x.perSecond)), p50: mid(seen[i].map((x) => x.p50)) }));
}

/** eventsubd on tmpfs, `rounds` × each concurrency. */
export async function runTmpfs(ctx, rounds) {
  const runs = [];
  for (let round = 1; round <= rounds; round++) {
    const corpora = await roundCorpora(ctx, 'tmpfs');
    for (const connections of ctx.connections) {
      const run = await measureRun(ctx, {
        target: 'eventsubd',
        connections,
        corpora,
        limits: { warm: 0, main: 0 },
        targetOptions: { stateRoot: '/dev/shm' },
      });
      runs.push({ ...run, target: 'eventsubd on tmpfs', round });
      ctx.log(`tmpfs ${round} c=${connections}: ${Math.round(run.rps)} req/s, p99 ${run.p99.toFixed(2)} ms${run.void ? `  VOID: ${run.void}` : ''}`);
    }
  }
  return runs;
}

/**
 * One profiled run of eventsubd at `connections`: V8's CPU profiler, started through the inspector just
 * before the measured run and stopped just after it, keeping the samples of the run itself. Resolves
 * with the run and the profile's summary.
 */
export async function runProfile(ctx, connections) {
  const corpora = await roundCorpora(ctx, 'profile');
  let inspector;
  let profile;
  const run = await measureRun(ctx, {
    target: 'eventsubd',
    connections,
    corpora,
    limits: { warm: 0, main: 0 },
    targetOptions: { nodeArgs: ['--inspect-port=127.0.0.1:0'] },
    hooks: {
      beforeMain: async (t) => {
        inspector = await openInspector(t.handle);
        await inspector.startProfiler();
      },
      afterMain: async () => {
        profile = summarizeProfile(await inspector.stopProfiler(), { top: 12, lastMs: ctx.seconds * 1000 });
        inspector.close();
      },
    },
  });
  const idle = profile?.byArea.find((a) => a.name.startsWith('idle'));
  ctx.log(`profile c=${connections}: ${Math.round(run.rps)} req/s; JavaScript thread idle ${((idle?.share ?? 0) * 100).toFixed(0)}% of the run`);
  return { run, profile };
}
