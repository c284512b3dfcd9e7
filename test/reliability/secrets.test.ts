/**
 * Issue #6, item 1: no secret ever leaves the process. The daemon (EVENTSUBD_LOG_LEVEL=debug) and every CLI
 * command are driven through their error paths with distinctive secret values; every stdout, stderr and HTTP
 * body is scanned for them (and for the access tokens the emulator minted): zero occurrences. The files that
 * hold secrets (token.json, cursors, journal segments) must be 0600 in 0700 directories.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { runCli, tempDir, type CliResult } from '../helpers/cli.js';
import { httpGet, startDaemon, startFixture, status, waitFor, type Fixture } from '../daemon/harness.js';
import { notificationBody, post, send, signedHeaders } from '../daemon/messages.js';

const CLIENT_SECRET = 'cs0LEAKCANARY0q7xk2m9v4p1z8r3w6t';
const WRONG_CLIENT_SECRET = 'cs0LEAKCANARY0wrongwrongwrong11';
const WEBHOOK_SECRET = 'ws0LEAKCANARY0h5j8n2c6b9d3f7g1';
const OLD_WEBHOOK_SECRET = 'ws0LEAKCANARY0oldoldold4x7y0z3';
const FORWARD_SECRET = 'fw0LEAKCANARY0a4s7d0f3g6h9j2k5';
const STREAM_TOKEN = 'st0LEAKCANARY0e1r4t7y0u3i6o9p2';
const BAD_PRINTABLE_SECRET = 'ws0LEAKCANARY0\u0001ctrl';

/** Every transcript collected during the test: scanned at the end. */
class Transcript {
  readonly parts: Array<{ what: string; text: string }> = [];
  add(what: string, text: string): void {
    this.parts.push({ what, text });
  }
  cli(what: string, r: CliResult): CliResult {
    this.add(`${what} stdout`, r.stdout);
    this.add(`${what} stderr`, r.stderr);
    return r;
  }
}

/** A forward target answering 500 to the first `failures` requests, then 204; headers and bodies are kept. */
async function forwardTarget(failures: number): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  let n = 0;
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push(JSON.stringify(req.headers) + body);
      n += 1;
      res.statusCode = n <= failures ? 500 : 204;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}/hook`, seen };
}

/** The access token in STATE_DIR/token.json, if any. */
function cachedToken(stateDir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(stateDir, 'token.json'), 'utf8')) as { access_token?: string }).access_token;
  } catch {
    return undefined;
  }
}

/** Runs `jobs` with at most `limit` at once (the CLI costs ~1 s of CPU per start on this machine). */
async function pool<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

/** One stream connection: refused (its answer is kept), or accepted and read up to the journal's head now. */
async function wsAttempt(f: Fixture, token: string | undefined, transcript: Transcript): Promise<void> {
  const head = (await status(f)).journal.head;
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${f.port}/events?since=0`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        transcript.add(`ws ${token ? 'wrong token' : 'no token'} ${res.statusCode}`, JSON.stringify(res.headers) + body);
        resolve();
      });
    });
    ws.on('message', (d: Buffer) => {
      const frame = d.toString('utf8');
      transcript.add('ws frame', frame);
      if ((JSON.parse(frame) as { seq: number }).seq >= head) ws.close();
    });
    ws.on('open', () => {
      if (head === 0) ws.close();
    });
    ws.on('close', () => resolve());
    ws.on('error', () => resolve());
  });
}

test('secrets: the daemon at debug level and every CLI command, through their error paths, never print a secret or token; secret files are 0600 in 0700 dirs', async (t) => {
  const f = await startFixture();
  const client = f.emulator.addClient({ clientSecret: CLIENT_SECRET });
  const fwd = await forwardTarget(3);
  const dir = tempDir('eventsubd-secrets-');
  t.after(async () => {
    await new Promise((r) => fwd.server.close(r));
    await f.close();
    dir.cleanup();
  });
  const transcript = new Transcript();
  const base = (extra: Record<string, string> = {}): Record<string, string> =>
    f.env({
      TWITCH_CLIENT_ID: client.clientId,
      TWITCH_CLIENT_SECRET: CLIENT_SECRET,
      EVENTSUB_SECRET: `${WEBHOOK_SECRET},${OLD_WEBHOOK_SECRET}`,
      EVENTSUBD_FORWARD_URL: fwd.url,
      EVENTSUBD_FORWARD_SECRET: FORWARD_SECRET,
      EVENTSUBD_FORWARD_MAX_BACKOFF_MS: '200',
      EVENTSUBD_STREAM_TOKEN: STREAM_TOKEN,
      EVENTSUBD_LOG_LEVEL: 'debug',
      ...extra,
    });
  const tokens = new Set<string>();
  let last = Date.now();
  const phase = (name: string): void => {
    t.diagnostic(`${name}: ${Date.now() - last} ms`);
    last = Date.now();
  };

  // --- The daemon at debug level.
  const daemon = await startDaemon(f, base());
  t.after(() => daemon.kill9());
  await waitFor('a cached token', () => cachedToken(f.stateDir));
  tokens.add(cachedToken(f.stateDir)!);
  // Signed with the current and the previous secret; then bad ones of every kind.
  for (const secret of [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET]) assert.equal((await send(f, { secret })).status, 204);
  assert.equal((await send(f, { secret: 'another-secret-0123456789' })).status, 403);
  const body = notificationBody();
  const h = signedHeaders(body, { secret: WEBHOOK_SECRET });
  const bad: Array<[Record<string, string>, string]> = [
    [{ ...h, 'twitch-eventsub-message-signature': h['twitch-eventsub-message-signature']!.toUpperCase() }, body],
    [{ ...h, 'twitch-eventsub-message-signature': 'sha256=zz' }, body],
    [h, body.replace('}', ' }')],
    [{ ...h, 'twitch-eventsub-message-timestamp': '2001-01-01T00:00:00Z' }, body],
    [{ ...signedHeaders('{not json', { secret: WEBHOOK_SECRET }) }, '{not json'],
    [{ ...signedHeaders(body, { secret: WEBHOOK_SECRET, messageType: 'bogus' }) }, body],
  ];
  for (const [headers, b] of bad) {
    const res = await post(f, headers, b);
    assert.ok(res.status >= 400, `bad request answered ${res.status}`);
    transcript.add(`webhook ${res.status}`, JSON.stringify(res.headers) + res.body);
  }
  // A forged challenge with the wrong secret, a valid challenge, a revocation.
  for (const [mt, secret] of [['webhook_callback_verification', 'another-secret-0123456789'], ['webhook_callback_verification', WEBHOOK_SECRET], ['revocation', WEBHOOK_SECRET]] as const) {
    const r = await send(f, { messageType: mt, secret, challenge: 'chal-123' });
    transcript.add(`send ${mt} ${r.status}`, r.body);
  }
  // Twitch 5xx and an expired token during a SIGHUP sync; the forwarder meets three 500s first.
  f.emulator.injectFault({ kind: 'status', status: 503, times: 3 });
  f.emulator.expireAllTokens();
  daemon.child.kill('SIGHUP');
  await waitFor('the daemon to mint a new token after the expiry', () => {
    const v = cachedToken(f.stateDir);
    return v !== undefined && !tokens.has(v) ? v : false;
  }, { timeoutMs: 15_000 }).then((v) => tokens.add(v));
  await waitFor('the forwarder to deliver after its failures', () => fwd.seen.length >= 6, { timeoutMs: 15_000 });
  for (const path of ['/status', '/metrics', '/healthz', '/readyz', '/nope', '/twitch/eventsub']) {
    const r = await httpGet(f, path);
    transcript.add(`GET ${path} ${r.status}`, JSON.stringify(r.headers) + r.body);
  }
  await wsAttempt(f, undefined, transcript);
  await wsAttempt(f, 'wrong-stream-token-0123456789', transcript);
  await wsAttempt(f, STREAM_TOKEN, transcript);
  // trigger (the CLI) against the daemon: right and wrong secret, text and --json.
  const trig = (secret: string, json: boolean): Promise<CliResult> =>
    runCli(['trigger', 'stream.online', '--to', f.webhookUrl, '--secret', secret, '--broadcaster', '12345', ...(json ? ['--json'] : [])], { env: base() });
  for (const [s, j] of [[WEBHOOK_SECRET, false], [WEBHOOK_SECRET, true], [WRONG_CLIENT_SECRET, false], [WRONG_CLIENT_SECRET, true]] as const) {
    transcript.cli(`trigger ${j ? '--json' : ''}`, await trig(s, j));
  }
  assert.equal(await daemon.stop('SIGTERM'), 0);
  phase('daemon');
  transcript.add('daemon stdout', daemon.stdout);
  transcript.add('daemon stderr', daemon.stderr);
  assert.ok(daemon.logs().some((l) => l.level === 'debug'), 'the daemon logged at debug level');
  for (const r of fwd.seen) transcript.add('forwarded request', r.replace(/"eventsubd-signature":"[^"]*"/, ''));

  // --- Modes of the secret-holding files.
  const modes: string[] = [];
  const mode = (p: string): number => statSync(p).mode & 0o777;
  assert.equal(mode(f.stateDir), 0o700, 'state dir');
  assert.equal(mode(join(f.stateDir, 'token.json')), 0o600, 'token.json');
  assert.equal(mode(join(f.stateDir, 'journal')), 0o700, 'journal dir');
  const segments = readdirSync(join(f.stateDir, 'journal')).filter((n) => n.endsWith('.jsonl'));
  assert.ok(segments.length >= 1);
  for (const s of segments) assert.equal(mode(join(f.stateDir, 'journal', s)), 0o600, `segment ${s}`);
  const cursors = readdirSync(join(f.stateDir, 'cursors')).filter((n) => n.endsWith('.json'));
  assert.ok(cursors.includes('forward.json'), `cursors: ${cursors.join(',')}`);
  assert.equal(mode(join(f.stateDir, 'cursors')), 0o700, 'cursors dir');
  for (const c of cursors) assert.equal(mode(join(f.stateDir, 'cursors', c)), 0o600, `cursor ${c}`);
  modes.push(...segments, ...cursors);

  // --- Every CLI command through its error paths.
  const userToken = f.emulator.registerUserToken({ clientId: client.clientId, userId: '4242' });
  tokens.add(userToken);
  const badFile = join(dir.path, 'bad.yaml');
  writeFileSync(badFile, 'subscriptions:\n  - type: stream.online\n    version: 1\n    condition: {}\n    secret: LEAK\n');
  const badSecretFile = join(dir.path, 'secret-file');
  writeFileSync(badSecretFile, `${BAD_PRINTABLE_SECRET}\n`);
  const envFile = join(dir.path, 'x.env');
  writeFileSync(envFile, `TWITCH_CLIENT_SECRET=${CLIENT_SECRET}\nEVENTSUB_SECRET=${BAD_PRINTABLE_SECRET}\n`);
  const withJson = (args: string[]): string[][] => [args, [...args, '--json']];
  const runs: Array<[string[], Record<string, string>]> = [];
  // Text and --json for the commands whose JSON output carries settings or token state; one form for the rest.
  const add = (args: string[], env: Record<string, string>, both = false): void => {
    for (const a of both ? withJson(args) : [args]) runs.push([a, env]);
  };
  add(['config', 'check'], base(), true);
  add(['config', 'check'], base({ EVENTSUB_SECRET: BAD_PRINTABLE_SECRET }), true);
  add(['config', 'check'], base({ EVENTSUBD_STREAM_TOKEN: 'st0LEAKCANARY' }));
  add(['config', 'check'], base({ TWITCH_CLIENT_SECRET: '', TWITCH_CLIENT_SECRET_FILE: badSecretFile }));
  add(['config', 'check', '--env-file', envFile], {});
  add(['token', 'status', '--json'], base());
  add(['token', 'status'], base({ TWITCH_ACCESS_TOKEN: userToken }), true);
  add(['subscriptions', 'list'], base({ TWITCH_CLIENT_SECRET: WRONG_CLIENT_SECRET, EVENTSUBD_STATE_DIR: join(dir.path, 's2') }));
  add(['subscriptions', 'list', '--json'], base({ TWITCH_ACCESS_TOKEN: userToken }));
  add(['subscriptions', 'sync', '--file', badFile], base());
  add(['subscriptions', 'sync', '--dry-run', '--json'], base());
  add(['subscriptions', 'create', '--type', 'nope.type', '--version', '1', '--condition', 'broadcaster_user_id=1'], base());
  add(['subscriptions', 'delete', 'no-such-id', '--json'], base());
  add(['subscriptions', 'delete', '--status', 'enabled'], base());
  add(['events', 'tail', '--since', '0', '--json'], base());
  add(['events', 'tail'], base({ EVENTSUBD_STATE_DIR: badFile }));
  const results = await pool(runs.map(([args, env]) => () => runCli(args, { env })), 3);
  results.forEach((r, i) => transcript.cli(runs[i]![0].join(' '), r));
  // The user token was refused with 77, the bad settings with 78.
  assert.equal(results[runs.findIndex(([a, e]) => a[0] === 'token' && e.TWITCH_ACCESS_TOKEN === userToken)]!.code, 77);
  assert.equal(results[2]!.code, 78, 'config check with a non-printable EVENTSUB_SECRET');

  // Twitch 5xx: two then success (retried), and on every request until the retries give up.
  phase('cli error paths');
  for (const [args, times] of [[['subscriptions', 'sync'], 2], [['subscriptions', 'list', '--json'], 1_000]] as const) {
    f.emulator.injectFault({ kind: 'status', status: 500, times, match: { pathPrefix: '/helix' } });
    transcript.cli(`${args.join(' ')} (5xx x${times})`, await runCli(args, { env: base() }));
    f.emulator.clearFaults();
  }
  phase('cli 5xx');
  for (const args of [['token', 'rotate'], ['token', 'revoke', '--json']]) {
    const before = cachedToken(f.stateDir);
    if (before) tokens.add(before);
    transcript.cli(args.join(' '), await runCli(args, { env: base() }));
    const after = cachedToken(f.stateDir);
    if (after) tokens.add(after);
  }
  assert.ok(tokens.size >= 3, `tokens seen: ${tokens.size}`);
  phase('token commands');

  // --- The scan.
  const needles = [CLIENT_SECRET, WRONG_CLIENT_SECRET, WEBHOOK_SECRET, OLD_WEBHOOK_SECRET, FORWARD_SECRET, STREAM_TOKEN, BAD_PRINTABLE_SECRET, ...tokens];
  // Fragments too: a truncated or re-encoded secret is a leak as well.
  const fragments = [...needles, ...[...tokens].flatMap((n) => [n.slice(0, 16), n.slice(-16)])];
  const hits: string[] = [];
  let bytes = 0;
  for (const { what, text } of transcript.parts) {
    bytes += text.length;
    for (const n of fragments) if (text.includes(n) || text.includes(encodeURIComponent(n))) hits.push(`${what}: ${n.slice(0, 4)}…`);
    if (text.includes('LEAKCANARY')) hits.push(`${what}: LEAKCANARY`);
  }
  t.diagnostic(`scanned ${transcript.parts.length} outputs (${bytes} bytes) for ${needles.length} secrets/tokens (${fragments.length} patterns): ${hits.length} hits; files checked: ${modes.length + 3}`);
  assert.deepEqual(hits, []);
});
