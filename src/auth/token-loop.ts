/**
 * The token manager's background loop: hourly `/validate` of the current token
 * (https://dev.twitch.tv/docs/authentication/validate-tokens/, "Who must validate tokens?") and proactive
 * rotation at `expiresAt - margin`, whichever comes first.
 * Deadlines are absolute and sleeps are clamped to MAX_TIMER_MS, so a 58-day token's rotation neither
 * fires after ~1 ms (setTimeout overflow) nor after 24.8 days.
 */
import { MAX_TIMER_MS, type Clock } from '../lib/clock.js';
import { AbortedError, toAppError, type AppError } from '../lib/errors.js';
import { backoffDelay } from '../lib/retry.js';
import type { AppToken } from '../twitch/tokens.js';
import { rotationDeadline } from './token-policy.js';

export type LoopAction = 'acquire' | 'rotate' | 'validate';

/** What the loop needs from the manager. */
export interface LoopHost {
  current(): AppToken | undefined;
  /** Registers a callback run whenever the current token changes; returns the unsubscribe function. */
  onSwap(listener: () => void): () => void;
  acquire(signal: AbortSignal): Promise<void>;
  rotate(token: AppToken, signal: AbortSignal): Promise<void>;
  validate(token: AppToken, signal: AbortSignal): Promise<void>;
  /** Records a failed action; returns 'stop' when the loop must end (a supplied token was refused). */
  failed(err: AppError, action: LoopAction, retryInMs: number): 'stop' | 'retry';
}

export interface LoopOptions {
  clock: Clock;
  validateIntervalMs: number;
  random: () => number;
  /** Failures so far (1 when the first acquisition in `start()` failed): the first retry backs off. */
  initialFailures: number;
}

/** Longest pause between retries of a failed mint or validation. */
export const LOOP_MAX_BACKOFF_MS = 300_000;

/** Runs until `signal` aborts or the host says stop. Never rejects. */
export async function runTokenLoop(host: LoopHost, options: LoopOptions, signal: AbortSignal): Promise<void> {
  const { clock } = options;
  let failures = options.initialFailures;
  let retryAt = failures > 0 ? clock.now() + backoff(failures, options) : -Infinity;
  while (!signal.aborted) {
    const token = host.current();
    const { action, at } = nextStep(token, options, clock.now());
    const woken = await sleepUntil(clock, Math.max(at, retryAt), host, signal);
    if (signal.aborted) return;
    if (woken || host.current() !== token) continue; // the token changed while we slept: plan again
    try {
      if (action === 'acquire' || !token) await host.acquire(signal);
      else await host[action](token, signal);
      failures = 0;
      retryAt = -Infinity;
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      const delay = backoff(failures, options);
      retryAt = clock.now() + delay;
      if (host.failed(toAppError(err), action, delay) === 'stop') return;
    }
  }
}

/** The next thing to do for `token` and when (epoch ms). A supplied token is validated, never rotated. */
export function nextStep(
  token: AppToken | undefined,
  options: Pick<LoopOptions, 'validateIntervalMs'>,
  now: number,
): { action: LoopAction; at: number } {
  if (!token) return { action: 'acquire', at: now };
  const rotateAt = token.origin === 'supplied' ? Infinity : rotationDeadline(token);
  const validateAt = (token.validatedAt ?? now) + options.validateIntervalMs;
  return rotateAt <= validateAt ? { action: 'rotate', at: rotateAt } : { action: 'validate', at: validateAt };
}

function backoff(failures: number, options: LoopOptions): number {
  return backoffDelay(failures, { baseMs: 1_000, maxMs: LOOP_MAX_BACKOFF_MS, random: options.random });
}

/**
 * Sleeps until the absolute `deadline` in steps of at most MAX_TIMER_MS. Resolves true early when the
 * host swaps its token; rejects never (an abort of `signal` just returns).
 */
async function sleepUntil(clock: Clock, deadline: number, host: LoopHost, signal: AbortSignal): Promise<boolean> {
  const wake = new AbortController();
  const unsubscribe = host.onSwap(() => wake.abort());
  const both = AbortSignal.any([signal, wake.signal]);
  try {
    for (;;) {
      const left = deadline - clock.now();
      if (left <= 0 || both.aborted) return wake.signal.aborted;
      await clock.sleep(Math.min(left, MAX_TIMER_MS), both);
    }
  } catch (err) {
    if (err instanceof AbortedError) return wake.signal.aborted;
    throw err;
  } finally {
    unsubscribe();
  }
}
