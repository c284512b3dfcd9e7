/**
 * Issue #11.2: the process owns its resources. `eventsubd run`, in-process, receives its stop and returns;
 * afterwards nothing it opened is left (no keep-alive socket, no server, no timer, no watcher), so the real
 * process ends by itself, without `process.exit`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../../src/cli/run.js';
import { startEmulator } from '../../src/emulator/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { freePort } from '../daemon/harness.js';

/** Active handles and requests by type (`process.getActiveResourcesInfo()`), counted. */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/** What `after` holds beyond `before`. */
function extra(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...after].filter(([r, n]) => n > (before.get(r) ?? 0)).map(([r, n]) => `${r} x${n - (before.get(r) ?? 0)}`);
}

test('run, in-process: after its stop it leaves no handle open (sockets, servers, timers, watchers)', async (t) => {
  const port = await freePort();
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0, deliverTo: `http://127.0.0.1:${port}` });
  t.after(() => emulator.close());
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-handles-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const subscriptions = join(dir, 'subscriptions.json');
  writeFileSync(subscriptions, JSON.stringify({ subscriptions: [{ type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1' } }] }));
  await new Promise((r) => setImmediate(r));
  const before = resources();

  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  let synced!: () => void;
  const syncedOnce = new Promise<void>((r) => (synced = r));
  let stderr = '';
  const client = emulator.clients[0]!;
  const code = runCli({
    argv: ['run'],
    env: {
      TWITCH_CLIENT_ID: client.clientId,
      TWITCH_CLIENT_SECRET: client.clientSecret,
      TWITCH_AUTH_URL: emulator.authUrl,
      TWITCH_API_URL: emulator.apiUrl,
      EVENTSUB_SECRET: 'handles-secret-0123456789',
      EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
      EVENTSUBD_LISTEN: `127.0.0.1:${port}`,
      EVENTSUBD_STATE_DIR: join(dir, 'state'),
      EVENTSUBD_SUBSCRIPTIONS: subscriptions,
    },
    stdout: { write: () => true },
    stderr: {
      write: (s: string) => {
        stderr += s;
        if (s.includes('"msg":"Sync finished"')) synced();
        return true;
      },
    },
    clock: systemClock,
    readEnvFile: () => undefined,
    version: 'test',
    signal: new AbortController().signal,
    stopped,
    process: { pid: process.pid, uid: process.getuid?.(), onHangup: () => () => {} },
  });
  // A whole cycle: ready, a token minted over HTTP (keep-alive sockets), a sync, the challenge answered.
  await Promise.race([syncedOnce, code.then(() => assert.fail(`run returned before its first sync:\n${stderr}`))]);
  stop();
  assert.equal(await code, 0, stderr);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(extra(before, resources()), [], `left open after run returned:\n${stderr.split('\n').slice(-5).join('\n')}`);
});
