import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli, type CliProcess } from '../../src/cli/run.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** Runs the CLI in-process with captured stdout/stderr and no .env file. */
async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const proc: CliProcess = {
    argv,
    env,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    clock: new FakeClock(),
    readEnvFile: () => undefined,
    version: '9.9.9',
    signal: new AbortController().signal,
    stopped: new Promise(() => {}),
    process: { pid: 1, onHangup: () => () => {} },
  };
  const code = await runCli(proc);
  return { code, out, err };
}

describe('runCli()', () => {
  test('no arguments prints help and exits 2; --help exits 0; --version prints the version', async () => {
    const bare = await cli([]);
    assert.equal(bare.code, 2);
    assert.match(bare.out, /^eventsubd: Twitch EventSub plumbing/);
    assert.equal((await cli(['--help'])).code, 0);
    assert.deepEqual(await cli(['--version']), { code: 0, out: '9.9.9\n', err: '' });
  });

  test('a bare group prints the group help (exit 2); with --help exit 0; an unknown subcommand is a usage error', async () => {
    const group = await cli(['token']);
    assert.equal(group.code, 2);
    assert.match(group.out, /token status/);
    assert.match(group.out, /token rotate/);
    assert.equal((await cli(['token', '--help'])).code, 0);
    const unknown = await cli(['token', 'frob']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.err, 'eventsubd: USAGE_ERROR: Unknown command "token frob": run "eventsubd token --help"\n');
  });

  test('a flag without its value and an extra argument are usage errors of one line', async () => {
    const noValue = await cli(['subscriptions', 'list', '--type']);
    assert.equal(noValue.code, 2);
    assert.match(noValue.err, /^eventsubd: USAGE_ERROR: Flag --type needs a value: run "eventsubd subscriptions list --help"\n$/);
    const extra = await cli(['config', 'check', 'surplus']);
    assert.equal(extra.code, 2);
    assert.match(extra.err, /Unexpected argument "surplus"/);
  });

  test('--json errors are one JSON object on stderr; combining list filters is a usage error', async () => {
    const res = await cli(['subscriptions', 'list', '--json', '--status', 'enabled', '--type', 'x'], {
      TWITCH_CLIENT_ID: 'abc',
      TWITCH_CLIENT_SECRET: 'very-secret-value',
    });
    assert.equal(res.code, 2);
    assert.deepEqual(JSON.parse(res.err), {
      error: { code: 'USAGE_ERROR', message: 'Flags --status and --type cannot be combined: Twitch accepts one filter at a time' },
    });
  });
});
