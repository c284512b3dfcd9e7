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
    uid: process.getuid?.(),
    onHangup(listener) {
      process.on('SIGHUP', listener);
      return () => process.off('SIGHUP', listener);
    },
  },
});
process.exitCode = code;
// Let stdout drain, then leave even if a stray handle (keep-alive socket) is still open.
process.stdout.write('', () => process.exit(code));
