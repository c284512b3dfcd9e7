/**
 * The CLI runner (`runCli` of src/cli/run.ts) in this process, with captured output and no real signals: for
 * tests of commands whose seams allow it (a fake terminal on stderr, an injected clock). Signals and exit codes of
 * the process stay with the child-process helper (cli.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type CliProcess } from '../../src/cli/run.js';
import { systemClock, type Clock } from '../../src/lib/clock.js';
import { FakeClock } from './fake-clock.js';

export interface StartedCli {
  /** Resolves with the command's exit code. */
  done: Promise<number>;
  out: () => string;
  err: () => string;
  /** stdout and stderr in the order written, as a terminal showing both would. */
  both: () => string;
}

export interface CliOptions {
  env?: Record<string, string>;
  /** What `./.env` holds (none when undefined). */
  dotenv?: Record<string, string>;
  /** Resolving it asks a long-running command to stop. */
  stopped?: Promise<void>;
  /** stderr claims to be a terminal. */
  tty?: boolean;
  /** Default: a FakeClock. */
  clock?: Clock;
}

/** Starts `argv` with exactly `options.env`. */
export function startCli(argv: string[], options: CliOptions = {}): StartedCli {
  let out = '';
  let err = '';
  let both = '';
  const proc: CliProcess = {
    argv,
    env: options.env ?? {},
    stdout: { write: (s: string) => ((out += s), (both += s), true) },
    stderr: { write: (s: string) => ((err += s), (both += s), true), isTTY: options.tty ?? false },
    clock: options.clock ?? new FakeClock(),
    readEnvFile: (path) => (path === '.env' ? options.dotenv : undefined),
    version: '0.0.0',
    signal: new AbortController().signal,
    stopped: options.stopped ?? new Promise(() => {}),
    process: { pid: process.pid, onHangup: () => () => {} },
  };
  return { done: runCli(proc), out: () => out, err: () => err, both: () => both };
}

export interface InProcessRun {
  code: number;
  out: string;
  err: string;
  both: string;
}

/** Runs `argv` with exactly `env` to its end, on the fake clock. */
export async function cliInProcess(argv: string[], env: Record<string, string> = {}): Promise<InProcessRun> {
  return runCliInProcess(argv, { env, clock: new FakeClock() });
}

/** Runs `argv` to its end on the system clock (commands that pace or time out against a real server). */
export async function runCliInProcess(argv: string[], options: Omit<CliOptions, 'stopped'>): Promise<InProcessRun> {
  const run = startCli(argv, { clock: systemClock, ...options });
  const code = await run.done;
  return { code, out: run.out(), err: run.err(), both: run.both() };
}

/** Writes `dir/subscriptions.json` declaring `stream.online` v1 for each broadcaster id; returns its path. */
export function writeStreamOnlineFile(dir: string, broadcasterIds: readonly string[]): string {
  const file = join(dir, 'subscriptions.json');
  const subscriptions = broadcasterIds.map((id) => ({ type: 'stream.online', version: '1', condition: { broadcaster_user_id: id } }));
  writeFileSync(file, JSON.stringify({ subscriptions }));
  return file;
}
