/**
 * One error base with a stable string `code`, and small subclasses that carry data.
 * Branch on `err.code`, never on the message. Every code is listed in `ERROR_CODES` and in the README;
 * `test/lib/errors.test.ts` keeps the three in step.
 */

/** Process exit codes, decided in one place (`exitCodeFor`). */
export const EXIT = Object.freeze({
  OK: 0,
  RUNTIME: 1,
  USAGE: 2,
  TOKEN_REFUSED: 77,
  CONFIG: 78,
});

/** Every stable error code, with the exit code a CLI run that ends on it returns, and one line of meaning. */
export const ERROR_CODES = Object.freeze({
  USAGE_ERROR: { exit: EXIT.USAGE, meaning: 'unknown command or flag, or a flag without its value' },
  CONFIG_INVALID: { exit: EXIT.CONFIG, meaning: 'a setting, flag value or subscriptions file broke a rule' },
  TWITCH_AUTH_FAILED: { exit: EXIT.TOKEN_REFUSED, meaning: 'Twitch rejected the client ID or client secret (400/403 on /oauth2/token)' },
  USER_TOKEN_REFUSED: { exit: EXIT.TOKEN_REFUSED, meaning: 'the token is a user token; EventSub and conduit calls need an app token' },
  TOKEN_CLIENT_MISMATCH: { exit: EXIT.TOKEN_REFUSED, meaning: "the token belongs to another client ID than TWITCH_CLIENT_ID" },
  TOKEN_INVALID: { exit: EXIT.TOKEN_REFUSED, meaning: 'a supplied token (TWITCH_ACCESS_TOKEN) is invalid or expired and cannot be replaced' },
  TOKEN_UNAVAILABLE: { exit: EXIT.RUNTIME, meaning: 'no app token could be obtained (no client secret, or the token endpoint kept failing)' },
  TWITCH_UNAUTHORIZED: { exit: EXIT.RUNTIME, meaning: 'Helix answered 401 again after one re-mint and one retry' },
  TWITCH_RATE_LIMITED: { exit: EXIT.RUNTIME, meaning: 'Helix answered 429 with an empty bucket more often than the retry budget allows' },
  SUBSCRIPTION_LIMIT: { exit: EXIT.RUNTIME, meaning: 'Twitch refused a create: 3 subscriptions with this type and condition already exist (429 with points left)' },
  SUBSCRIPTION_CONFLICT: { exit: EXIT.RUNTIME, meaning: 'Twitch answered 409 and the existing subscription could not be found to adopt' },
  SUBSCRIPTION_NOT_FOUND: { exit: EXIT.RUNTIME, meaning: 'the subscription to delete does not exist (404)' },
  CONDUIT_NOT_FOUND: { exit: EXIT.CONFIG, meaning: 'the conduit named by EVENTSUBD_CONDUIT_ID (or recorded in STATE_DIR/conduit.json, for conduit status) is not known to Twitch for this client ID, or there is none to show' },
  CONDUIT_AMBIGUOUS: { exit: EXIT.CONFIG, meaning: 'no conduit is recorded and the client already has conduits: eventsubd does not guess, set EVENTSUBD_CONDUIT_ID to one of those listed' },
  CONDUIT_LIMIT_REACHED: { exit: EXIT.RUNTIME, meaning: 'Twitch refused to create a conduit: the client ID has its 5 (delete one, or set EVENTSUBD_CONDUIT_ID)' },
  SHARD_ASSIGN_FAILED: { exit: EXIT.RUNTIME, meaning: "Twitch refused to assign a WebSocket session to a conduit shard (its per-shard error, e.g. the session is not connected)" },
  USER_NOT_FOUND: { exit: EXIT.RUNTIME, meaning: 'users lookup: Twitch knows no user with a login asked for (the others are printed)' },
  TWITCH_HTTP_ERROR: { exit: EXIT.RUNTIME, meaning: 'Twitch answered with an unexpected HTTP status' },
  TWITCH_BAD_RESPONSE: { exit: EXIT.RUNTIME, meaning: "Twitch's answer did not match the documented shape" },
  TWITCH_UNREACHABLE: { exit: EXIT.RUNTIME, meaning: 'network error or timeout talking to Twitch, after retries' },
  WEBHOOK_DELIVERY_FAILED: { exit: EXIT.RUNTIME, meaning: 'a signed webhook message (emulate, trigger) got no HTTP answer: network error or timeout' },
  STATE_DIR_UNUSABLE: { exit: EXIT.RUNTIME, meaning: 'the state directory or a file in it cannot be created, read or written' },
  STATE_DIR_INVALID: { exit: EXIT.CONFIG, meaning: 'EVENTSUBD_STATE_DIR cannot be the state directory: not a directory, missing and cannot be created, a link to nothing, or not writable by this process' },
  STATE_DIR_UNSAFE: { exit: EXIT.CONFIG, meaning: 'the state directory holds a symbolic link, or a file or directory that others may read or write and whose mode cannot be fixed' },
  STATE_DIR_LOCKED: { exit: EXIT.RUNTIME, meaning: 'another eventsubd run holds the state directory (its daemon.pid lock)' },
  LISTEN_FAILED: { exit: EXIT.CONFIG, meaning: 'the receiver cannot listen on EVENTSUBD_LISTEN: address in use, a privileged port, or an address this machine does not have' },
  JOURNAL_UNWRITABLE: { exit: EXIT.RUNTIME, meaning: 'the journal cannot be appended to or fsynced' },
  REDIS_NOT_DURABLE: { exit: EXIT.CONFIG, meaning: 'EVENTSUBD_REDIS_DURABILITY=fsync (the default) and Redis does not persist every write: set appendonly yes and appendfsync always, or choose replicas:N or trust' },
  REDIS_UNAVAILABLE: { exit: EXIT.RUNTIME, meaning: 'Redis (EVENTSUBD_REDIS_URL) did not answer in time, or refused the command; the daemon retries, a CLI command stops' },
  AUTHORIZATION_MISSING: { exit: EXIT.RUNTIME, meaning: 'a declared subscription needs a user to authorize the app with scopes first (run the eventsubd authorize command it names)' },
  AUTHORIZATION_DENIED: { exit: EXIT.RUNTIME, meaning: 'the user refused the authorization (authorize page or device activation)' },
  AUTHORIZATION_FAILED: { exit: EXIT.RUNTIME, meaning: 'eventsubd authorize could not complete: no callback in time, a refused or expired code, a grant without the scopes asked, or one that did not persist' },
  ABORTED: { exit: EXIT.RUNTIME, meaning: 'the operation was cancelled (shutdown or Ctrl-C)' },
  INTERNAL_ERROR: { exit: EXIT.RUNTIME, meaning: 'a bug: an error without a code reached the top' },
} as const);

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AppErrorOptions {
  cause?: unknown;
}

/** The base of every error eventsubd throws on purpose. `message` is one line, sentence case, no secrets. */
export class AppError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }
}

export class UsageError extends AppError {
  constructor(message: string) {
    super('USAGE_ERROR', message);
  }
}

/** A setting, a flag value or the subscriptions file is wrong. `setting` names what broke the rule. */
export class ConfigError extends AppError {
  readonly setting: string | undefined;
  constructor(message: string, options: AppErrorOptions & { setting?: string } = {}) {
    super('CONFIG_INVALID', message, options);
    this.setting = options.setting;
  }
}

export class TwitchAuthError extends AppError {
  readonly status: number;
  constructor(status: number, twitchMessage: string, options: AppErrorOptions = {}) {
    super('TWITCH_AUTH_FAILED', `Twitch rejected the client credentials: ${status} ${twitchMessage}`, options);
    this.status = status;
  }
}

export class TokenRefusedError extends AppError {
  constructor(code: 'USER_TOKEN_REFUSED' | 'TOKEN_CLIENT_MISMATCH' | 'TOKEN_INVALID', message: string) {
    super(code, message);
  }
}

/** Helix or OAuth answered with a status we do not handle more specifically. */
export class TwitchHttpError extends AppError {
  readonly status: number;
  readonly twitchMessage: string;
  constructor(
    init: { status: number; twitchMessage: string; method: string; path: string; code?: ErrorCode },
    options: AppErrorOptions = {},
  ) {
    super(
      init.code ?? 'TWITCH_HTTP_ERROR',
      `${init.method} ${init.path} failed: ${init.status} ${init.twitchMessage}`.trim(),
      options,
    );
    this.status = init.status;
    this.twitchMessage = init.twitchMessage;
  }
}

export class TwitchUnreachableError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('TWITCH_UNREACHABLE', message, options);
  }
}

export class TwitchBadResponseError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('TWITCH_BAD_RESPONSE', message, options);
  }
}

export class StateDirError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('STATE_DIR_UNUSABLE', message, options);
  }
}

export class AbortedError extends AppError {
  constructor(options: AppErrorOptions = {}) {
    super('ABORTED', 'The operation was aborted', options);
  }
}

/** Wraps anything thrown into an AppError so the top level always has a code and a one-line message. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof Error && err.name === 'AbortError') return new AbortedError({ cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new AppError('INTERNAL_ERROR', `Unexpected error: ${message.split('\n')[0]}`, { cause: err });
}

/** The exit code for an error that ended a command. */
export function exitCodeFor(err: unknown): number {
  return toAppError(err).exitCode;
}

/** Throws the signal's reason as an AbortedError if it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
}
