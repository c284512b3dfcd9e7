/**
 * Opens Node's inspector in a running child (started with `--inspect-port=127.0.0.1:0`) by sending it
 * SIGUSR1, and talks to it over the inspector's WebSocket (the `ws` package): enough to force a full
 * garbage collection, read `process.memoryUsage()` and take a CPU profile from inside the daemon
 * without changing it.
 */
import WebSocket from 'ws';
import { waitFor } from './proc.mjs';

/** Resolves with `{evaluate(expression), collectGarbage(), close()}`. */
export async function openInspector(handle) {
  handle.child.kill('SIGUSR1');
  const url = await waitFor('the inspector URL', () => /ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+/.exec(handle.stderr)?.[0], { timeoutMs: 10_000 });
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let id = 0;
  const pending = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  });
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      id += 1;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async evaluate(expression) {
      const r = await send('Runtime.evaluate', { expression, returnByValue: true });
      return r.result.value;
    },
    collectGarbage: () => send('HeapProfiler.collectGarbage'),
    /** Starts V8's sampling CPU profiler (sampling every `intervalUs`). */
    async startProfiler(intervalUs = 500) {
      await send('Profiler.enable');
      await send('Profiler.setSamplingInterval', { interval: intervalUs });
      await send('Profiler.start');
    },
    /** Stops it; resolves with the profile (the .cpuprofile format). */
    stopProfiler: async () => (await send('Profiler.stop')).profile,
    close: () => ws.close(),
  };
}
