import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'dist', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI (`dist/main.js`, built by `npm test` before the tests) with exactly `env`
 * (plus PATH), in `cwd`. Nothing of the test runner's environment leaks in.
 */
export function runCli(
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; stdin?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { PATH: process.env.PATH ?? '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'eventsubd-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** The settings that point eventsubd at an emulator, as its first registered client. */
export function emulatorSettings(emulator: { clients: readonly { clientId: string; clientSecret: string }[]; authUrl: string; apiUrl: string }): Record<string, string> {
  const client = emulator.clients[0]!;
  return {
    TWITCH_CLIENT_ID: client.clientId,
    TWITCH_CLIENT_SECRET: client.clientSecret,
    TWITCH_AUTH_URL: emulator.authUrl,
    TWITCH_API_URL: emulator.apiUrl,
  };
}
