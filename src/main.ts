#!/usr/bin/env node
/**
 * The only module that touches `process`: argv, env, signals, stdio and the exit code. Everything else
 * receives them through `runCli`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runCli } from './cli/run.js';
import { systemClock } from './lib/clock.js';

// undici parses HTTP with llhttp compiled to WebAssembly. After its first response V8 recompiles llhttp with
// TurboFan on a worker thread, and glibc keeps that compiler's ~10 MiB in about half of the starts (idle RSS
// ~72 or ~82 MiB). The baseline (Liftoff) code parses Helix and OAuth responses within 5% as fast (8,000
// requests measured). V8 reads this budget when a module is instantiated, so setting it here applies.
setFlagsFromString('--wasm-tiering-budget=2000000000');

const VERSION = readVersion();
/** How long the process may take to end by itself once the command has returned. */
const LINGER_MS = 5_000;

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function readEnvFile(path: string): Record<string, string> | undefined {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // dotenv is loaded only when there is a file to parse (a daemon under systemd usually has none).
  const dotenv = createRequire(import.meta.url)('dotenv') as typeof import('dotenv');
  return dotenv.parse(text);
}

const controller = new AbortController();
let resolveStopped!: () => void;
const stopped = new Promise<void>((r) => (resolveStopped = r));
let signals = 0;
const onSignal = (name: NodeJS.Signals): void => {
  signals += 1;
  // A second signal exits at once (README.md "The daemon (`eventsubd run`)").
  if (signals > 1) process.exit(name === 'SIGINT' ? 130 : 143);
  resolveStopped();
  controller.abort(new Error(`received ${name}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// An error nothing caught is a bug: logged once (by the runner), then the command stops as on SIGTERM (the
// daemon flushes its journal), exit 1. A second one while stopping changes nothing.
let crashed = false;
let resolveCrashed!: (err: unknown) => void;
const crash = new Promise<unknown>((r) => (resolveCrashed = r));
const onCrash = (err: unknown): void => {
  if (crashed) return;
  crashed = true;
  resolveCrashed(err);
  resolveStopped();
  controller.abort(err);
};
process.on('uncaughtException', onCrash);
process.on('unhandledRejection', onCrash);

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
  crashed: crash,
  process: {
    pid: process.pid,
    uid: process.getuid?.(),
    signal(pid, sig) {
      try {
        process.kill(pid, sig);
        return true;
      } catch {
        return false;
      }
    },
    onHangup(listener) {
      process.on('SIGHUP', listener);
      return () => process.off('SIGHUP', listener);
    },
  },
});
process.exitCode = crashed ? 1 : code;
// The process ends by itself: every command closes what it opened. Should a handle be left open by a bug,
// say which and leave anyway, rather than hang (the timer does not keep the process alive).
setTimeout(() => {
  process.stderr.write(`eventsubd: INTERNAL_ERROR: still open after the command returned: ${process.getActiveResourcesInfo().join(', ')}\n`);
  process.exit(process.exitCode);
}, LINGER_MS).unref();
