#!/usr/bin/env node
// The demo: a local Twitch emulator, then eventsubd's CLI against it, exactly as an operator would run it.
// Needs no Twitch account and sends nothing beyond 127.0.0.1.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../dist/emulator/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const stateDir = mkdtempSync(join(tmpdir(), 'eventsubd-demo-'));
const emulator = await startEmulator({ host: '127.0.0.1', port: 0, pageSize: 2 });
const client = emulator.clients[0];
const env = {
  PATH: process.env.PATH ?? '',
  TWITCH_CLIENT_ID: client.clientId,
  TWITCH_CLIENT_SECRET: client.clientSecret,
  TWITCH_AUTH_URL: emulator.authUrl,
  TWITCH_API_URL: emulator.apiUrl,
  EVENTSUB_SECRET: 'demo-webhook-secret-0123456789',
  EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
  EVENTSUBD_STATE_DIR: stateDir,
  EVENTSUBD_SUBSCRIPTIONS: join(root, 'examples', 'subscriptions.yaml'),
  FORCE_COLOR: '0',
};

/** Runs the CLI in a child process (asynchronously: the emulator lives in this process's event loop). */
function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'dist', 'main.js'), ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function step(title, args) {
  process.stdout.write(`\n\x1b[1m$ eventsubd ${args.join(' ')}\x1b[0m   # ${title}\n`);
  const res = await run(args);
  process.stdout.write(res.stdout);
  const logs = res.stderr.trim();
  if (logs) process.stdout.write(logs.split('\n').map((l) => `  [log] ${l}`).join('\n') + '\n');
  if (res.status !== 0) throw new Error(`eventsubd ${args.join(' ')} exited ${res.status}`);
}

try {
  process.stdout.write(`Twitch emulator on ${emulator.url} (client ${client.clientId}); state in ${stateDir}\n`);
  await step('settings and the subscriptions file are valid', ['config', 'check']);
  await step('the plan, without changing anything', ['subscriptions', 'sync', '--dry-run']);
  await step('mint an app token, then create the four subscriptions', ['subscriptions', 'sync']);
  await step('what Twitch now holds (every page)', ['subscriptions', 'list']);
  await step('a second sync: nothing to do, zero writes', ['subscriptions', 'sync']);
  await step('the cached token (never printed)', ['token', 'status']);
  await step('rotate: mint a new token, revoke the old one', ['token', 'rotate']);
  const s = emulator.stats;
  process.stdout.write(
    `\nEmulator saw: ${s.mints} token mint(s), ${s.validations} validation(s), ${s.revocations} revocation(s), ` +
      `${s.helix.total} Helix request(s) (${JSON.stringify(s.helix.byMethod)}), ${s.helix.rateLimited} rate-limited.\n`,
  );
} finally {
  await emulator.close();
  rmSync(stateDir, { recursive: true, force: true });
}
