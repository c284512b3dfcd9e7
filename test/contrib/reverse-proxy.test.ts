/**
 * The reverse-proxy examples of contrib/proxy/ work as shipped: each is rendered for loopback (its port 443 and
 * certificate swapped for a free port and a throwaway self-signed certificate, nothing else changed), started in
 * front of an in-process daemon, and a notification signed as Twitch signs it goes through it over HTTPS: 204 and
 * journaled, its raw bytes intact. The daemon's own routes are not reachable through the proxy. Needs `nginx` and
 * `caddy` (Debian packages; .ci/run installs them) and `openssl`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { ROOT, tempDir } from '../helpers/cli.js';
import { freePort, readJournal, waitFor } from '../daemon/harness.js';
import { SECRET, WEBHOOK_PATH, startInProcessDaemon, type InProcessDaemon } from '../daemon/in-process.js';
import { notificationBody, signedRequest } from '../receiver/helpers.js';

const PROXY_DIR = join(ROOT, 'contrib', 'proxy');

function which(cmd: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
  assert.ok(found, `${cmd} is needed by this test (Debian: apt-get install -y nginx-light caddy openssl; .ci/run does it)`);
  return found;
}

/** The configuration without its comment lines. */
const uncommented = (text: string): string => text.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');

/** A self-signed certificate for 127.0.0.1, valid one day. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const res = spawnSync(which('openssl'), ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  return { cert, key };
}

/** Starts `cmd`, kills it after the test, and fails early with its output if it exits. */
function run(t: TestContext, cmd: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  t.after(() => {
    child.kill('SIGKILL');
  });
  return { child, output: () => output };
}

/** Through the proxy: a signed notification (204, journaled once, bytes intact), then the daemon's routes (404). */
async function exercise(d: InProcessDaemon, origin: string, agent: Agent, proxy: { child: ChildProcess; output: () => string }): Promise<void> {
  await waitFor('the proxy to answer', async () => {
    if (proxy.child.exitCode !== null) throw new Error(`the proxy exited ${proxy.child.exitCode}: ${proxy.output()}`);
    try {
      const res = await request(`${origin}/`, { dispatcher: agent });
      await res.body.dump();
      return res.statusCode === 404;
    } catch {
      return false;
    }
  });
  // Whitespace and key order a re-serialization would change: the HMAC is over these exact bytes.
  const body = notificationBody('proxy-1').replace('{', '{ ');
  const signed = signedRequest(d.clock, { body, secret: SECRET, messageId: 'through-the-proxy-1' });
  const res = await request(origin + WEBHOOK_PATH, { method: 'POST', dispatcher: agent, headers: signed.headers as Record<string, string>, body: signed.body });
  await res.body.dump();
  assert.equal(res.statusCode, 204);
  const records = readJournal(d.stateDir);
  assert.deepEqual(records.map((r) => r.message_id), ['through-the-proxy-1']);
  const forged = signedRequest(d.clock, { body, secret: 'not-the-secret-0123456789', messageId: 'forged-1' });
  const refused = await request(origin + WEBHOOK_PATH, { method: 'POST', dispatcher: agent, headers: forged.headers as Record<string, string>, body: forged.body });
  await refused.body.dump();
  assert.equal(refused.statusCode, 403, 'the daemon still judges the signature');
  for (const path of ['/status', '/metrics', '/healthz', '/events']) {
    const r = await request(origin + path, { dispatcher: agent });
    await r.body.dump();
    assert.equal(r.statusCode, 404, `${path} is not exposed`);
  }
}

test('contrib/proxy/nginx-eventsubd.conf: HTTPS in front of the daemon, the webhook path only', async (t) => {
  const nginx = which('nginx');
  const d = await startInProcessDaemon(t);
  const dir = tempDir('eventsubd-nginx-');
  t.after(() => dir.cleanup());
  const { cert, key } = selfSigned(dir.path);
  const port = await freePort();
  const listen = new URL(d.daemon.url).host;
  const shipped = readFileSync(join(PROXY_DIR, 'nginx-eventsubd.conf'), 'utf8');
  const server = shipped
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
    .replace(/^\s*listen \[::\]:443 ssl;\n/m, '')
    .replace('/etc/letsencrypt/live/events.example.com/fullchain.pem', cert)
    .replace('/etc/letsencrypt/live/events.example.com/privkey.pem', key)
    .replace('http://127.0.0.1:8080', `http://${listen}`);
  assert.notEqual(server, shipped);
  // Whole numbers only: the free port and the temporary paths put in their place may hold these digits.
  assert.ok(!/\b(443|8080)\b|letsencrypt/.test(uncommented(server)), 'every site-specific value was replaced');
  const conf = join(dir.path, 'nginx.conf');
  writeFileSync(
    conf,
    `pid ${join(dir.path, 'nginx.pid')};\nerror_log ${join(dir.path, 'error.log')};\nevents {}\nhttp {\n` +
      `access_log off;\nclient_body_temp_path ${dir.path}/body;\nproxy_temp_path ${dir.path}/proxy;\n` +
      `fastcgi_temp_path ${dir.path}/fastcgi;\nuwsgi_temp_path ${dir.path}/uwsgi;\nscgi_temp_path ${dir.path}/scgi;\n${server}\n}\n`,
  );
  const check = spawnSync(nginx, ['-t', '-p', dir.path, '-c', conf, '-g', 'daemon off;'], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  const proxy = run(t, nginx, ['-p', dir.path, '-c', conf, '-g', 'daemon off; master_process off;']);
  const agent = new Agent({ connect: { ca: readFileSync(cert, 'utf8') } });
  t.after(() => agent.close());
  await exercise(d, `https://127.0.0.1:${port}`, agent, proxy);
});

test('contrib/proxy/Caddyfile: HTTPS in front of the daemon, the webhook path only', async (t) => {
  const caddy = which('caddy');
  const d = await startInProcessDaemon(t);
  const dir = tempDir('eventsubd-caddy-');
  t.after(() => dir.cleanup());
  const { cert, key } = selfSigned(dir.path);
  const port = await freePort();
  const listen = new URL(d.daemon.url).host;
  const shipped = readFileSync(join(PROXY_DIR, 'Caddyfile'), 'utf8');
  // The shipped site gets its certificate from an ACME CA; here the site is the loopback port with our certificate.
  const site = shipped
    .replace('events.example.com {', `https://127.0.0.1:${port} {\n\ttls ${cert} ${key}`)
    .replace('reverse_proxy 127.0.0.1:8080', `reverse_proxy ${listen}`);
  assert.ok(!/example\.com|\b8080\b/.test(uncommented(site)), 'every site-specific value was replaced');
  const file = join(dir.path, 'Caddyfile');
  writeFileSync(file, `{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system ${join(dir.path, 'data')}\n}\n${site}`);
  const home = { HOME: dir.path, XDG_DATA_HOME: join(dir.path, 'data'), XDG_CONFIG_HOME: join(dir.path, 'config') };
  const valid = spawnSync(caddy, ['validate', '--config', file, '--adapter', 'caddyfile'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...home } });
  assert.equal(valid.status, 0, valid.stderr);
  const proxy = run(t, caddy, ['run', '--config', file, '--adapter', 'caddyfile'], home);
  const agent = new Agent({ connect: { ca: readFileSync(cert, 'utf8') } });
  t.after(() => agent.close());
  await exercise(d, `https://127.0.0.1:${port}`, agent, proxy);
});
