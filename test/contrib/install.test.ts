/**
 * The README's install path, run for real: `npm pack` the working tree, `npm install -g` the tarball into a
 * temporary prefix, run the installed `eventsubd --version`, and `systemd-analyze verify` the shipped unit
 * against that install.
 *
 * No network. `npm install` of a tarball resolves its dependencies' ranges from the registry's packuments,
 * which `npm ci` never fetches (the lockfile gives it versions and integrities), so `--offline` fails with
 * ENOTCACHED even right after `npm ci`. Instead a registry on 127.0.0.1 serves packuments made from
 * package-lock.json, and npm takes the tarballs from its cache by integrity (filled by `npm ci`); the registry
 * refuses any tarball request, so nothing can come from elsewhere.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { freePort, waitFor } from '../daemon/harness.js';
import { ROOT, tempDir } from '../helpers/cli.js';

const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string | undefined>;
};
const UNIT = readFileSync(join(ROOT, 'contrib', 'eventsubd.service'), 'utf8');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Where the README installs eventsubd: the unit's ExecStart must be this prefix's bin/eventsubd. */
const INSTALL_PREFIX = '/usr/local';
/** The README's install command, apart from the prefix; the test adds only its registry and quiet flags. */
const installArgs = (prefix: string, tarball: string): string[] =>
  ['install', '-g', '--prefix', prefix, '--allow-scripts=unix-dgram', tarball];

interface LockEntry {
  name?: string;
  version: string;
  integrity: string;
  dev?: boolean;
  [field: string]: unknown;
}

/** Packuments of the runtime packages of package-lock.json, whose tarball URLs point at `origin`. */
function packuments(origin: string): Map<string, object> {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const docs = new Map<string, { name: string; 'dist-tags': Record<string, string>; versions: Record<string, object> }>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true) continue;
    const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const { dev: _dev, optional: _optional, integrity, ...manifest } = entry;
    const file = `${name.split('/').pop()}-${entry.version}.tgz`;
    const doc = docs.get(name) ?? { name, 'dist-tags': {}, versions: {} };
    doc.versions[entry.version] = { ...manifest, name, dist: { integrity, tarball: `${origin}/${name}/-/${file}` } };
    doc['dist-tags'].latest = entry.version;
    docs.set(name, doc);
  }
  return docs;
}

/** A registry on 127.0.0.1 that serves the lockfile's packuments and refuses everything else (recorded). */
async function lockfileRegistry(): Promise<{ url: string; refused: string[]; server: Server }> {
  const refused: string[] = [];
  let docs = new Map<string, object>();
  const server = createServer((req, res) => {
    const doc = docs.get(decodeURIComponent((req.url ?? '/').slice(1)));
    if (doc === undefined) refused.push(req.url ?? '');
    res.writeHead(doc === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc ?? { error: 'not found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  docs = packuments(url);
  return { url, refused, server };
}

function run(cmd: string, args: readonly string[], cwd: string): Promise<{ code: number | null; stdout: string; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, out: stdout + stderr }));
  });
}

function verify(unit: string, dir: string): { status: number | null; stderr: string } {
  const path = join(dir, 'eventsubd.service');
  writeFileSync(path, unit);
  return spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
}

test('the README install path: npm pack, npm install -g of the tarball, eventsubd --version, a clean unit', async (t) => {
  const dir = tempDir('eventsubd-install-');
  t.after(dir.cleanup);

  // `npm pack` builds in `prepack`; here dist/ is already built (npm test builds first), and building again
  // would rewrite dist/ under the tests that run it.
  assert.equal(PKG.scripts.prepack, 'npm run build', 'npm pack builds dist/');
  assert.equal(PKG.scripts.prepare, undefined, 'no prepare: npm would count it as an install script of the tarball');
  const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir.path], ROOT);
  assert.equal(pack.code, 0, pack.out);
  const [packed] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed!.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'dist/main.js', 'contrib/eventsubd.service']) assert.ok(files.includes(f), f);
  assert.deepEqual(files.filter((f) => !/^(dist|contrib)\//.test(f) && f !== 'package.json' && f !== 'README.md'), []);
  assert.equal(packed!.filename, `${PKG.name}-${PKG.version}.tgz`);

  const registry = await lockfileRegistry();
  t.after(() => registry.server.close());
  const prefix = join(dir.path, 'root', INSTALL_PREFIX);
  const install = await run('npm', [
    ...installArgs(prefix, join(dir.path, packed!.filename)),
    '--registry', `${registry.url}/`, '--no-audit', '--no-fund', '--no-update-notifier',
  ], dir.path);
  const tarballs = registry.refused.filter((u) => u.endsWith('.tgz'));
  assert.deepEqual(tarballs, [], 'every dependency tarball is in the npm cache (run `npm ci` first)');
  assert.equal(install.code, 0, install.out);

  // The command is on PATH at <prefix>/bin, its code under <prefix>/lib, not in the clone (ProtectHome=yes).
  const bin = join(prefix, 'bin', 'eventsubd');
  assert.ok(realpathSync(bin).startsWith(realpathSync(join(prefix, 'lib', 'node_modules', 'eventsubd')) + '/'), realpathSync(bin));
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), PKG.version);
  // Type=notify needs the unix-dgram addon: without it the daemon never sends READY=1 and systemd kills it.
  const addon = join(prefix, 'lib', 'node_modules', 'eventsubd', 'node_modules', 'unix-dgram');
  const load = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { encoding: 'utf8' });
  assert.equal(load.status, 0, `unix-dgram built on install (needs make, g++, python3): ${load.stderr}`);

  // The shipped unit runs that command; verify it against this install (only the prefix differs).
  assert.match(UNIT, new RegExp(`^ExecStart=${INSTALL_PREFIX}/bin/eventsubd run$`, 'm'));
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, 'systemd-analyze is installed (.ci/run installs the systemd package)');
  const rendered = UNIT.replace(`ExecStart=${INSTALL_PREFIX}/`, `ExecStart=${prefix}/`);
  const ok = verify(rendered, dir.path);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stderr.trim(), '', 'no warning');
  // The check can fail: the same unit against a prefix without eventsubd.
  const missing = verify(UNIT.replace(`ExecStart=${INSTALL_PREFIX}/`, `ExecStart=${dir.path}/nowhere/`), dir.path);
  assert.match(missing.stderr, /is not executable/);

  // The README gives these exact commands, and the unit it copies is the installed one.
  assert.ok(README.includes(`sudo npm ${installArgs(INSTALL_PREFIX, `./${packed!.filename}`).join(' ')}`), 'README: npm install -g');
  const unitCopy = `sudo install -m 0644 ${INSTALL_PREFIX}/lib/node_modules/eventsubd/contrib/eventsubd.service /etc/systemd/system/`;
  assert.ok(README.includes(unitCopy), 'README: unit copied from the install');
  assert.equal(readFileSync(join(prefix, 'lib', 'node_modules', 'eventsubd', 'contrib', 'eventsubd.service'), 'utf8'), UNIT);
  assert.ok(existsSync(join(prefix, 'lib', 'node_modules', 'eventsubd', 'README.md')));

  await t.test('the installed daemon, started as the unit starts it, runs against the installed emulator', (tt) => rehearse(tt, bin, dir.path));
});

/** A child process that is killed after the test if still running; `exited` settles with its code. */
function child(t: TestContext, cmd: string, args: string[], env: Record<string, string>) {
  const proc = spawn(cmd, args, { cwd: '/', env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.after(() => void proc.kill('SIGKILL'));
  return { proc, exited, output: () => out, running: () => proc.exitCode === null && proc.signalCode === null };
}

async function getJson(url: string): Promise<unknown> {
  try {
    const res = await fetch(url);
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined; // not listening yet
  }
}

/**
 * README "Going to production", rehearsed: `eventsubd emulate` with the app's credentials, and `eventsubd run`
 * with what the unit gives it (the environment file's settings, the two secrets as credentials in
 * $CREDENTIALS_DIRECTORY, $STATE_DIRECTORY) and the example subscriptions file. The daemon mints, creates the
 * subscriptions that need no grant, the emulator verifies each callback through the receiver, and SIGTERM ends
 * both with exit 0.
 */
async function rehearse(t: TestContext, bin: string, root: string): Promise<void> {
  const [emuPort, listenPort] = [await freePort(), await freePort()];
  const creds = join(root, 'credentials');
  mkdirSync(creds, { mode: 0o700 });
  const clientId = 'rehearsalclientid0123456789abc';
  const clientSecret = 'rehearsal-client-secret-0123456789';
  writeFileSync(join(creds, 'twitch_client_secret'), clientSecret, { mode: 0o600 });
  writeFileSync(join(creds, 'eventsub_secret'), 'rehearsal-webhook-secret-0123', { mode: 0o600 });
  const emulator = child(t, bin, ['emulate', '--port', String(emuPort), '--deliver-to', `http://127.0.0.1:${listenPort}`, '--client-id', clientId, '--client-secret', clientSecret], {});
  const emu = `http://127.0.0.1:${emuPort}`;
  await waitFor('the emulator to listen', async () => {
    if (!emulator.running()) throw new Error(`emulate exited: ${emulator.output()}`);
    return getJson(`${emu}/_emulator/stats`);
  });
  const daemon = child(t, bin, ['run'], {
    TWITCH_CLIENT_ID: clientId,
    TWITCH_AUTH_URL: `${emu}/oauth2`,
    TWITCH_API_URL: `${emu}/helix`,
    EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
    EVENTSUBD_LISTEN: `127.0.0.1:${listenPort}`,
    EVENTSUBD_SUBSCRIPTIONS: join(ROOT, 'examples', 'subscriptions.yaml'),
    CREDENTIALS_DIRECTORY: creds,
    STATE_DIRECTORY: join(root, 'state'),
  });
  type Sub = { type: string; status: string };
  const enabled = await waitFor('the daemon to create and verify the subscriptions that need no grant', async () => {
    if (!daemon.running()) throw new Error(`eventsubd run exited: ${daemon.output()}`);
    const doc = (await getJson(`${emu}/_emulator/subscriptions`)) as { data?: Sub[] } | undefined;
    const subs = doc?.data?.filter((s) => s.status === 'enabled') ?? [];
    return subs.length >= 5 ? subs : undefined;
  }, { timeoutMs: 20_000 });
  // channel.follow waits for the broadcaster's grant (eventsubd authorize); the grant and revoke events need none.
  assert.deepEqual(enabled.map((s) => s.type).sort(), ['channel.update', 'stream.offline', 'stream.online', 'user.authorization.grant', 'user.authorization.revoke']);
  const status = (await getJson(`http://127.0.0.1:${listenPort}/status`)) as { token?: { state?: string } };
  assert.equal(status.token?.state, 'ok', JSON.stringify(status));
  daemon.proc.kill('SIGTERM');
  emulator.proc.kill('SIGTERM');
  assert.equal(await daemon.exited, 0, daemon.output());
  assert.equal(await emulator.exited, 0, emulator.output());
  assert.ok(!daemon.output().includes(clientSecret), 'no secret in the logs');
}
