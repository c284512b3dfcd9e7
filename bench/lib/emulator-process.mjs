/**
 * The emulator as its own process, started the way an operator would (`eventsubd emulate`), so that its
 * CPU time is its own and can be measured (and profiled) apart from the client's. Driven through its
 * control API (`/_emulator/stats`, `/_emulator/subscriptions`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuMsOf, freePort, startChild, stopChild, waitFor } from './proc.mjs';
import { BIN } from './targets.mjs';

/**
 * Starts `eventsubd emulate --port P --bucket N/MS --client-id ID --client-secret S`.
 * `cpuProfileDir` runs it under `node --cpu-prof` (the profile is written when it stops).
 */
export async function startEmulatorProcess({ bucket, cpuProfileDir } = {}) {
  const port = await freePort();
  const clientId = randomBytes(15).toString('hex');
  const clientSecret = randomBytes(15).toString('hex');
  const args = ['emulate', '--port', String(port), '--client-id', clientId, '--client-secret', clientSecret];
  if (bucket) args.push('--bucket', `${bucket.limit}/${bucket.windowMs}`);
  const nodeArgs = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [];
  const cwd = mkdtempSync(join(tmpdir(), 'eventsubd-bench-emulator-'));
  const handle = startChild(process.execPath, [...nodeArgs, BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', EVENTSUBD_LOG_LEVEL: 'warn' } });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('the emulator', async () => (await fetch(`${url}/_emulator/stats`)).ok);
  const control = async (method, path) => {
    const res = await fetch(`${url}/_emulator/${path}`, { method });
    return res.status === 204 ? undefined : res.json();
  };
  return {
    url,
    authUrl: `${url}/oauth2`,
    apiUrl: `${url}/helix`,
    clients: [{ clientId, clientSecret }],
    pid: handle.child.pid,
    command: `eventsubd ${args.join(' ').replace(clientSecret, 'SECRET').replace(clientId, 'ID').replace(String(port), 'PORT')}`,
    cpuMs: () => cpuMsOf(handle.child.pid),
    /** The counters, without the per-request list. */
    stats: async () => {
      const s = await control('GET', 'stats');
      delete s.requests;
      return s;
    },
    resetStats: () => control('DELETE', 'stats'),
    subscriptions: async () => (await control('GET', 'subscriptions')).data,
    expireAllTokens: () => fetch(`${url}/_emulator/expire-tokens`, { method: 'POST' }).then(() => undefined),
    close: async () => {
      await stopChild(handle);
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}
