/**
 * JSON-lines logger (one object per line on a writable, stderr in production) with redaction of every
 * secret value registered with it: a secret never reaches a log line, whatever field or message holds it.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface Logger {
  debug(msg: string, ctx?: Record<string, unknown>): void;
  info(msg: string, ctx?: Record<string, unknown>): void;
  warn(msg: string, ctx?: Record<string, unknown>): void;
  error(msg: string, ctx?: Record<string, unknown>): void;
  child(ctx: Record<string, unknown>): Logger;
}

export interface LineSink {
  write(line: string): unknown;
}

/** Values that must never be printed. Shared by the logger and the CLI output. */
export class Redactor {
  #secrets = new Set<string>();

  /** Registers a value to hide. Values shorter than 6 characters are ignored (they would redact noise). */
  add(value: string | undefined | null): void {
    if (value && value.length >= 6) this.#secrets.add(value);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) {
      if (out.includes(s)) out = out.split(s).join('[redacted]');
    }
    return out;
  }
}

export interface JsonLoggerOptions {
  sink: LineSink;
  level?: LogLevel;
  redactor?: Redactor;
  now?: () => number;
  context?: Record<string, unknown>;
}

export function createJsonLogger(options: JsonLoggerOptions): Logger {
  const min = LOG_LEVELS.indexOf(options.level ?? 'info');
  const redactor = options.redactor ?? new Redactor();
  const now = options.now ?? (() => Date.now());

  const make = (base: Record<string, unknown>): Logger => {
    const emit = (level: LogLevel, msg: string, ctx?: Record<string, unknown>): void => {
      if (LOG_LEVELS.indexOf(level) < min) return;
      const record = { time: new Date(now()).toISOString(), level, msg, ...base, ...serializeContext(ctx) };
      options.sink.write(redactor.redact(JSON.stringify(record)) + '\n');
    };
    return {
      debug: (m, c) => emit('debug', m, c),
      info: (m, c) => emit('info', m, c),
      warn: (m, c) => emit('warn', m, c),
      error: (m, c) => emit('error', m, c),
      child: (ctx) => make({ ...base, ...ctx }),
    };
  };
  return make(options.context ?? {});
}

/** Errors become `{code, message, cause}`; no stack traces in logs (they belong to a debugger, not journald). */
function serializeContext(ctx: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!ctx) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ctx)) out[k] = v instanceof Error ? describeError(v) : v;
  return out;
}

export function describeError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { message: err.message };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  if (err.cause instanceof Error) out.cause = describeError(err.cause);
  return out;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
