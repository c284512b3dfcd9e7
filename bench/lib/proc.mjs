/**
 * Process helpers for the benchmarks: free loopback ports, spawning children and waiting for them,
 * reading a child's RSS and CPU time from /proc, and polling until a condition holds.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A free TCP port on 127.0.0.1 (there is a small race between closing and reuse; fine for a bench). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it returns a truthy value, which is returned; throws after `timeoutMs`. */
export async function waitFor(what, check, { timeoutMs = 30_000, everyMs = 20 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(check)
      .catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Spawns a child and keeps the tail of its stderr for error messages. `exited` settles with the exit code
 * (or the signal name).
 */
export function startChild(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? ['ipc'] : [])], ...options });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout = (stdout + d).slice(-2_000_000)));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));
  return {
    child,
    exited,
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
  };
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL. Resolves with the exit code or signal. */
export async function stopChild(handle, graceMs = 15_000) {
  if (handle.child.exitCode !== null || handle.child.signalCode !== null) return handle.exited;
  handle.child.kill('SIGTERM');
  const timer = setTimeout(() => handle.child.kill('SIGKILL'), graceMs);
  const code = await handle.exited;
  clearTimeout(timer);
  return code;
}

/** Resident set size of a process, in bytes (VmRSS from /proc). */
export function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`No VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Peak resident set size (VmHWM), in bytes. */
export function peakRssOf(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

const TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, in ms (from /proc/PID/stat; clock ticks of 10 ms). */
export function cpuMsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time of a process split by thread, in ms: the main (JavaScript) thread and every other thread
 * together (libuv's threadpool, which runs the journal's write and fdatasync, and V8's GC/compiler helpers).
 */
export function threadCpuOf(pid) {
  let main = 0;
  let others = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
      if (Number(tid) === pid) main += ms;
      else others += ms;
    }
  } catch {
    return { main: Number.NaN, others: Number.NaN };
  }
  return { main, others };
}
