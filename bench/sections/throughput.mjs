/**
 * Figures 1 and 2: receiver throughput and latency on loopback, and the cost of one fsync per request.
 *
 * Every run starts its receiver fresh, warms it up with its own corpus, then runs wrk for `seconds` on a
 * corpus signed at the start of the round. A run counts only when wrk saw no socket error and no status
 * >= 400, no wrk thread wrapped around its share of the corpus, the receiver rejected nothing, and the
 * receiver accepted (journaled, or ran Twurple's handler for) at least every request wrk completed and at
 * most every request wrk sent. Rounds alternate the order of the receivers and of the concurrencies.
 */
import { join } from 'node:path';
import { writeCorpus } from '../lib/corpus.mjs';
import { sleep, threadCpuOf } from '../lib/proc.mjs';
import { median, summarize } from '../lib/stats.mjs';
import { SECRET, startTarget } from '../lib/targets.mjs';
import { runWrk } from '../lib/wrk.mjs';

export const TARGETS = ['plain', 'eventsubd', 'eventsubd-each', 'twurple'];
/** With the bench's redis-server (`ctx.redis`), the receiver with its journal in Redis joins the same rounds. */
const targetsOf = (ctx) => (ctx.redis ? [...TARGETS, 'eventsubd-redis'] : TARGETS);
/** Receivers measured at the first concurrency only (one fdatasync per notification: figure 2 needs one). */
const FIRST_CONCURRENCY_ONLY = new Set(['eventsubd-each']);
/** Upper bound on any receiver's rate here, to size the corpus of a round (req/s). */
const MAX_RATE = 50_000;
/** The first `limit` requests of the corpus that a receiver needs: 1.6 × its best rate so far, at least 20,000. */
const limitFor = (best, seconds) => Math.max(20_000, Math.ceil((best ?? MAX_RATE) * seconds * 1.6));

/** Reads a receiver's counters until two reads 100 ms apart agree (in-flight requests have finished). */
async function settledCounts(target) {
  let prev = await target.counts();
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const next = await target.counts();
    if (next.accepted === prev.accepted && next.rejected === prev.rejected) return next;
    prev = next;
  }
  return prev;
}

/** Why a run is void, or undefined when it counts. */
function voidReason(r, accepted, rejected) {
  if (r.socketErrors > 0) return `${r.socketErrors} socket errors`;
  if (r.status > 0) return `${r.status} answers with status >= 400`;
  if (r.wrapped > 0) return 'wrk wrapped around the corpus (ids resent)';
  if (rejected > 0) return `${rejected} requests rejected by the receiver`;
  if (accepted < r.requests) return `only ${accepted} of ${r.requests} answered requests accepted`;
  if (accepted > r.sent) return `${accepted} accepted but only ${r.sent} sent`;
  return undefined;
}

/**
 * One measured run: start, warm up, measure, check, stop. `rate` > 0 sends at that constant rate (warm-up
 * included) instead of as fast as the receiver answers. `hooks.beforeMain(t)` and `hooks.afterMain(t)`
 * run around the measured run.
 */
export async function measureRun(ctx, { target, connections, corpora, limits, rate = 0, targetOptions = {}, hooks = {} }) {
  const t = await startTarget(target, { emulator: ctx.emulator, redisUrl: ctx.redis?.url, ...targetOptions });
  try {
    const warm = await runWrk({ url: t.url, corpus: corpora.warm, limit: limits.warm, connections, seconds: ctx.warmSeconds, rate });
    const before = await settledCounts(t);
    await hooks.beforeMain?.(t);
    const cpu0 = threadCpuOf(t.pid);
    const r = await runWrk({ url: t.url, corpus: corpora.main, limit: limits.main, connections, seconds: ctx.seconds, rate });
    const cpu1 = threadCpuOf(t.pid);
    await hooks.afterMain?.(t);
    const after = await settledCounts(t);
    const accepted = after.accepted - before.accepted;
    const rejected = after.rejected - before.rejected;
    const ms = r.duration_us / 1000;
    const fsyncs = (after.detail.fsyncs ?? Number.NaN) - (before.detail.fsyncs ?? Number.NaN);
    return {
      target,
      connections,
      rps: r.rps,
      p50: r.p50_us / 1000,
      p99: r.p99_us / 1000,
      requests: r.requests,
      sent: r.sent,
      accepted,
      rejected,
      perFsync: accepted / fsyncs,
      mainCpu: (cpu1.main - cpu0.main) / ms,
      otherCpu: (cpu1.others - cpu0.others) / ms,
      wrkCpu: r.cpuMs / ms,
      warmRps: warm.rps,
      command: r.command,
      void: voidReason(r, accepted, rejected),
    };
  } finally {
    await t.stop();
  }
}

/** Fresh corpora for a round, sized for `rate` req/s: one for the warm-ups, one for the measured runs. */
export async function roundCorpora(ctx, name, { rate = MAX_RATE } = {}) {
  const corpora = { warm: join(ctx.corpusDir ?? ctx.tmpDir, `${name}-warm.bin`), main: join(ctx.corpusDir ?? ctx.tmpDir, `${name}-main.bin`) };
  await writeCorpus(corpora.warm, { count: Math.ceil(rate * ctx.warmSeconds), secret: SECRET });
  await writeCorpus(corpora.main, { count: Math.ceil(rate * ctx.seconds), secret: SECRET });
  return corpora;
}

const rotate = (list, n) => list.map((_, i) => list[(i + n) % list.length]);

/** Runs the alternating rounds at full speed; resolves with every run's record. */
export async function runThroughput(ctx) {
  const runs = [];
  const best = new Map();
  for (let round = 1; round <= ctx.rounds; round++) {
    const corpora = await roundCorpora(ctx, 'round');
    const conns = round % 2 ? ctx.connections : [...ctx.connections].reverse();
    for (const connections of conns) {
      for (const target of rotate(targetsOf(ctx), round - 1)) {
        if (FIRST_CONCURRENCY_ONLY.has(target) && connections !== ctx.connections[0]) continue;
        const key = `${target}@${connections}`;
        const limits = { warm: limitFor(best.get(key), ctx.warmSeconds), main: limitFor(best.get(key), ctx.seconds) };
        let run = await measureRun(ctx, { target, connections, corpora, limits });
        if (run.void?.startsWith('wrk wrapped')) {
          run = await measureRun(ctx, { target, connections, corpora, limits: { warm: 0, main: 0 } });
        }
        if (!run.void) best.set(key, Math.max(best.get(key) ?? 0, run.rps));
        runs.push({ ...run, round });
        ctx.log(
          `round ${round} ${target.padEnd(14)} c=${connections}: ${Math.round(run.rps)} req/s, p50 ${run.p50.toFixed(2)} ms, ` +
            `p99 ${run.p99.toFixed(2)} ms${run.void ? `  VOID: ${run.void}` : ''}`,
        );
      }
    }
  }
  return runs;
}

/**
 * eventsubd at half of its own maximum rate (the higher of its medians at the two concurrencies), sent at
 * that constant rate over `connections` connections.
 */
export async function runPaced(ctx, runs, connections) {
  const maxRate = Math.max(...ctx.connections.map((c) => median(valid(runs, 'eventsubd', c).map((r) => r.rps))));
  const rate = maxRate / 2;
  const out = [];
  for (let round = 1; round <= ctx.rounds; round++) {
    const corpora = await roundCorpora(ctx, 'paced', { rate: rate * 1.2 });
    const run = await measureRun(ctx, { target: 'eventsubd', connections, corpora, limits: { warm: 0, main: 0 }, rate });
    out.push({ ...run, round, goalRate: rate });
    ctx.log(`paced ${round}: target ${Math.round(rate)} req/s, got ${Math.round(run.rps)}, p99 ${run.p99.toFixed(2)} ms${run.void ? `  VOID: ${run.void}` : ''}`);
  }
  return { maxRate, rate, connections, runs: out };
}

/** The runs of one receiver at one concurrency that count. */
export function valid(runs, target, connections) {
  return runs.filter((r) => r.target === target && r.connections === connections && !r.void);
}

/** Per-round ratio of `target`'s rate to plain's at the same concurrency (paired: same round, same corpus). */
export function pairedRatios(runs, target, connections, base = 'plain') {
  const out = [];
  for (const r of valid(runs, target, connections)) {
    const b = valid(runs, base, connections).find((x) => x.round === r.round);
    if (b) out.push(r.rps / b.rps);
  }
  return summarize(out);
}
