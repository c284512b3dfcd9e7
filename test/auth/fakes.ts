/**
 * Test doubles for the token lifecycle: an OAuthApi that mints real `AppToken`s and answers `/validate`
 * from a table, an in-memory TokenStore (so loop tests settle in microtasks), and a log capture.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { CachedToken, TokenStore } from '../../src/auth/token-cache.js';
import type { Clock } from '../../src/lib/clock.js';
import { createJsonLogger, type Logger } from '../../src/lib/logger.js';
import { AppToken } from '../../src/twitch/tokens.js';
import type { OAuthApi } from '../../src/twitch/types.js';
import { ValidateResponse } from '../../src/twitch/wire.js';

export const CLIENT_ID = 'ourclientid0000000000000000000';
export const OTHER_CLIENT_ID = 'otherclient1111111111111111111';
/** Twitch's documented example lifetime: about 58 days. */
export const EXPIRES_IN = 5_011_271;

type Entry = { clientId: string; userId?: string; expiresAt: number } | 'dead';

export class FakeOAuth implements OAuthApi {
  readonly table = new Map<string, Entry>();
  /** Values revoked, in order. */
  readonly revoked: string[] = [];
  /** Clock times of every validate call. */
  readonly validatedAt: number[] = [];
  /** Errors thrown by the next mint calls, in order, before minting succeeds. */
  readonly mintFailures: Error[] = [];
  /** Thrown by every revoke while set. */
  revokeFailure: Error | undefined;
  /** While set, mint waits for it. */
  mintGate: Promise<void> | undefined;
  mintCalls = 0;
  minted: string[] = [];
  expiresIn = EXPIRES_IN;
  #n = 0;

  constructor(
    readonly clock: Clock,
    readonly clientId = CLIENT_ID,
  ) {}

  async mint(): Promise<AppToken> {
    this.mintCalls++;
    await this.mintGate;
    const failure = this.mintFailures.shift();
    if (failure) throw failure;
    const value = `minted-app-token-${++this.#n}-abcdefghij`;
    const now = this.clock.now();
    this.table.set(value, { clientId: this.clientId, expiresAt: now + this.expiresIn * 1000 });
    this.minted.push(value);
    return AppToken.fromClientCredentials({ access_token: value, expires_in: this.expiresIn }, this.clientId, now);
  }

  async validate(value: string): Promise<ValidateResponse | null> {
    const now = this.clock.now();
    this.validatedAt.push(now);
    const e = this.table.get(value);
    if (!e || e === 'dead' || now >= e.expiresAt) return null;
    return ValidateResponse.parse({
      client_id: e.clientId,
      ...(e.userId ? { user_id: e.userId, login: 'someone' } : {}),
      scopes: e.userId ? ['channel:read:subscriptions'] : null,
      expires_in: Math.floor((e.expiresAt - now) / 1000),
    });
  }

  async revoke(value: string): Promise<void> {
    if (this.revokeFailure) throw this.revokeFailure;
    this.revoked.push(value);
    this.table.set(value, 'dead');
  }

  /** Registers a token Twitch would validate; returns its value. */
  add(value: string, init: { clientId?: string; userId?: string; expiresIn?: number } = {}): string {
    const entry: Entry = {
      clientId: init.clientId ?? this.clientId,
      expiresAt: this.clock.now() + (init.expiresIn ?? this.expiresIn) * 1000,
      ...(init.userId ? { userId: init.userId } : {}),
    };
    this.table.set(value, entry);
    return value;
  }

  kill(value: string): void {
    this.table.set(value, 'dead');
  }

  /** A token object for a value, as if minted now (tests only: bypasses validation on purpose). */
  tokenFor(value: string, clientId = this.clientId, expiresIn = this.expiresIn): AppToken {
    return AppToken.fromClientCredentials({ access_token: value, expires_in: expiresIn }, clientId, this.clock.now());
  }
}

/** An in-memory TokenStore with a promise-chain lock: everything settles in microtasks. */
export class MemoryStore implements TokenStore {
  value: CachedToken | undefined;
  writes = 0;
  #tail: Promise<unknown> = Promise.resolve();

  async read(): Promise<CachedToken | undefined> {
    return this.value ? { ...this.value } : undefined;
  }

  async write(token: AppToken): Promise<void> {
    this.writes++;
    this.value = {
      accessToken: token.reveal(),
      clientId: token.clientId,
      obtainedAt: token.obtainedAt,
      expiresAt: token.expiresAt,
      validatedAt: token.validatedAt,
    };
  }

  async remove(): Promise<void> {
    this.value = undefined;
  }

  withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

export interface LogCapture {
  logger: Logger;
  lines: string[];
  records(): Array<Record<string, unknown>>;
  /** Calls `listener` after each line logged from now on; returns the function that stops it. */
  onLine(listener: (line: string) => void): () => void;
}

export function captureLogs(): LogCapture {
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const sink = {
    write: (l: string) => {
      lines.push(l);
      for (const listener of [...listeners]) listener(l);
    },
  };
  const logger = createJsonLogger({ sink, level: 'debug', now: () => 0 });
  return {
    logger,
    lines,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    onLine: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'eventsubd-auth-'));
  // Retried: a watcher or writer of the test may still be finishing in it (ENOTEMPTY while rm walks the tree).
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 }));
  return dir;
}
