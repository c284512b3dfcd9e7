#!/usr/bin/env node
/**
 * The only module that touches `process`: argv, env, signals, stdio and the exit code. Everything else
 * receives them through `runCli`.
 */
import { readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
import { runCli } from './cli/run.js';
import { systemClock } from './lib/clock.js';

const VERSION = readVersion();

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function readEnvFile(path: string): Record<string, string> | undefined {
  try {
    return parseDotenv(readFileSync(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const controller = new AbortController();
let resolveStopped!: () => void;
const stopped = new Promise<void>((r) => (resolveStopped = r));
let signals = 0;
const onSignal = (name: NodeJS.Signals): void => {
  signals += 1;
  // A second signal exits at once (SPEC.md "Processes and signals").
  if (signals > 1) process.exit(name === 'SIGINT' ? 130 : 143);
  resolveStopped();
  controller.abort(new Error(`received ${name}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  clock: systemClock,
  readEnvFile,
  version: VERSION,
  signal: controller.signal,
  stopped,
  process: {
    pid: process.pid,
    isAlive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
    onHangup(listener) {
      process.on('SIGHUP', listener);
      return () => process.off('SIGHUP', listener);
    },
  },
});
process.exitCode = code;
// Let stdout drain, then leave even if a stray handle (keep-alive socket) is still open.
process.stdout.write('', () => process.exit(code));
