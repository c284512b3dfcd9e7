/**
 * Figure 6: start-up, from spawning `node dist/main.js run` to the READY=1 datagram on NOTIFY_SOCKET (a
 * unix datagram socket bound here with the unix-dgram addon, as systemd would), and on to the token being
 * usable (`/status` token.state "ok": validated from the cache, or minted). Rounds alternate a state
 * directory that holds a cached token with a fresh one (the daemon mints). Behind the figure: a CPU
 * profile of one start up to READY=1, and what loading each dependency costs in a fresh process.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarizeProfile } from '../lib/cpuprofile.mjs';
import { freePort, startChild, stopChild, waitFor } from '../lib/proc.mjs';
import { median } from '../lib/stats.mjs';
import { BIN, ROOT, daemonEnv } from '../lib/targets.mjs';

const require = createRequire(import.meta.url);

/** A NOTIFY_SOCKET: resolves `ready` with the receive time (performance.now()) of the first READY=1. */
function notifySocket(dir) {
  const dgram = require('unix-dgram');
  const path = join(dir, 'notify.sock');
  const waiters = [];
  const socket = dgram.createSocket('unix_dgram', (buf) => {
    const at = performance.now();
    if (/^READY=1$/m.test(buf.toString('utf8'))) for (const w of waiters.splice(0)) w(at);
  });
  socket.bind(path);
  return {
    path,
    nextReady: () => new Promise((resolve) => waiters.push(resolve)),
    close: () => socket.close(),
  };
}

/**
 * Starts the daemon on `stateDir` and times it: `{readyMs, tokenMs}` from spawn. Stops it afterwards.
 * `extraEnv` adds settings; `timeoutMs` bounds each wait.
 */
export async function timeStart({ emulator, stateDir, notify, extraEnv = {}, timeoutMs = 30_000, waitToken = true, nodeArgs = [] }) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...daemonEnv({ emulator, listen: `127.0.0.1:${port}`, stateDir, extra: extraEnv }), NOTIFY_SOCKET: notify.path };
  const ready = notify.nextReady();
  const started = performance.now();
  const handle = startChild(process.execPath, [...nodeArgs, BIN, 'run'], { env, cwd: stateDir });
  try {
    const exited = handle.exited.then((code) => {
      throw new Error(`eventsubd exited ${code}: ${handle.stderr}`);
    });
    exited.catch(() => undefined);
    const readyAt = await Promise.race([ready, exited]);
    let tokenAt = Number.NaN;
    if (waitToken) {
      await waitFor('the token', async () => (await (await fetch(`${url}/status`)).json()).token.state === 'ok', { timeoutMs, everyMs: 5 });
      tokenAt = performance.now();
    }
    return { readyMs: readyAt - started, tokenMs: tokenAt - started };
  } finally {
    await stopChild(handle);
  }
}

/** Wall time of `node ARGS` from spawn to exit, in ms. */
async function wallMs(args) {
  const t0 = performance.now();
  const handle = startChild(process.execPath, args, { cwd: ROOT });
  const code = await handle.exited;
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited ${code}: ${handle.stderr}`);
  return performance.now() - t0;
}

/** What a fresh `node` costs, and what importing each module adds to it (median of `n`), in ms. */
async function importCosts(n = 3) {
  const runs = async (args) => median(await Array.from({ length: n }).reduce(async (acc) => [...(await acc), await wallMs(args)], []));
  const base = await runs(['-e', '0']);
  const load = (spec) => ['--input-type=module', '-e', `await import(${JSON.stringify(spec)})`];
  const rows = [{ name: '`node -e 0` (no module)', ms: base }];
  for (const dep of ['undici', 'zod', 'ws', 'dotenv', 'yaml', 'node-cron']) rows.push({ name: `import '${dep}'`, ms: (await runs(load(dep))) - base });
  rows.push({ name: "import './dist/daemon/daemon.js' (what `run` loads before READY=1)", ms: (await runs(load('./dist/daemon/daemon.js'))) - base });
  rows.push({ name: "import './dist/daemon/twitch-side.js' (what `run` loads after READY=1)", ms: (await runs(load('./dist/daemon/twitch-side.js'))) - base });
  rows.push({ name: '`node dist/main.js --version` (the CLI entry; commands load on use)', ms: (await runs([BIN, '--version'])) - base });
  return rows;
}

/** One start under `node --cpu-prof`, summarised up to READY=1. */
async function profileStart(ctx, notify) {
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-bench-startprof-'));
  const stateDir = mkdtempSync(join(tmpdir(), 'eventsubd-bench-fresh-'));
  try {
    const r = await timeStart({ emulator: ctx.emulator, stateDir, notify, waitToken: false, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    return { readyMs: r.readyMs, profile: file ? summarizeProfile(join(dir, file), { top: 10, firstMs: r.readyMs }) : undefined };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Resolves with `{cached: [...], mint: [...], profile, imports}`; runs are `{readyMs, tokenMs}`. */
export async function runStartup(ctx, { rounds }) {
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-bench-notify-'));
  const notify = notifySocket(dir);
  const cachedDir = mkdtempSync(join(tmpdir(), 'eventsubd-bench-cached-'));
  const out = { cached: [], mint: [] };
  try {
    // Fills the token cache (token.json) of `cachedDir`; not timed.
    await timeStart({ emulator: ctx.emulator, stateDir: cachedDir, notify });
    for (let round = 1; round <= rounds; round++) {
      for (const kind of round % 2 ? ['cached', 'mint'] : ['mint', 'cached']) {
        const stateDir = kind === 'cached' ? cachedDir : mkdtempSync(join(tmpdir(), 'eventsubd-bench-fresh-'));
        const r = await timeStart({ emulator: ctx.emulator, stateDir, notify });
        if (kind === 'mint') rmSync(stateDir, { recursive: true, force: true });
        out[kind].push(r);
        ctx.log(`start-up ${kind}: READY=1 after ${r.readyMs.toFixed(0)} ms, token ok after ${r.tokenMs.toFixed(0)} ms`);
      }
    }
    out.profile = await profileStart(ctx, notify);
    out.imports = await importCosts();
    return out;
  } finally {
    notify.close();
    rmSync(cachedDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

export { notifySocket };
