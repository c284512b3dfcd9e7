/**
 * Figure 5: the daemon's resident memory (VmRSS) idle, after N notifications sent at full speed, and with
 * 10,000 subscriptions managed. RSS is read from /proc after the process has been quiet for a moment.
 * After the notifications, the daemon's own view (`process.memoryUsage()`, read through the inspector,
 * before and after a forced full GC) splits RSS into V8 heap and the rest; when the figure misses its
 * goal, a heap snapshot (SIGUSR2) is summarised by what holds the memory. Finally the daemon is restarted
 * on the journal it wrote, which times a start-up that rebuilds a full dedup window.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeCorpus } from '../lib/corpus.mjs';
import { summarizeHeapSnapshot } from '../lib/heapsnapshot.mjs';
import { openInspector } from '../lib/inspector.mjs';
import { peakRssOf, rssOf, sleep, startChild, stopChild, waitFor } from '../lib/proc.mjs';
import { CALLBACK_URL, ROOT, SECRET, metricByLabel, metricValue, startTarget } from '../lib/targets.mjs';
import { runWrkUntil } from '../lib/wrk.mjs';
import { notifySocket, timeStart } from './startup.mjs';

const SETTLE_MS = 2_000;

async function metrics(url) {
  return (await fetch(`${url}/metrics`)).text();
}

/** RSS of an idle `node` that ran `code` (an ES module), after SETTLE_MS. */
async function idleNodeRss(code) {
  const handle = startChild(process.execPath, ['--input-type=module', '-e', `${code}; setTimeout(() => {}, 60_000);`], { cwd: ROOT });
  try {
    await sleep(SETTLE_MS + 500);
    return rssOf(handle.child.pid);
  } finally {
    await stopChild(handle);
  }
}

/** Waits until the background token mint is done, then lets the process settle. */
async function idle(target) {
  await waitFor('the daemon token', async () => (await (await fetch(`${target.url}/status`)).json()).token.state === 'ok');
  await sleep(SETTLE_MS);
}

/**
 * Idle RSS, then `count` notifications at full speed (wrk, 64 connections), sampling RSS as they go.
 * Resolves with `{idle, samples: [{notifications, rss}], after, peak, seconds, heap?}`.
 */
export async function runMemoryNotifications(ctx, { count, goalBytes }) {
  const nodeArgs = ['--heapsnapshot-signal=SIGUSR2', '--inspect-port=127.0.0.1:0'];
  const target = await startTarget('eventsubd', { emulator: ctx.emulator, nodeArgs });
  try {
    await idle(target);
    const idleRss = rssOf(target.pid);
    const corpus = join(ctx.corpusDir ?? ctx.tmpDir, 'memory.bin');
    // 3% spare so wrk never wraps before it is stopped.
    await writeCorpus(corpus, { count: Math.ceil(count * 1.03) + 10_000, secret: SECRET });
    const samples = [];
    const step = Math.max(50_000, Math.round(count / 10 / 50_000) * 50_000);
    let next = step;
    const started = performance.now();
    const run = await runWrkUntil({
      url: target.url,
      corpus,
      connections: 64,
      everyMs: 200,
      until: async () => {
        const journaled = metricValue(await metrics(target.url), 'eventsubd_journal_appends_total');
        while (journaled >= next) {
          samples.push({ notifications: journaled, rss: rssOf(target.pid) });
          next += step;
        }
        return journaled >= count;
      },
    });
    const seconds = (performance.now() - started) / 1000;
    await sleep(SETTLE_MS);
    const text = await metrics(target.url);
    const journaled = metricValue(text, 'eventsubd_journal_appends_total');
    const outcomes = metricByLabel(text, 'eventsubd_webhook_requests_total', 'outcome');
    const rejected = Object.entries(outcomes)
      .filter(([k]) => !['notification', 'route', 'aborted'].includes(k))
      .reduce((sum, [, v]) => sum + v, 0);
    // The same rules as a throughput run: every answered request journaled, nothing rejected or resent.
    const problems = [
      run.socketErrors > 0 && `${run.socketErrors} socket errors`,
      run.status > 0 && `${run.status} answers with status >= 400`,
      run.wrapped > 0 && 'wrk wrapped around the corpus',
      rejected > 0 && `${rejected} rejected`,
      journaled < run.requests && `only ${journaled} of ${run.requests} answered requests journaled`,
    ].filter(Boolean);
    const after = rssOf(target.pid);
    const peak = peakRssOf(target.pid);
    const usage = await memoryUsage(target);
    const heap = after > goalBytes ? await heapSummary(target).catch((err) => ({ error: String(err?.message ?? err).slice(0, 200) })) : undefined;
    await stopChild(target.handle);
    const restart = await restartTime(ctx, target);
    const baseline = { bare: await idleNodeRss(''), imported: await idleNodeRss("await import('./dist/daemon/daemon.js')") };
    return { idle: idleRss, baseline, samples, after, peak, journaled, seconds, run, usage, heap, restart, problems };
  } finally {
    await target.stop();
  }
}

/** `process.memoryUsage()` inside the daemon, as it is and after a forced full GC (with RSS then). */
async function memoryUsage(target) {
  const inspector = await openInspector(target.handle);
  try {
    const expr = 'JSON.stringify(process.memoryUsage())';
    const before = JSON.parse(await inspector.evaluate(expr));
    await inspector.collectGarbage();
    await sleep(500);
    const afterGc = JSON.parse(await inspector.evaluate(expr));
    return { before, afterGc, rssAfterGc: rssOf(target.pid) };
  } finally {
    inspector.close();
  }
}

/** Writes a heap snapshot of the daemon (SIGUSR2) and summarises it. */
async function heapSummary(target) {
  const before = new Set(readdirSync(target.stateDir));
  target.handle.child.kill('SIGUSR2');
  const file = await waitFor(
    'the heap snapshot',
    () => readdirSync(target.stateDir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)),
    { timeoutMs: 120_000, everyMs: 250 },
  );
  const path = join(target.stateDir, file);
  try {
    return await summarizeWritten(path);
  } finally {
    rmSync(path, { force: true });
  }
}

async function summarizeWritten(path) {
  // The snapshot is written in pieces: wait until its size stops changing.
  let size = -1;
  await waitFor(
    'the heap snapshot to be complete',
    () => {
      const now = statSync(path).size;
      const done = now === size && now > 0;
      size = now;
      return done;
    },
    { timeoutMs: 120_000, everyMs: 1000 },
  );
  return summarizeHeapSnapshot(path, {
    reachableFrom: [
      { label: 'the dedup window (`Dedup`: its digest ring, times and hash table, typed arrays)', className: 'Dedup', fields: ['#words', '#times', '#table'] },
    ],
  });
}

/**
 * Restarts on the journal the run left behind, each timed from spawn to READY=1: the dedup window (21 minutes)
 * holds every notification of the run. `ms`: after the graceful stop of the caller (the daemon saved its dedup
 * snapshot, `STATE_DIR/dedup.snapshot`); `rebuildMs`: with that snapshot removed, as after `kill -9` (the window
 * is rebuilt from every journal record).
 */
async function restartTime(ctx, target) {
  const dir = mkdtempSync(join(ctx.tmpDir, 'notify-'));
  const notify = notifySocket(dir);
  const start = () => timeStart({ emulator: ctx.emulator, stateDir: target.stateDir, notify, waitToken: false, timeoutMs: 300_000 });
  try {
    const snapshot = join(target.stateDir, 'dedup.snapshot');
    const snapshotBytes = statSync(snapshot, { throwIfNoEntry: false })?.size;
    const r = await start();
    rmSync(snapshot, { force: true });
    const rebuilt = await start();
    return { ms: r.readyMs, snapshotBytes, rebuildMs: rebuilt.readyMs };
  } finally {
    notify.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The daemon managing `desired.length` subscriptions that already exist on `emulator` (the sync figure
 * left them there): its first sync lists them all and keeps them. RSS once that sync is done.
 */
export async function runMemorySubscriptions(ctx, { emulator, desired }) {
  const file = join(ctx.tmpDir, 'subscriptions.json');
  const subscriptions = desired.map(({ type, version, condition }) => ({ type, version, condition }));
  writeFileSync(file, JSON.stringify({ subscriptions }));
  const target = await startTarget('eventsubd', { emulator, extraEnv: { EVENTSUBD_SUBSCRIPTIONS: file } });
  try {
    const started = performance.now();
    const status = await waitFor(
      'the first sync',
      async () => {
        const s = await (await fetch(`${target.url}/status`)).json();
        return s.sync.result ? s : undefined;
      },
      { timeoutMs: 600_000, everyMs: 250 },
    );
    const syncSeconds = (performance.now() - started) / 1000;
    await sleep(SETTLE_MS);
    return {
      count: desired.length,
      rss: rssOf(target.pid),
      peak: peakRssOf(target.pid),
      syncSeconds,
      result: status.sync.result,
      counts: status.sync.counts,
      owned: (await emulator.subscriptions()).filter((s) => s.transport.callback === CALLBACK_URL).length,
    };
  } finally {
    await target.stop();
  }
}
