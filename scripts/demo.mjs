#!/usr/bin/env node
// The demo: a local Twitch emulator, then eventsubd against it, exactly as an operator would run it:
// the CLI (config check, sync plan, token status), then the daemon: subscriptions verified through its
// receiver, the broadcaster authorizing the app for the follow subscription (`eventsubd authorize`, with the
// emulator's consent page standing in for the browser), test events triggered, and read back from the journal;
// then the same daemon switched to a conduit (EVENTSUBD_TRANSPORT=conduit): no inbound endpoint, two WebSocket shards.
// Needs no Twitch account; nothing leaves 127.0.0.1.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startEmulator } from '../dist/emulator/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist', 'main.js');
const stateDir = mkdtempSync(join(tmpdir(), 'eventsubd-demo-'));
const port = await freePort();
const listen = `127.0.0.1:${port}`;
const redirect = `http://127.0.0.1:${await freePort()}/callback`;
const emulator = await startEmulator({ host: '127.0.0.1', port: 0, pageSize: 2, deliverTo: `http://${listen}` });
const client = emulator.clients[0];
const secret = 'demo-webhook-secret-0123456789';
const callback = 'https://events.example.com/twitch/eventsub';
const env = {
  PATH: process.env.PATH ?? '',
  TWITCH_CLIENT_ID: client.clientId,
  TWITCH_CLIENT_SECRET: client.clientSecret,
  TWITCH_AUTH_URL: emulator.authUrl,
  TWITCH_API_URL: emulator.apiUrl,
  EVENTSUB_SECRET: secret,
  EVENTSUB_CALLBACK_URL: callback,
  EVENTSUBD_LISTEN: listen,
  EVENTSUBD_STATE_DIR: stateDir,
  EVENTSUBD_SUBSCRIPTIONS: join(root, 'examples', 'subscriptions.yaml'),
  EVENTSUBD_LOG_LEVEL: 'warn',
  TWITCH_REDIRECT_URL: redirect,
};
// The redirect URL, as registered for the app in the Twitch console.
emulator.addRedirectUri(redirect);
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address();
      srv.close(() => resolve(p));
    });
    srv.on('error', reject);
  });
}

/** Runs the CLI in a child process (asynchronously: the emulator lives in this process's event loop). */
function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function step(title, args) {
  process.stdout.write(`\n${bold(`$ eventsubd ${args.join(' ')}`)}   # ${title}\n`);
  const res = await run(args);
  process.stdout.write(res.stdout);
  const logs = res.stderr.trim();
  if (logs) process.stdout.write(logs.split('\n').map((l) => `  [log] ${l}`).join('\n') + '\n');
  if (res.status !== 0) throw new Error(`eventsubd ${args.join(' ')} exited ${res.status}`);
  return res;
}

/**
 * `eventsubd authorize`, with this script as the broadcaster's browser: it opens the URL the command prints at
 * the emulator, whose consent page answers as the broadcaster, and follows the redirect back to the command.
 */
async function authorize(title) {
  process.stdout.write(`\n${bold('$ eventsubd authorize')}   # ${title}\n`);
  const child = spawn(process.execPath, [bin, 'authorize'], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  const closed = new Promise((resolve) => child.on('close', resolve));
  const url = await new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      const line = stderr.split('\n').find((l) => l.includes('/oauth2/authorize?'));
      if (line) resolve(line.trim());
    });
    closed.then((code) => reject(new Error(`eventsubd authorize exited ${code}: ${stderr}`)));
  });
  for (const line of stderr.trim().split('\n')) process.stdout.write(`  ${line}\n`);
  const consent = await request(url);
  await consent.body.dump();
  const page = await request(consent.headers.location);
  const html = (await page.body.text()).replace(/<head>.*<\/head>/s, '');
  process.stdout.write(`  [browser] Twitch's consent page: the broadcaster clicks Authorize; back at ${redirect}: ${html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()}\n`);
  const code = await closed;
  process.stdout.write(stdout);
  if (code !== 0) throw new Error(`eventsubd authorize exited ${code}: ${stderr}`);
}

async function waitFor(what, check, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let daemon;
try {
  process.stdout.write(`Twitch emulator on ${emulator.url} (client ${client.clientId}); state in ${stateDir}\n`);
  await step('settings and the subscriptions file are valid', ['config', 'check']);
  await step('the plan, without changing anything (mints the app token)', ['subscriptions', 'sync', '--dry-run']);

  process.stdout.write(`\n${bold('$ eventsubd run')}   # the daemon: receiver on ${listen}, journal, token, continuous sync\n`);
  daemon = spawn(process.execPath, [bin, 'run'], { env: { ...env, EVENTSUBD_LOG_LEVEL: 'info' } });
  let daemonLog = '';
  daemon.stderr.setEncoding('utf8').on('data', (d) => (daemonLog += d));
  const status = async () => (await fetch(`http://${listen}/status`)).json();
  await waitFor('the daemon to be ready', async () => (await fetch(`http://${listen}/readyz`)).status === 200);
  await waitFor('the first sync', async () => (await status()).sync.result === 'ok');
  await waitFor('Twitch to verify the callbacks', async () =>
    emulator.subscriptions(client.clientId).every((s) => s.status === 'enabled'),
  );
  for (const line of daemonLog.trim().split('\n').slice(0, 12)) process.stdout.write(`  [log] ${line}\n`);

  // channel.follow needs the moderator's grant (here the broadcaster moderates their own channel).
  const waiting = (await status()).authorization.missing;
  process.stdout.write(`\n${bold(`$ curl http://${listen}/status`)}   # what waits for a user's grant\n${JSON.stringify({ authorization: { missing: waiting } })}\n`);
  emulator.setConsent({ userId: '12345', login: 'demo_streamer' }); // who signs in at Twitch's consent page
  await authorize('the broadcaster grants moderator:read:followers; the user token is revoked at once, the daemon syncs');
  await waitFor('the follow subscription, created and verified', async () =>
    emulator.subscriptions(client.clientId).some((s) => s.type === 'channel.follow' && s.status === 'enabled') && (await status()).authorization.missing.length === 0,
  );
  process.stdout.write(`  [emulator] user tokens issued: ${emulator.userTokens().length}, still valid: ${emulator.userTokens().filter((t) => t.valid).length}\n`);
  await step('who granted what, as Twitch shows it', ['authorizations', 'list']);

  await step('Twitch verified every callback through the daemon', ['subscriptions', 'list']);
  const to = `http://${listen}/twitch/eventsub`;
  await step('Twitch sends a stream.online notification', ['trigger', 'stream.online', '--to', to, '--secret', secret, '--broadcaster', '12345']);
  await step('... and a channel.follow', ['trigger', 'channel.follow', '--to', to, '--secret', secret, '--broadcaster', '12345']);
  const again = ['trigger', 'channel.update', '--to', to, '--secret', secret, '--broadcaster', '12345', '--message-id', 'demo-duplicate-1'];
  await step('... a channel.update', again);
  await step('... Twitch redelivers the same message: acknowledged, not journaled twice', again);
  await step('a forged signature is refused (403, exit 1 expected)', ['trigger', 'stream.online', '--to', to, '--secret', 'not-the-real-secret']).catch(
    (err) => process.stdout.write(`  -> ${err.message}\n`),
  );
  await step('every accepted message, durably in the journal', ['events', 'tail', '--since', '0']);
  const s = await status();
  process.stdout.write(`\n${bold(`$ curl http://${listen}/status`)}\n${JSON.stringify({ token: s.token.state, sync: s.sync.result, journal: s.journal }, null, 0)}\n`);

  daemon.kill('SIGTERM');
  const code = await new Promise((r) => daemon.on('close', r));
  daemon = undefined;
  process.stdout.write(`\nDaemon stopped with exit code ${code}; subscriptions left in place: ${emulator.subscriptions(client.clientId).length}\n`);

  // Part 2: no public HTTPS endpoint. The same daemon, switched to a conduit with two WebSocket shards: it creates
  // the conduit, assigns its shards, and migrates the subscriptions (the conduit twins first, then the webhooks go).
  const head = s.journal.head;
  const wsUrl = `${emulator.url.replace(/^http/, 'ws')}/ws`;
  Object.assign(env, { EVENTSUBD_TRANSPORT: 'conduit', EVENTSUBD_CONDUIT_SHARDS: '2', TWITCH_EVENTSUB_WS_URL: wsUrl });
  process.stdout.write(
    `\n${bold('No public HTTPS endpoint? The same daemon with EVENTSUBD_TRANSPORT=conduit EVENTSUBD_CONDUIT_SHARDS=2')}\n` +
      `${bold('$ eventsubd run')}   # outbound WebSockets to ${wsUrl}; nothing listens for Twitch\n`,
  );
  daemon = spawn(process.execPath, [bin, 'run'], { env: { ...env, EVENTSUBD_LOG_LEVEL: 'info' } });
  let conduitLog = '';
  daemon.stderr.setEncoding('utf8').on('data', (d) => (conduitLog += d));
  await waitFor('two shards assigned', async () => (await fetch(`http://${listen}/readyz`)).status === 200 && (await status()).conduit?.shards_assigned === 2);
  await waitFor('the subscriptions migrated onto the conduit', async () => {
    const subs = emulator.subscriptions(client.clientId);
    return (await status()).sync.result === 'ok' && subs.length > 0 && subs.every((x) => x.transport.method === 'conduit');
  });
  for (const line of conduitLog.trim().split('\n').filter((l) => /conduit|shard|[Mm]igrat|Deleted/.test(l)).slice(0, 8)) process.stdout.write(`  [log] ${line}\n`);
  await step("Twitch's view of the conduit and its shards", ['conduit', 'status']);
  await step('the same subscriptions, now on the conduit', ['subscriptions', 'list']);
  for (const sub of emulator.subscriptions(client.clientId).filter((x) => x.type === 'stream.online' || x.type === 'channel.follow')) {
    const sent = emulator.sendEvents(sub.id, { count: 1 });
    process.stdout.write(`  [emulator] Twitch sends a ${sub.type} over the conduit to shard ${sent[0].shard ?? '(dropped)'}\n`);
  }
  await waitFor('the conduit events journaled', async () => (await status()).journal.head >= head + 2);
  await step('journaled like webhook ones, with their transport and shard', ['events', 'tail', '--since', String(head)]);
  daemon.kill('SIGTERM');
  const conduitCode = await new Promise((r) => daemon.on('close', r));
  daemon = undefined;
  process.stdout.write(`\nDaemon stopped with exit code ${conduitCode}; the conduit ${JSON.stringify(emulator.conduits().map((c) => c.id))} stays for the next start.\n`);
  const st = emulator.stats;
  process.stdout.write(
    `Emulator saw: ${st.mints} token mint(s), ${st.validations} validation(s), ${st.verificationsSent} verification(s) sent, ` +
      `${st.helix.total} Helix request(s) (${JSON.stringify(st.helix.byMethod)}), ${st.helix.rateLimited} rate-limited.\n`,
  );
} finally {
  daemon?.kill('SIGKILL');
  await emulator.close();
  rmSync(stateDir, { recursive: true, force: true });
}
