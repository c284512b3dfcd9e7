/**
 * The app-token lifecycle for a daemon (README.md "Tokens"):
 * single-flight acquisition shared by every caller, a cache shared across processes, a 401 re-mint only
 * when the rejected token is still the current one, hourly validation, proactive rotation with revocation
 * of the old token, and a supplied token that is refused loudly, never silently replaced.
 * With several replicas (README.md "Running several replicas") only the leader mints, rotates and revokes; a
 * follower (`mayMint()` false) uses the token of the shared store; after a 401 it tells the leader (which checks
 * the token with /validate and re-mints only if Twitch refuses it there too) and waits for the replacement.
 */
import { MAX_TIMER_MS, type Clock } from '../lib/clock.js';
import { AbortedError, AppError, TokenRefusedError, throwIfAborted, toAppError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { AppToken } from '../twitch/tokens.js';
import type { OAuthApi, TokenSource } from '../twitch/types.js';
import { isoOrNever, TokenAcquirer, type TokenStats } from './token-acquirer.js';
import type { TokenStore } from './token-cache.js';
import { inspectToken } from './token-inspect.js';
import { runTokenLoop, type LoopHost } from './token-loop.js';
import { briefError, fingerprintOf, isExpiring, isRefusal, statusOf, type TokenStatus } from './token-policy.js';
import { refOf, revokeAll, revokeQuietly, type RevokeDeps, type TokenRef } from './token-revoke.js';
import { SingleFlight } from './single-flight.js';

export type { TokenStats } from './token-acquirer.js';
export type { TokenStatus } from './token-policy.js';

export interface TokenManagerOptions {
  clientId: string;
  oauth: OAuthApi;
  /** The shared cache; `TokenCache` in production. */
  cache: TokenStore;
  clock: Clock;
  logger?: Logger | undefined;
  /** TWITCH_ACCESS_TOKEN: validated, used as is, never replaced nor cached. */
  suppliedToken?: string | undefined;
  /** False without a client secret: only a cached token can be used. */
  canMint: boolean;
  random?: (() => number) | undefined;
  /** Interval between validations of the current token, ms. Default one hour. */
  validateIntervalMs?: number | undefined;
  /** Attempts per acquisition on Twitch/network failures. Default 3. */
  mintAttempts?: number | undefined;
  /** Called once, after `start()` resolved, when a supplied token is refused: the daemon must stop (exit 77). */
  onFatal?: ((err: AppError) => void) | undefined;
  /**
   * Whether this process may mint, rotate and revoke now; asked before each of them. False on a follower replica:
   * it never writes the shared store, takes the token the store holds (at start and whenever the store's watch
   * reports a change), and after a 401 waits for the leader to write a new one. Call `roleChanged()` when the
   * answer changes. Default: always true (one process, or a CLI).
   */
  mayMint?: (() => boolean) | undefined;
  /** How long a follower's call waits for the leader's token (none in the store, or after a 401) before it fails, ms. Default 30 s. */
  leaderWaitMs?: number | undefined;
}

/** A follower found no usable token in the shared store: the leader has not written one (yet). */
class LeaderTokenPending extends AppError {
  constructor() {
    super('TOKEN_UNAVAILABLE', "No app token yet: waiting for the leader's token in the shared store (a follower replica never mints)");
  }
}

/** The store as a follower sees it: read only (a refused token is left for the leader to replace, never removed). */
function readOnly(store: TokenStore): TokenStore {
  return {
    read: () => store.read(),
    write: () => Promise.resolve(),
    remove: () => Promise.resolve(),
    withLock: (fn) => fn(),
  };
}

export class TokenManager implements TokenSource {
  readonly #o: TokenManagerOptions & { logger: Logger; validateIntervalMs: number; random: () => number; leaderWaitMs: number };
  readonly #stats: TokenStats = { mints: 0, validations: 0, revocations: 0, rotations: 0 };
  readonly #acq: TokenAcquirer;
  /** A follower's acquirer: adopts from the store, never mints nor writes. */
  readonly #follower: TokenAcquirer;
  readonly #revokeDeps: RevokeDeps;
  readonly #flight = new SingleFlight<AppToken>();
  readonly #lifetime = new AbortController();
  readonly #swapListeners = new Set<() => void>();
  #current: AppToken | undefined;
  #refusal: AppError | undefined;
  #lastError: AppError | undefined;
  #started: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #running = false;
  #checkingCache = false;
  #cacheAgain = false;
  /** The fingerprint a follower reported rejected, while the leader checks it. */
  #checkingReport: string | undefined;
  /** Counts store changes, swaps and role changes, so that a follower's wait never misses one that came just before it. */
  #changes = 0;
  readonly #wakers = new Set<() => void>();

  constructor(options: TokenManagerOptions) {
    this.#o = {
      ...options,
      logger: options.logger ?? silentLogger,
      validateIntervalMs: options.validateIntervalMs ?? 3_600_000,
      random: options.random ?? Math.random,
      leaderWaitMs: options.leaderWaitMs ?? 30_000,
    };
    const deps = {
      clientId: options.clientId,
      oauth: options.oauth,
      cache: options.cache,
      clock: options.clock,
      logger: this.#o.logger,
      canMint: options.canMint,
      random: this.#o.random,
      mintAttempts: options.mintAttempts ?? 3,
      stats: this.#stats,
    };
    this.#acq = new TokenAcquirer(deps);
    this.#follower = new TokenAcquirer({ ...deps, cache: readOnly(options.cache), canMint: false });
    this.#revokeDeps = { ...options, logger: this.#o.logger, stats: this.#stats, markBad: (fp) => this.#markBad(fp) };
  }

  /** Counters since construction. */
  get stats(): Readonly<TokenStats> {
    return { ...this.#stats };
  }

  /**
   * The current token unless it is within its rotation margin; otherwise one shared acquisition.
   * While the background loop runs, rotation is its job: an unexpired token is returned as is.
   * @throws TokenRefusedError for a refused supplied token; AppError TOKEN_UNAVAILABLE; AbortedError.
   */
  getToken(signal?: AbortSignal): Promise<AppToken> {
    return this.#getToken(signal, this.#o.leaderWaitMs);
  }

  /** `getToken()`; a follower without a token waits up to `leaderWaitMs` for the leader's. */
  async #getToken(signal: AbortSignal | undefined, leaderWaitMs: number): Promise<AppToken> {
    throwIfAborted(signal);
    if (this.#refusal) throw this.#refusal;
    const current = this.#current;
    const now = this.#o.clock.now();
    if (current && (current.origin === 'supplied' ? now < current.expiresAt : !isExpiring(current, now))) return current;
    if (current && (this.#running || !this.#leading()) && now < current.expiresAt) return current; // rotation is the loop's, or the leader's, job
    try {
      return await this.#obtain(signal, leaderWaitMs);
    } catch (err) {
      const still = this.#current;
      if (signal?.aborted || this.#refusal || !still || this.#o.clock.now() >= still.expiresAt) throw err;
      // A token within its margin still works: better than failing every Helix call while Twitch's token endpoint is down.
      this.#o.logger.warn('Could not replace the expiring app token; still using it', { error: toAppError(err) });
      return still;
    }
  }

  /**
   * Helix answered 401 to `rejected`. One shared re-mint if it is still the current token, else the
   * current token at once. A supplied token is refused (TOKEN_INVALID), never replaced. A follower does not
   * mint: it reports the 401 to the leader, then takes the store's token once /validate accepts it (the leader's
   * replacement, or the same token if Twitch still accepts it), waiting up to `leaderWaitMs` for one.
   */
  async tokenRejected(rejected: AppToken, signal?: AbortSignal): Promise<AppToken> {
    throwIfAborted(signal);
    if (this.#o.suppliedToken !== undefined) {
      const err = new TokenRefusedError(
        'TOKEN_INVALID',
        'Twitch rejected the token in TWITCH_ACCESS_TOKEN (401); it is never replaced: supply a new one, or unset it to let eventsubd mint app tokens',
      );
      this.#refuse(err);
      throw err;
    }
    const current = this.#current;
    if (!this.#leading()) {
      if (current && !current.sameValueAs(rejected)) return current;
      if (current) {
        this.#o.logger.warn('Twitch rejected the current app token; telling the leader and waiting for its replacement', { fingerprint: current.fingerprint });
        this.#current = undefined; // later callers wait for the leader's token too, instead of using the dead one
        this.#o.cache.reportRejected?.(current.fingerprint).catch((err: unknown) => {
          this.#o.logger.warn('Could not tell the leader that Twitch rejected the token; waiting for it anyway', { error: toAppError(err) });
        });
      }
      // Not marked bad: the store's token is adopted again only after its own /validate, so a 401 that Twitch
      // did not mean (the leader finds the token valid too, and keeps it) does not leave this replica without one.
      return this.#fromLeader(signal, this.#o.leaderWaitMs);
    }
    this.#markBad(rejected.fingerprint);
    if (current && !current.sameValueAs(rejected)) return current;
    if (current) {
      this.#o.logger.warn('Twitch rejected the current app token; minting a new one', { fingerprint: current.fingerprint });
      this.#current = undefined; // later callers join the re-mint instead of using the dead token
    }
    for (let i = 0; i < 2; i++) {
      const next = await this.#share(signal, (s) => this.#acquire(s));
      if (!next.sameValueAs(rejected)) return next;
    }
    throw new AppError('TOKEN_UNAVAILABLE', 'No app token: Twitch rejected the current one and no replacement could be had');
  }

  /**
   * Acquires a token, then runs the background loop (hourly validation, rotation) until `signal` aborts or
   * `close()`. Resolves after the first attempt; a failure is reported in `status()` and retried in the loop.
   * Idempotent. @throws TokenRefusedError when a supplied token is refused.
   */
  start(signal?: AbortSignal): Promise<void> {
    this.#started ??= this.#start(signal);
    return this.#started;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    const loopSignal = signal ? AbortSignal.any([this.#lifetime.signal, signal]) : this.#lifetime.signal;
    let failures = 0;
    try {
      await this.#getToken(loopSignal, 0); // a follower does not hold the start back waiting for the leader
    } catch (err) {
      const e = toAppError(err);
      if (e.code === 'ABORTED' || (isRefusal(e) && this.#o.suppliedToken !== undefined)) throw e;
      if (e instanceof LeaderTokenPending) {
        this.#o.logger.info("No app token in the shared store yet; waiting for the leader's", { error: e });
      } else {
        this.#o.logger.warn('No app token yet; retrying in the background', { error: e });
        failures = 1;
      }
    }
    this.#running = true;
    this.#o.cache.watch?.(() => {
      this.#changed();
      void this.#cacheChanged(loopSignal);
    }, loopSignal);
    this.#o.cache.watchRejected?.((fingerprint) => void this.#rejectedElsewhere(fingerprint, loopSignal), loopSignal);
    const loop = runTokenLoop(
      this.#loopHost(),
      { clock: this.#o.clock, validateIntervalMs: this.#o.validateIntervalMs, random: this.#o.random, initialFailures: failures },
      loopSignal,
    );
    this.#loop = loop.finally(() => {
      this.#running = false;
    });
  }

  /**
   * Mints a new token (under the lock), writes it, makes it current and revokes the previous one.
   * @returns fingerprints of the previous (if any) and the new token.
   */
  async rotate(signal?: AbortSignal): Promise<{ previous?: string; current: string }> {
    if (this.#o.suppliedToken !== undefined) {
      throw new AppError(
        'TOKEN_UNAVAILABLE',
        'Cannot rotate the token supplied in TWITCH_ACCESS_TOKEN: it is never replaced; unset it to let eventsubd mint app tokens',
      );
    }
    if (!this.#leading()) throw new AppError('TOKEN_UNAVAILABLE', 'Cannot rotate the token on a follower replica: the leader mints and rotates the shared token');
    const previous = this.#current ? refOf(this.#current) : await this.#cachedOfOurs();
    await this.#flight.current?.catch(() => undefined);
    const next = await this.#share(signal, (s) => this.#acq.acquire(s, { forceMint: true }));
    await this.#afterRotation(previous, next, signal);
    return previous ? { previous: previous.fingerprint, current: next.fingerprint } : { current: next.fingerprint };
  }

  /**
   * Revokes the current (or cached) token, removes the cache and forgets it. A supplied token is left alone.
   * @returns the fingerprint of the token revoked, or undefined when there was none.
   * @throws the revoke call's error (the cache is then kept).
   */
  async revoke(signal?: AbortSignal): Promise<string | undefined> {
    if (!this.#leading()) throw new AppError('TOKEN_UNAVAILABLE', 'Cannot revoke the token on a follower replica: the leader owns the shared token');
    if (this.#o.suppliedToken !== undefined) {
      this.#o.logger.warn('Not revoking the token supplied in TWITCH_ACCESS_TOKEN: eventsubd revokes only the tokens it minted');
    }
    const current = this.#current;
    const revoked = await revokeAll(this.#revokeDeps, current, signal);
    if (current && current.origin !== 'supplied' && this.#current === current) this.#swap(undefined);
    return revoked;
  }

  /** For `eventsubd token status`: validates the cached (or supplied) token without minting or caching. */
  inspect(signal?: AbortSignal): Promise<TokenStatus> {
    return inspectToken({ ...this.#o, acquirer: this.#acq }, signal);
  }

  /** The in-memory state: `refused` (supplied token), `missing`, `expiring` (within the margin) or `ok`. */
  status(): TokenStatus {
    if (this.#refusal) {
      const supplied = this.#o.suppliedToken;
      return {
        state: 'refused',
        origin: 'supplied',
        ...(supplied ? { fingerprint: fingerprintOf(supplied) } : {}),
        lastError: briefError(this.#refusal),
      };
    }
    const current = this.#current;
    if (!current) {
      // Twitch refused the client credentials (TWITCH_AUTH_FAILED): no retry fixes that, a person must; an
      // unreachable or failing Twitch is `missing`, which the loop's retries may end.
      const last = this.#lastError;
      if (!last) return this.#leading() ? { state: 'missing' } : { state: 'missing', lastError: briefError(new LeaderTokenPending()) };
      return { state: last.code === 'TWITCH_AUTH_FAILED' ? 'refused' : 'missing', lastError: briefError(last) };
    }
    return statusOf(current, this.#o.clock.now(), this.#lastError);
  }

  /** Calls `listener` whenever the current token changes (minted, adopted, rotated, dropped); returns the unsubscribe function. */
  onSwap(listener: () => void): () => void {
    this.#swapListeners.add(listener);
    return () => this.#swapListeners.delete(listener);
  }

  /**
   * Tells the manager that `mayMint()` may answer differently now (this replica became leader, or stopped leading):
   * a follower's wait for the leader's token ends at once, and a new leader mints without waiting for it.
   */
  roleChanged(): void {
    this.#changed();
  }

  /** Stops the loop and aborts any acquisition in flight. Idempotent. */
  async close(): Promise<void> {
    this.#lifetime.abort(new AbortedError());
    await this.#loop;
  }

  /** One acquisition in flight, shared by every caller; each caller may abort its own wait. */
  #share(signal: AbortSignal | undefined, op: (signal: AbortSignal) => Promise<AppToken>): Promise<AppToken> {
    return this.#flight.join(() => this.#run(op), signal);
  }

  async #run(op: (signal: AbortSignal) => Promise<AppToken>): Promise<AppToken> {
    try {
      const token = await op(this.#lifetime.signal);
      this.#lastError = undefined;
      this.#swap(token);
      return token;
    } catch (err) {
      const e = toAppError(err);
      if (e.code !== 'ABORTED') this.#lastError = e;
      if (isRefusal(e) && this.#o.suppliedToken !== undefined) this.#refuse(e);
      throw e;
    }
  }

  /**
   * One acquisition, run inside the single flight. Called only without a current token or with an expiring one
   * (`replacing`): never take that one back from the cache. A follower adopts from the store or throws
   * LeaderTokenPending.
   */
  async #acquire(signal: AbortSignal, replacing = this.#current?.fingerprint): Promise<AppToken> {
    const supplied = this.#o.suppliedToken;
    if (supplied !== undefined) return this.#acq.validateSupplied(supplied, signal);
    if (this.#leading()) return this.#acq.acquire(signal, { replacing });
    try {
      return await this.#follower.acquire(signal, { replacing });
    } catch (err) {
      // Without a cause, TOKEN_UNAVAILABLE is the "nothing usable and no mint allowed" answer; with one, Twitch failed.
      if (err instanceof AppError && err.code === 'TOKEN_UNAVAILABLE' && err.cause === undefined) throw new LeaderTokenPending();
      throw err;
    }
  }

  /** The leader's (or single process's) shared acquisition; a follower's wait for the leader's token. */
  async #obtain(signal: AbortSignal | undefined, leaderWaitMs: number): Promise<AppToken> {
    if (!this.#leading()) return this.#fromLeader(signal, leaderWaitMs);
    try {
      return await this.#share(signal, (s) => this.#acquire(s));
    } catch (err) {
      // It joined a follower's attempt just as this replica became leader: acquire as the leader now.
      if (err instanceof LeaderTokenPending && this.#leading()) return this.#share(signal, (s) => this.#acquire(s));
      throw err;
    }
  }

  /**
   * A follower's token: the current one unless it is expired; else the store's (validated once);
   * else the next one the leader writes, waited for up to `waitMs` (woken by the store's watch, a swap or
   * `roleChanged()`). Acquires as the leader if this replica starts leading meanwhile.
   * @throws LeaderTokenPending (TOKEN_UNAVAILABLE) when no token came within `waitMs`.
   */
  async #fromLeader(signal: AbortSignal | undefined, waitMs: number): Promise<AppToken> {
    const deadline = this.#o.clock.now() + waitMs;
    for (;;) {
      throwIfAborted(signal);
      const current = this.#current;
      if (current && this.#o.clock.now() < current.expiresAt) return current;
      const seen = this.#changes;
      try {
        return await this.#share(signal, (s) => this.#acquire(s));
      } catch (err) {
        if (!(err instanceof LeaderTokenPending) || signal?.aborted) throw err;
        if (this.#leading()) continue; // the attempt joined was a follower's
      }
      const left = deadline - this.#o.clock.now();
      if (left <= 0) throw new LeaderTokenPending();
      await this.#waitForChange(seen, left, signal);
    }
  }

  /**
   * A follower's rotation: the leader rotates at the same deadline, so take its new token from the store, or wait
   * up to `leaderWaitMs` for it (the loop then asks again; the current token works until it expires).
   */
  async #awaitLeaderRotation(token: AppToken, signal: AbortSignal): Promise<void> {
    const deadline = this.#o.clock.now() + this.#o.leaderWaitMs;
    while (this.#current === token && !this.#leading()) {
      const seen = this.#changes;
      try {
        await this.#share(signal, (s) => this.#acquire(s, token.fingerprint));
      } catch (err) {
        if (!(err instanceof LeaderTokenPending)) throw err;
      }
      const left = deadline - this.#o.clock.now();
      if (this.#current !== token || left <= 0) return;
      await this.#waitForChange(seen, left, signal);
    }
  }

  /** Resolves at the next change after the `seen`-th (at once if one came since), or after `ms`. */
  async #waitForChange(seen: number, ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#changes !== seen) return;
    const woken = new AbortController();
    const wake = (): void => woken.abort();
    this.#wakers.add(wake);
    try {
      await this.#o.clock.sleep(Math.min(ms, MAX_TIMER_MS), signal ? AbortSignal.any([signal, woken.signal]) : woken.signal);
    } catch (err) {
      if (signal?.aborted || !woken.signal.aborted) throw err;
    } finally {
      this.#wakers.delete(wake);
    }
  }

  #changed(): void {
    this.#changes++;
    for (const wake of [...this.#wakers]) wake();
  }

  /** True unless this replica is a follower. A supplied token is never minted, whatever the role. */
  #leading(): boolean {
    return this.#o.suppliedToken !== undefined || (this.#o.mayMint?.() ?? true);
  }

  #markBad(fingerprint: string): void {
    this.#acq.markBad(fingerprint);
    this.#follower.markBad(fingerprint);
  }

  #swap(token: AppToken | undefined): void {
    this.#current = token;
    this.#changed();
    for (const listener of this.#swapListeners) listener();
  }

  #refuse(err: AppError): void {
    if (this.#refusal) return;
    this.#refusal = err;
    this.#current = undefined;
    // Not logged here: the refusal reaches the operator as the thrown error, or through onFatal in the daemon.
    if (this.#running) this.#o.onFatal?.(err);
  }

  async #cachedOfOurs(): Promise<TokenRef | undefined> {
    const cached = await this.#o.cache.read();
    if (!cached || cached.clientId !== this.#o.clientId) return undefined;
    return { value: cached.accessToken, fingerprint: fingerprintOf(cached.accessToken) };
  }

  /** Counts and logs a rotation, then revokes the previous token; a failed revoke is only logged. */
  async #afterRotation(previous: TokenRef | undefined, next: AppToken, signal?: AbortSignal): Promise<void> {
    if (previous && previous.fingerprint === next.fingerprint) return;
    this.#stats.rotations++;
    this.#o.logger.info('Rotated the app token', {
      previous: previous?.fingerprint,
      current: next.fingerprint,
      expiresAt: isoOrNever(next.expiresAt),
    });
    if (previous) await revokeQuietly(this.#revokeDeps, previous, signal);
  }

  /**
   * token.json changed: another process (`eventsubd token rotate` or `revoke`) replaced or removed the token
   * that every process of this state directory shares. Unless the cache holds our current token, take what
   * it holds through the usual path (adopted after /validate, or a mint), never our current one again.
   * Changes that arrive during a check make exactly one more check.
   */
  async #cacheChanged(signal: AbortSignal): Promise<void> {
    if (this.#checkingCache) {
      this.#cacheAgain = true;
      return;
    }
    this.#checkingCache = true;
    try {
      do {
        this.#cacheAgain = false;
        if (this.#o.suppliedToken !== undefined || this.#refusal || signal.aborted) return;
        const cached = await this.#o.cache.read().catch(() => undefined);
        const current = this.#current;
        if (current && cached && fingerprintOf(cached.accessToken) === current.fingerprint) continue;
        if (!current && !cached) continue;
        this.#o.logger.info('Another process changed the shared token cache; taking its token', {
          previous: current?.fingerprint,
          cached: cached ? fingerprintOf(cached.accessToken) : null,
        });
        if (current) this.#markBad(current.fingerprint);
        // A follower keeps its current token, if any, until the leader's replacement arrives.
        await this.#share(signal, (s) => this.#acquire(s, current?.fingerprint)).catch((err: unknown) => {
          if (signal.aborted) return;
          if (err instanceof LeaderTokenPending) this.#o.logger.debug("The shared store holds no usable token; waiting for the leader's", {});
          else this.#o.logger.warn('Could not take the token from the changed cache; retrying in the background', { error: toAppError(err) });
        });
      } while (this.#cacheAgain);
    } finally {
      this.#checkingCache = false;
    }
  }

  /**
   * A follower reported that Twitch answered 401 to the token with `fingerprint`. On the leader, if that is still
   * the current token: /validate it, and re-mint (the usual single flight) only if Twitch refuses it there too.
   * Reports of a token already replaced, or arriving while one is checked, are ignored.
   */
  async #rejectedElsewhere(fingerprint: string, signal: AbortSignal): Promise<void> {
    const current = this.#current;
    if (this.#o.suppliedToken !== undefined || this.#refusal || !this.#leading() || current?.fingerprint !== fingerprint) return;
    if (this.#checkingReport === fingerprint) return;
    this.#checkingReport = fingerprint;
    this.#o.logger.info('A follower replica reports a 401 for the app token; checking it with /validate', { fingerprint });
    try {
      await this.#validateCurrent(current, signal);
      if (this.#current?.sameValueAs(current)) this.#o.logger.info('Twitch still accepts the app token a follower reported; keeping it', { fingerprint });
    } catch (err) {
      if (!signal.aborted) this.#o.logger.warn('Could not check the app token a follower reported', { fingerprint, error: toAppError(err) });
    } finally {
      this.#checkingReport = undefined;
    }
  }

  #loopHost(): LoopHost {
    return {
      current: () => this.#current,
      onSwap: (listener) => this.onSwap(listener),
      acquire: async (signal) => {
        try {
          await this.#getToken(signal, this.#o.leaderWaitMs);
        } catch (err) {
          // A follower keeps waiting for the leader's token: the loop asks again, its status says so.
          if (!(err instanceof LeaderTokenPending)) throw err;
        }
      },
      rotate: async (token, signal) => {
        if (!this.#leading()) {
          await this.#awaitLeaderRotation(token, signal);
          if (this.#current !== token || !this.#leading()) return;
        }
        const next = await this.#share(signal, (s) => this.#acq.acquire(s, { replacing: token.fingerprint }));
        await this.#afterRotation(refOf(token), next, signal);
      },
      validate: (token, signal) => this.#validateCurrent(token, signal),
      failed: (err, action, retryInMs) => {
        if (err.code !== 'ABORTED') this.#lastError = err;
        if (this.#refusal || (isRefusal(err) && this.#o.suppliedToken !== undefined)) {
          this.#refuse(err);
          return 'stop';
        }
        this.#o.logger.warn(`Token ${action} failed; retrying`, { error: err, retryInMs });
        return 'retry';
      },
    };
  }

  /** The hourly `/validate`: refreshes the expiry, or re-mints on 401 (a supplied token is refused). */
  async #validateCurrent(token: AppToken, signal: AbortSignal): Promise<void> {
    const answer = await this.#acq.validate(token.reveal(), signal);
    if (this.#current !== token) return;
    let refreshed: AppToken | undefined;
    let refusal: AppError | undefined;
    try {
      if (answer !== null) refreshed = token.revalidated(answer, this.#o.clock.now());
    } catch (err) {
      refusal = toAppError(err);
    }
    if (refreshed) {
      this.#current = refreshed; // same value: no swap notification needed
      return;
    }
    if (this.#o.suppliedToken !== undefined) {
      throw (
        refusal ??
        new TokenRefusedError('TOKEN_INVALID', 'Twitch no longer accepts the token in TWITCH_ACCESS_TOKEN (401 on /validate); it is never replaced')
      );
    }
    this.#o.logger.warn('Validation: Twitch no longer accepts the app token; minting a new one', {
      code: refusal?.code ?? 'TOKEN_INVALID',
      fingerprint: token.fingerprint,
    });
    await this.tokenRejected(token, signal);
  }
}
