/**
 * HTTP forwarding of the journal, an outbox (README.md "Delivery to your application"): every record is
 * POSTed to `EVENTSUBD_FORWARD_URL`, in seq order, until the target answers 2xx; anything else (another
 * status, a redirect, a network error, a timeout) is retried with capped exponential backoff and jitter,
 * forever. The forwarder only reads the journal, so a target that is down never slows the receiver.
 *
 * Delivery is at least once: the persisted cursor (`STATE_DIR/cursors/forward.json`) only ever holds a seq
 * the target acknowledged, so a crash re-delivers, never skips. Consumers that dedup on
 * `Eventsubd-Message-Id` (or `Eventsubd-Seq`) see each record exactly once.
 *
 * Order: with `concurrency` 1 (the default) records ARRIVE one at a time in seq order. With N > 1 up to N
 * records are in flight together and may arrive out of order; the cursor still only advances over a
 * contiguous prefix of 2xx answers, so a restart resumes at the first unacknowledged record.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { backoffDelay, retry } from '../lib/retry.js';
import type { CursorStorage } from '../journal/types.js';
import type { EventJournal } from '../journal/types.js';
import type { JournalRecord } from '../journal/types.js';
import { CursorSaver } from './cursor-saver.js';
import { safeUrl } from '../lib/url.js';
import { postOnce, forwardRequest, type AttemptFailure, type ForwardTarget } from './forward-request.js';

export { verifyForwardSignature } from './signature.js';

export interface ForwarderOptions {
  journal: Pick<EventJournal, 'head' | 'follow'>;
  /** The consumer cursor, conventionally `new CursorStore({ stateDir, name: 'forward' })`. */
  cursor: CursorStorage;
  /** An http: or https: URL. Redirects are not followed (a 3xx is a failure). */
  url: string;
  /** HMAC key for `Eventsubd-Signature`; without it requests are unsigned. */
  secret?: string | undefined;
  clock: Clock;
  logger?: Logger | undefined;
  dispatcher?: Dispatcher | undefined;
  /** Per request, measured on `clock`; a timeout is a failed attempt. Default 10 000 ms. */
  timeoutMs?: number | undefined;
  /** Delay before retry n: equal jitter in [cap/2, cap], cap = min(maxMs, baseMs * 2^(n-1)). Default 500 / 10 000 ms. */
  backoff?: { baseMs: number; maxMs: number } | undefined;
  /** Records in flight at once. Default 1 (the only setting that keeps the order of arrival). */
  concurrency?: number | undefined;
  /** [0, 1) for the jitter; injected in tests. */
  random?: (() => number) | undefined;
}

/** The latest failed attempt: an HTTP `status`, or a `code` (`TIMEOUT`, `ECONNREFUSED`, ...), at an ISO time. */
export interface ForwardFailure extends AttemptFailure {
  at: string;
}

export interface ForwarderStats {
  /** Highest seq such that it and every seq before it were acknowledged with a 2xx. */
  cursor: number;
  /** The cursor last written to disk (a restart resumes after it). */
  saved: number;
  head: number;
  /** `head - cursor`: records not yet acknowledged. */
  lag: number;
  inFlight: number;
  /** Requests sent (first tries and retries). */
  attempts: number;
  /** Attempts that did not end in a 2xx. */
  failures: number;
  /** Records acknowledged with a 2xx. */
  delivered: number;
  lastError?: ForwardFailure;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_BACKOFF = Object.freeze({ baseMs: 500, maxMs: 10_000 });

/** The forwarding consumer. `start(signal)` runs it in the background; `close()` stops it and saves the cursor. */
export class Forwarder {
  readonly #o: ForwarderOptions;
  readonly #logger: Logger;
  readonly #target: ForwardTarget;
  readonly #backoff: { baseMs: number; maxMs: number; random?: () => number };
  readonly #concurrency: number;
  readonly #controller = new AbortController();
  #acked = 0;
  #saver: CursorSaver | undefined;
  /** Launched and not yet part of the acknowledged prefix, in seq order; at most `concurrency` long. */
  readonly #window: number[] = [];
  readonly #done = new Set<number>();
  readonly #tasks = new Set<Promise<void>>();
  #wakeWindow: (() => void) | undefined;
  readonly #counts = { attempts: 0, failures: 0, delivered: 0 };
  #lastError: ForwardFailure | undefined;
  #starting: Promise<void> | undefined;
  #running: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /** @throws ConfigError when `url` is not http(s), or `concurrency`/`timeoutMs` is not a positive integer. */
  constructor(options: ForwarderOptions) {
    if (!/^https?:$/.test(protocolOf(options.url))) {
      throw new ConfigError(`Cannot forward as the URL must be http: or https:: current value is '${safeUrl(options.url)}'`, { setting: 'EVENTSUBD_FORWARD_URL' });
    }
    this.#concurrency = positive('concurrency', options.concurrency ?? 1);
    this.#o = options;
    this.#target = { url: options.url, secret: options.secret, dispatcher: options.dispatcher, clock: options.clock, timeoutMs: positive('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS) };
    this.#logger = (options.logger ?? silentLogger).child({ component: 'forwarder', url: safeUrl(options.url) });
    this.#backoff = { ...(options.backoff ?? DEFAULT_BACKOFF), ...(options.random ? { random: options.random } : {}) };
  }

  /**
   * Loads the cursor and starts forwarding in the background. Idempotent. Aborting `signal` stops it like `close()`.
   * @throws StateDirError when the cursor file cannot be read.
   */
  start(signal?: AbortSignal): Promise<void> {
    this.#starting ??= this.#start(signal);
    return this.#starting;
  }

  /** Stops forwarding (in-flight requests are aborted, to be sent again after a restart) and saves the cursor. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#controller.abort();
      await this.#starting?.catch(() => undefined);
      await this.#running;
    })();
    return this.#closing;
  }

  /** Counters for /status and /metrics. */
  stats(): ForwarderStats {
    const head = this.#o.journal.head;
    return {
      cursor: this.#acked,
      saved: this.#saver?.saved ?? this.#acked,
      head,
      lag: Math.max(0, head - this.#acked),
      inFlight: this.#window.length - this.#done.size,
      ...this.#counts,
      ...(this.#lastError ? { lastError: { ...this.#lastError } } : {}),
    };
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) this.#controller.abort();
    signal?.addEventListener('abort', () => this.#controller.abort(), { once: true });
    let seq = await this.#o.cursor.load();
    const head = this.#o.journal.head;
    if (seq > head) {
      // The journal was replaced (its head is behind what the target acknowledged): all of it is new to the target.
      this.#logger.warn('The forward cursor is beyond the journal head; forwarding the journal from its start', { cursor: seq, head });
      seq = 0;
    }
    this.#acked = seq;
    this.#saver = new CursorSaver({ cursor: this.#o.cursor, logger: this.#logger, saved: seq });
    this.#running = this.#run(this.#controller.signal, this.#saver);
  }

  async #run(signal: AbortSignal, saver: CursorSaver): Promise<void> {
    let launched = this.#acked;
    for (let failures = 1; !signal.aborted; failures++) {
      try {
        for await (const record of this.#o.journal.follow(launched, signal)) {
          if (record.seq > launched + 1) {
            this.#logger.warn('Journal records were removed by retention before they were forwarded', { from: launched + 1, to: record.seq - 1 });
          }
          await this.#windowOpen(signal);
          if (signal.aborted) break;
          launched = record.seq;
          this.#launch(record, signal, saver);
          failures = 0;
        }
        if (!signal.aborted) this.#logger.info('The journal closed; forwarding stops');
        break;
      } catch (err) {
        if (signal.aborted) break;
        this.#logger.error('Cannot read the journal to forward it; retrying', { err, attempt: failures });
        await this.#sleep(backoffDelay(failures, this.#backoff), signal);
      }
    }
    await Promise.allSettled([...this.#tasks]);
    await saver.flush();
  }

  /** Resolves once fewer than `concurrency` records are launched and unacknowledged, or on abort. */
  async #windowOpen(signal: AbortSignal): Promise<void> {
    while (this.#window.length >= this.#concurrency && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          signal.removeEventListener('abort', wake);
          this.#wakeWindow = undefined;
          resolve();
        };
        this.#wakeWindow = wake;
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  #launch(record: JournalRecord, signal: AbortSignal, saver: CursorSaver): void {
    this.#window.push(record.seq);
    const task = this.#deliver(record, signal)
      .then((ok) => {
        if (ok) this.#acknowledge(record.seq, saver);
      })
      .finally(() => {
        this.#tasks.delete(task);
        this.#wakeWindow?.();
      });
    this.#tasks.add(task);
  }

  /** Marks `seq` done and moves the cursor over the contiguous acknowledged prefix of the window. */
  #acknowledge(seq: number, saver: CursorSaver): void {
    this.#done.add(seq);
    const before = this.#acked;
    while (this.#window.length > 0 && this.#done.has(this.#window[0] as number)) {
      const first = this.#window.shift() as number;
      this.#done.delete(first);
      this.#acked = first;
    }
    if (this.#acked !== before) void saver.save(this.#acked);
  }

  /** POSTs one record until a 2xx (true) or until `signal` aborts (false). */
  async #deliver(record: JournalRecord, signal: AbortSignal): Promise<boolean> {
    const req = forwardRequest(record, this.#o.secret);
    try {
      await retry(
        async (attempt) => {
          this.#counts.attempts++;
          const failure = await postOnce(this.#target, req, signal);
          if (failure) throw new PostFailed(failure);
          this.#counts.delivered++;
          if (attempt > 1) this.#logger.info('Forwarded a journal record after retries', { seq: record.seq, attempts: attempt });
        },
        {
          clock: this.#o.clock,
          signal,
          backoff: this.#backoff,
          onRetry: (err, attempt) => {
            const failure = (err as PostFailed).failure;
            this.#counts.failures++;
            this.#lastError = { ...failure, at: new Date(this.#o.clock.now()).toISOString() };
            // One warning per record that starts failing; the retries of a long outage go to debug.
            this.#logger[attempt === 1 ? 'warn' : 'debug']('Cannot forward a journal record; retrying with backoff', { seq: record.seq, attempt, ...failure });
          },
        },
      );
      return true;
    } catch {
      return false; // aborted: sent again after a restart
    }
  }

  async #sleep(ms: number, signal: AbortSignal): Promise<void> {
    await this.#o.clock.sleep(ms, signal).catch(() => undefined);
  }
}

/** A failed POST, thrown for `retry` to see. */
class PostFailed extends Error {
  constructor(readonly failure: AttemptFailure) {
    super('The forward POST failed');
  }
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(`Cannot forward as '${name}' must be a positive integer: current value is ${value}`);
  }
  return value;
}

function protocolOf(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}
