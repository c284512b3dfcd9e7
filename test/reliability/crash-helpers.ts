/**
 * Fixtures for crash-points.test.ts: the daemon harness of test/daemon (a `Fixture` the harness's
 * `DaemonProcess` accepts) around an emulator started with chosen options (short-lived tokens, no callback
 * delivery) and a `HookedClock`, whose `sleep` calls tell the test the instant a latency fault starts
 * holding a request, so that a `kill -9` can land exactly while the daemon waits for that answer.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { EmulatorOptions, RequestRecord } from '../../src/emulator/index.js';
import { systemClock, type Clock } from '../../src/lib/clock.js';
import { DaemonProcess, startDaemon, startFixture, status, type DesiredEntry, type Fixture, type StatusDoc } from '../daemon/harness.js';

/** The system clock, plus a listener called (synchronously) with the duration of every `sleep`, and a count of sleeps of one duration still running. */
export class HookedClock implements Clock {
  readonly #listeners = new Set<(ms: number) => void>();
  readonly #running = new Map<number, number>();

  now(): number {
    return systemClock.now();
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    for (const listener of this.#listeners) listener(ms);
    this.#running.set(ms, (this.#running.get(ms) ?? 0) + 1);
    try {
      await systemClock.sleep(ms, signal);
    } finally {
      this.#running.set(ms, (this.#running.get(ms) ?? 1) - 1);
    }
  }

  /** Calls `listener(ms)` at the start of every sleep; returns the function that removes it. */
  onSleep(listener: (ms: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Sleeps of exactly `ms` that have not ended yet (latency faults still holding a request). */
  running(ms: number): number {
    return this.#running.get(ms) ?? 0;
  }
}

/** Resolves at the start of the next sleep of exactly `ms` on `clock` (a latency fault of `ms` took a request). */
export function nextSleep(clock: HookedClock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const off = clock.onSleep((slept) => {
      if (slept !== ms) return;
      off();
      resolve();
    });
  });
}

export interface CrashFixture {
  f: Fixture;
  clock: HookedClock;
  /** Starts a daemon and waits until it is ready; it is killed after the test if still running. */
  start(extraEnv?: Record<string, string>): Promise<DaemonProcess>;
  /** Starts a daemon without waiting (call `waitReady()`); it is killed after the test if still running. */
  spawn(extraEnv?: Record<string, string>): DaemonProcess;
}

/**
 * A daemon fixture whose emulator runs with `emulator` options (on a HookedClock) and never delivers
 * verification challenges unless asked: subscriptions are enabled at once ('accept'), so that a dead
 * daemon does not fail them. Everything is closed after the test, daemons first.
 */
export async function useCrashFixture(
  t: TestContext,
  options: { subscriptions: readonly DesiredEntry[]; emulator?: Omit<EmulatorOptions, 'clock' | 'host' | 'port'> },
): Promise<CrashFixture> {
  const clock = new HookedClock();
  const f = await startFixture({ subscriptions: options.subscriptions, emulator: { verification: 'accept', ...options.emulator, clock } });
  const daemons: DaemonProcess[] = [];
  t.after(async () => {
    for (const d of daemons) await d.kill9();
    await f.close();
  });
  return {
    f,
    clock,
    start: async (extraEnv = {}) => {
      const d = await startDaemon(f, extraEnv);
      daemons.push(d);
      return d;
    },
    spawn: (extraEnv = {}) => {
      const d = new DaemonProcess(f, extraEnv);
      daemons.push(d);
      return d;
    },
  };
}

/** `STATE_DIR/token.json` as found on disk: absent, not JSON (a torn write), or its parsed fields. */
export type TokenFileState =
  | { kind: 'absent' }
  | { kind: 'invalid'; bytes: number }
  | { kind: 'ok'; accessToken: string; clientId: string; expiresAt: number; obtainedAt: number };

export function readTokenFile(stateDir: string): TokenFileState {
  const path = join(stateDir, 'token.json');
  if (!existsSync(path)) return { kind: 'absent' };
  const raw = readFileSync(path, 'utf8');
  try {
    const json = JSON.parse(raw) as { access_token?: unknown; client_id?: unknown; expires_at?: unknown; obtained_at?: unknown };
    if (typeof json.access_token !== 'string' || typeof json.client_id !== 'string') return { kind: 'invalid', bytes: raw.length };
    return {
      kind: 'ok',
      accessToken: json.access_token,
      clientId: json.client_id,
      expiresAt: Date.parse(String(json.expires_at)),
      obtainedAt: Date.parse(String(json.obtained_at)),
    };
  } catch {
    return { kind: 'invalid', bytes: raw.length };
  }
}

/** Temporary files of an interrupted atomic token.json write left in the state directory. */
export function leftoverTokenTemps(stateDir: string): number {
  return existsSync(stateDir) ? readdirSync(stateDir).filter((n) => n.startsWith('.token.json.') && n.endsWith('.tmp')).length : 0;
}

/** Requests the emulator saw, tallied as `'<method> <path> <status> <auth>'`. */
export function requestTally(requests: readonly RequestRecord[]): Record<string, number> {
  const tally: Record<string, number> = {};
  for (const r of requests) {
    const key = `${r.method} ${r.path} ${r.status} ${r.auth}`;
    tally[key] = (tally[key] ?? 0) + 1;
  }
  return tally;
}

/** Requests that carried a token the emulator did not accept as valid ('invalid': expired, revoked, unknown) or a user token. */
export function badAuthRequests(requests: readonly RequestRecord[]): RequestRecord[] {
  return requests.filter((r) => r.auth === 'invalid' || r.auth === 'user');
}

/** The daemon's /status with the fields these tests read beyond the harness's StatusDoc. */
export type CrashStatus = StatusDoc & {
  token: StatusDoc['token'] & { fingerprint: string | null };
  sync: StatusDoc['sync'] & { applied?: { created: number; adopted: number; recreated: number; deleted: number; failed: number } | null };
};

/** GET /status, parsed (see CrashStatus). */
export async function crashStatus(f: Fixture): Promise<CrashStatus> {
  return (await status(f)) as CrashStatus;
}
