import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, ROOT, tempDir } from '../helpers/cli.js';

const UNIT = readFileSync(join(ROOT, 'contrib', 'eventsubd.service'), 'utf8');

/** Directives the issue and SPEC.md require, with their values. */
const REQUIRED: Array<[string, RegExp]> = [
  ['Type', /^notify$/],
  ['StateDirectory', /^eventsubd$/],
  ['DynamicUser', /^yes$/],
  ['NoNewPrivileges', /^yes$/],
  ['ProtectSystem', /^strict$/],
  ['ProtectHome', /^yes$/],
  ['PrivateTmp', /^yes$/],
  ['Restart', /^on-failure$/],
  ['RestartPreventExitStatus', /^77 78$/],
  ['WatchdogSec', /^\d+s$/],
  ['ExecReload', /kill -HUP \$MAINPID$/],
];

function directives(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

test('contrib/eventsubd.service has the directives SPEC.md asks for', () => {
  const d = directives(UNIT);
  for (const [name, value] of REQUIRED) {
    const v = d.get(name);
    assert.ok(v, `${name}= is set`);
    assert.match(v[0]!, value, `${name}=${v[0]}`);
  }
  const creds = d.get('LoadCredential') ?? [];
  assert.ok(creds.some((c) => c.startsWith('twitch_client_secret:')), 'client secret as a credential');
  assert.ok(creds.some((c) => c.startsWith('eventsub_secret:')), 'webhook secret as a credential');
  // Conduit mode needs no webhook secret: an empty default, so that a missing file does not fail the start.
  assert.deepEqual(d.get('SetCredential'), ['eventsub_secret:\\x20']);
});

test('systemd-analyze verify accepts the unit with no warning', (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, 'systemd-analyze is installed (.ci/run installs the systemd package)');
  const dir = tempDir();
  t.after(dir.cleanup);
  // verify checks that ExecStart exists: point it at the built CLI.
  const unit = UNIT.replace('/usr/local/bin/eventsubd', `${process.execPath} ${BIN}`);
  const path = join(dir.path, 'eventsubd.service');
  writeFileSync(path, unit);
  const res = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stderr.trim(), '', 'no warning');

  // The check can fail: a misspelt Type is reported.
  writeFileSync(path, unit.replace('Type=notify', 'Type=notfy'));
  const bad = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
  assert.match(bad.stderr, /Failed to parse service type/);
});
