/**
 * Settings: merged from flags > environment > .env > defaults by `main.ts`, validated here once (RULES),
 * then frozen. Bad values are one ConfigError (exit 78) naming each setting and the rule it broke, all of
 * them at once; unknown names that look like settings are only warned about (./unknown-settings.ts).
 * Secrets may come from `NAME_FILE=/path` or a systemd credential `$CREDENTIALS_DIRECTORY/<name in lower case>`.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate as validateCron } from 'node-cron';
import { ConfigError } from '../lib/errors.js';
import { LOG_LEVELS, type LogLevel } from '../lib/logger.js';
import { ConfigProblemsError, joinProblems, type ConfigProblem } from './problems.js';
import { unknownSettingWarnings as warningsFor } from './unknown-settings.js';

/** Settings whose values are secrets: never printed, may be read from files or credentials. */
export const SECRET_SETTINGS = [
  'TWITCH_CLIENT_SECRET',
  'TWITCH_ACCESS_TOKEN',
  'EVENTSUB_SECRET',
  'EVENTSUBD_FORWARD_SECRET',
  'EVENTSUBD_STREAM_TOKEN',
  'EVENTSUBD_REDIS_URL',
] as const;

export const DEFAULTS = Object.freeze({
  EVENTSUBD_LISTEN: '127.0.0.1:8080',
  EVENTSUBD_STATE_DIR: './.eventsubd',
  EVENTSUBD_PRUNE: 'true',
  EVENTSUBD_RECONCILE_CRON: '*/10 * * * *',
  TWITCH_AUTH_URL: 'https://id.twitch.tv/oauth2',
  TWITCH_API_URL: 'https://api.twitch.tv/helix',
  EVENTSUBD_LOG_LEVEL: 'info',
  EVENTSUBD_JOURNAL_MAX_BYTES: String(1024 ** 3),
  EVENTSUBD_JOURNAL_MAX_AGE_DAYS: '7',
  EVENTSUBD_JOURNAL_FSYNC: 'group',
  EVENTSUBD_FORWARD_CONCURRENCY: '1',
  EVENTSUBD_FORWARD_MAX_BACKOFF_MS: '10000',
  EVENTSUBD_STREAM_PATH: '/events',
  TWITCH_REDIRECT_URL: 'http://localhost:3000',
  EVENTSUBD_TRANSPORT: 'webhook',
  EVENTSUBD_CONDUIT_SHARDS: '1',
  TWITCH_EVENTSUB_WS_URL: 'wss://eventsub.wss.twitch.tv/ws',
  EVENTSUBD_REDIS_DURABILITY: 'fsync',
  EVENTSUBD_REDIS_LEASE_MS: '10000',
});

/** Twitch's limit of shards per conduit (https://dev.twitch.tv/docs/eventsub/handling-conduit-events/). */
export const MAX_CONDUIT_SHARDS = 20_000;

export interface ListenAddress {
  host: string;
  port: number;
}

/** `EVENTSUBD_REDIS_DURABILITY`. */
export type RedisDurability = { kind: 'fsync' } | { kind: 'replicas'; replicas: number } | { kind: 'trust' };

export interface Config {
  clientId: string | undefined;
  clientSecret: string | undefined;
  accessToken: string | undefined;
  /** Webhook secrets; the first signs new subscriptions, all are accepted on receive. */
  eventsubSecrets: readonly string[];
  callbackUrl: string | undefined;
  listen: ListenAddress;
  stateDir: string;
  subscriptionsFile: string | undefined;
  prune: boolean;
  reconcileCron: string;
  authUrl: string;
  apiUrl: string;
  logLevel: LogLevel;
  /** Journal retention: whole old segments go once the journal is bigger than this, or older. */
  journalMaxBytes: number;
  journalMaxAgeMs: number;
  /** `group`: one durable write covers every append that arrived meanwhile; `each`: one per append. */
  journalFsync: 'group' | 'each';
  /** Delivery to the user's application (README.md "Delivery to your application"). */
  forward: { url: string; secret: string | undefined; concurrency: number; maxBackoffMs: number } | undefined;
  /** The WebSocket stream; undefined when EVENTSUBD_STREAM_PATH=off. */
  stream: { path: string; token: string | undefined } | undefined;
  /** True when the Helix base is a loopback address (emulator, tests): relaxes the https:443 callback rule. */
  apiIsLoopback: boolean;
  /** The OAuth Redirect URL registered for the app: where `eventsubd authorize` receives the code. */
  redirectUrl: string;
  /** How declared subscriptions are delivered: webhooks to EVENTSUB_CALLBACK_URL, or a conduit's WebSocket shards. */
  transport: 'webhook' | 'conduit';
  /** Conduit mode (SPEC "Conduit transport"): the conduit to use (else created and recorded), shards held, the WebSocket URL. */
  conduit: { id: string | undefined; shards: number; wsUrl: string };
  /**
   * Several replicas (README "Running several replicas"): the journal, de-duplication, cursors, token, locks and
   * leases live in this Redis; undefined = local files. `url` may carry a password: never log it.
   */
  redis: { url: string; prefix: string; durability: RedisDurability; leaseMs: number } | undefined;
}

export type RawSettings = Readonly<Record<string, string | undefined>>;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Twitch's rule for a webhook secret (`transport.secret`, https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription):
 * 10-100 ASCII characters (printable, no spaces here).
 */
export function isValidWebhookSecret(secret: string): boolean {
  return secret.length >= 10 && secret.length <= 100 && /^[\x21-\x7e]+$/.test(secret);
}

/*
 * The rules, one function per setting from its raw string to its value, throwing Invalid with the message(s) of
 * the rule it broke. Written out rather than with zod: `eventsubd run` validates its settings before READY=1, and
 * importing zod 4 takes about 75 ms there (BENCHMARKS.md, "Start-up"); zod stays for the files and wire formats
 * read after it.
 */
class Invalid extends Error {
  readonly messages: readonly string[];
  constructor(messages: readonly string[]) {
    super(messages[0]);
    this.messages = messages;
  }
}
const invalid = (message: string): never => {
  throw new Invalid([message]);
};

interface Rule<T, Optional extends boolean> {
  readonly parse: (value: string) => T;
  readonly optional: Optional;
}
const required = <T>(parse: (value: string) => T): Rule<T, false> => ({ parse, optional: false });
const optional = <T>(parse: (value: string) => T): Rule<T, true> => ({ parse, optional: true });

/** Trimmed, and not empty. */
const nonEmpty =
  (name: string) =>
  (v: string): string =>
    v.trim() || invalid(`${name} must not be empty`);
/** The value, when it matches `pattern` whole. */
const matching =
  (pattern: RegExp, message: string) =>
  (v: string): string =>
    pattern.test(v) ? v : invalid(message);
const check =
  <T>(ok: (v: T) => boolean, message: string) =>
  (v: T): T =>
    ok(v) ? v : invalid(message);
const oneOf =
  <const T extends string>(values: readonly T[], message: string) =>
  (v: string): T =>
    (values as readonly string[]).includes(v) ? (v as T) : invalid(message);
const urlWith = (protocols: readonly string[], message: string) =>
  check((v: string) => URL.canParse(v) && protocols.includes(new URL(v).protocol), message);
const httpUrl = (name: string) => urlWith(['https:', 'http:'], `${name} must be an http(s) URL`);
/** A whole number matching `pattern` (digits only), then `ok`. */
const wholeNumber = (pattern: RegExp, message: string, ok: (n: number) => boolean, range = message) => (v: string): number =>
  check(ok, range)(Number(matching(pattern, message)(v)));

const RULES = {
  TWITCH_CLIENT_ID: optional((v) =>
    matching(/^[A-Za-z0-9_-]{1,100}$/, 'TWITCH_CLIENT_ID must be letters and digits (as shown in the Twitch console)')(nonEmpty('TWITCH_CLIENT_ID')(v)),
  ),
  TWITCH_CLIENT_SECRET: optional(nonEmpty('TWITCH_CLIENT_SECRET')),
  TWITCH_ACCESS_TOKEN: optional((v) => nonEmpty('TWITCH_ACCESS_TOKEN')(v).replace(/^(oauth:|Bearer\s+|OAuth\s+)/i, '')),
  EVENTSUB_SECRET: optional((v) => {
    const secrets = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const problems = secrets.flatMap((s, i) =>
      isValidWebhookSecret(s) ? [] : [`EVENTSUB_SECRET secret #${i + 1} must be 10-100 printable ASCII characters: current length is ${s.length}`],
    );
    if (problems.length > 0) throw new Invalid(problems);
    return secrets;
  }),
  EVENTSUB_CALLBACK_URL: optional((v) => v),
  EVENTSUBD_LISTEN: required((v) => v),
  EVENTSUBD_STATE_DIR: required(nonEmpty('EVENTSUBD_STATE_DIR')),
  EVENTSUBD_SUBSCRIPTIONS: optional(nonEmpty('EVENTSUBD_SUBSCRIPTIONS')),
  EVENTSUBD_PRUNE: required((v) => ['true', '1', 'yes'].includes(oneOf(['true', 'false', '1', '0', 'yes', 'no'], 'EVENTSUBD_PRUNE must be true or false')(v.trim().toLowerCase()))),
  EVENTSUBD_RECONCILE_CRON: required(check((v: string) => validateCron(v), 'EVENTSUBD_RECONCILE_CRON must be a valid cron expression (e.g. "*/10 * * * *")')),
  TWITCH_AUTH_URL: required(httpUrl('TWITCH_AUTH_URL')),
  TWITCH_API_URL: required(httpUrl('TWITCH_API_URL')),
  EVENTSUBD_JOURNAL_MAX_BYTES: required(
    wholeNumber(/^\d+$/, 'EVENTSUBD_JOURNAL_MAX_BYTES must be a whole number of bytes', (n) => n >= 1024 * 1024, 'EVENTSUBD_JOURNAL_MAX_BYTES must be at least 1048576 (1 MiB)'),
  ),
  EVENTSUBD_JOURNAL_MAX_AGE_DAYS: required(
    wholeNumber(/^\d+(\.\d+)?$/, 'EVENTSUBD_JOURNAL_MAX_AGE_DAYS must be a number of days', (n) => n > 0, 'EVENTSUBD_JOURNAL_MAX_AGE_DAYS must be more than 0'),
  ),
  EVENTSUBD_JOURNAL_FSYNC: required(oneOf(['group', 'each'], 'EVENTSUBD_JOURNAL_FSYNC must be group or each')),
  EVENTSUBD_FORWARD_URL: optional(httpUrl('EVENTSUBD_FORWARD_URL')),
  EVENTSUBD_FORWARD_SECRET: optional(nonEmpty('EVENTSUBD_FORWARD_SECRET')),
  EVENTSUBD_FORWARD_CONCURRENCY: required(wholeNumber(/^[1-9]\d{0,2}$/, 'EVENTSUBD_FORWARD_CONCURRENCY must be a whole number from 1 to 999', () => true)),
  EVENTSUBD_FORWARD_MAX_BACKOFF_MS: required(
    wholeNumber(/^\d+$/, 'EVENTSUBD_FORWARD_MAX_BACKOFF_MS must be a whole number of milliseconds', (n) => n >= 100, 'EVENTSUBD_FORWARD_MAX_BACKOFF_MS must be at least 100'),
  ),
  EVENTSUBD_STREAM_PATH: required(
    check((v: string) => v === 'off' || /^\/[A-Za-z0-9._~/-]*$/.test(v), 'EVENTSUBD_STREAM_PATH must be a path such as /events, or off'),
  ),
  EVENTSUBD_STREAM_TOKEN: optional(check((v: string) => v.length >= 16, 'EVENTSUBD_STREAM_TOKEN must be at least 16 characters')),
  TWITCH_REDIRECT_URL: required(httpUrl('TWITCH_REDIRECT_URL')),
  EVENTSUBD_TRANSPORT: required(oneOf(['webhook', 'conduit'], 'EVENTSUBD_TRANSPORT must be webhook or conduit')),
  EVENTSUBD_CONDUIT_ID: optional((v) =>
    matching(/^[A-Za-z0-9-]{1,100}$/, 'EVENTSUBD_CONDUIT_ID must be a conduit id as Twitch returns it (letters, digits and dashes)')(v.trim()),
  ),
  EVENTSUBD_CONDUIT_SHARDS: required((v) =>
    wholeNumber(/^\d{1,6}$/, `EVENTSUBD_CONDUIT_SHARDS must be a whole number from 1 to ${MAX_CONDUIT_SHARDS}`, (n) => n >= 1 && n <= MAX_CONDUIT_SHARDS)(v.trim()),
  ),
  TWITCH_EVENTSUB_WS_URL: required(urlWith(['wss:', 'ws:'], 'TWITCH_EVENTSUB_WS_URL must be a wss:// URL')),
  EVENTSUBD_REDIS_URL: optional(
    check(
      (v: string) => URL.canParse(v) && ['redis:', 'rediss:'].includes(new URL(v).protocol) && new URL(v).hostname !== '',
      // Never the value: it may carry a password.
      'EVENTSUBD_REDIS_URL must be a redis:// or rediss:// URL with a host, e.g. redis://127.0.0.1:6379',
    ),
  ),
  EVENTSUBD_REDIS_PREFIX: optional((v) =>
    matching(/^[A-Za-z0-9:._-]{1,100}$/, 'EVENTSUBD_REDIS_PREFIX must be 1-100 letters, digits, or the characters : . _ -')(v.trim()),
  ),
  EVENTSUBD_REDIS_DURABILITY: required((v): RedisDurability => {
    const d = matching(/^(fsync|trust|replicas:[1-9]\d{0,2})$/, 'EVENTSUBD_REDIS_DURABILITY must be fsync, trust or replicas:N (N from 1 to 999)')(v.trim());
    return d.startsWith('replicas:') ? { kind: 'replicas', replicas: Number(d.slice(9)) } : { kind: d as 'fsync' | 'trust' };
  }),
  EVENTSUBD_REDIS_LEASE_MS: required((v) =>
    wholeNumber(/^\d{1,6}$/, 'EVENTSUBD_REDIS_LEASE_MS must be a whole number of milliseconds from 1000 to 60000', (n) => n >= 1000 && n <= 60_000)(v.trim()),
  ),
  EVENTSUBD_LOG_LEVEL: required(oneOf(LOG_LEVELS, `EVENTSUBD_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)),
};

/** The settings as the rules give them. */
type Parsed = { -readonly [K in keyof typeof RULES]: (typeof RULES)[K] extends Rule<infer T, infer O> ? (O extends true ? T | undefined : T) : never };

/**
 * Applies every rule to `merged` (defaults already in): the values, or every broken rule's message in
 * setting order. A required setting left undefined is a problem too (only a caller that drops a default can cause one).
 */
function applyRules(merged: Readonly<Record<string, string | undefined>>): { data: Parsed; problems: ConfigProblem[] } {
  const data: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  for (const [setting, rule] of Object.entries(RULES) as [string, Rule<unknown, boolean>][]) {
    const raw = merged[setting];
    if (raw === undefined) {
      if (!rule.optional) problems.push({ setting, message: `${setting} is required` });
      continue;
    }
    try {
      data[setting] = rule.parse(raw);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      for (const message of err.messages) problems.push({ setting, message });
    }
  }
  return { data: data as Parsed, problems };
}

/** Every setting name (the README and .env.example document each one: a test checks). */
export const SETTING_NAMES: readonly string[] = Object.freeze(Object.keys(RULES));

/** The name of a setting, as a type. */
export type SettingName = keyof typeof RULES;

/** Names eventsubd reads besides its settings: systemd's directories. */
const OTHER_NAMES = ['STATE_DIRECTORY', 'CREDENTIALS_DIRECTORY'];

/**
 * One warning line for each name of `raw` that looks like a mistyped setting: any unknown `EVENTSUBD_` or
 * `EVENTSUB_` name, and an unknown `TWITCH_` name close to one of ours. With the nearest setting when there is one.
 */
export function unknownSettingWarnings(raw: RawSettings): string[] {
  return warningsFor(Object.keys(raw), { settings: SETTING_NAMES, secrets: SECRET_SETTINGS, others: OTHER_NAMES });
}

export interface LoadOptions {
  /** Reads a secret file; injected for tests. */
  readFile?: (path: string) => string;
  /** Receives one line per unknown setting name (a likely typo); not called when omitted. */
  warn?: (line: string) => void;
}

/**
 * Validates and freezes the settings. `raw` is the merged view (flags > env > .env); defaults and
 * `*_FILE` / credential lookups are applied here. Names with our prefixes that are not settings are
 * passed to `options.warn` (see `unknownSettingWarnings`); they are not errors.
 * @throws ConfigError (a ConfigProblemsError) listing every setting that broke a rule, not only the first.
 */
export function loadConfig(raw: RawSettings, options: LoadOptions = {}): Config {
  if (options.warn) for (const line of unknownSettingWarnings(raw)) options.warn(line);
  const readFile = options.readFile ?? readSecretFile;
  const problems: ConfigProblem[] = [];
  const collect = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push({ setting: err.setting, message: err.message });
      return undefined;
    }
  };
  const merged: Record<string, string | undefined> = {};
  for (const key of SETTING_NAMES) merged[key] = blankToUndefined(raw[key]);
  for (const name of SECRET_SETTINGS) merged[name] = collect(() => resolveSecret(name, raw, readFile));
  merged.EVENTSUBD_STATE_DIR ??= blankToUndefined(raw.STATE_DIRECTORY)?.split(':')[0];
  for (const [key, value] of Object.entries(DEFAULTS)) merged[key] ??= value;

  const parsed = applyRules(merged);
  problems.push(...parsed.problems);
  // The rules that read several settings are checked on the raw values, so that they are reported
  // alongside the schema's problems.
  const apiUrl = parsed.data.TWITCH_API_URL ?? merged.TWITCH_API_URL!;
  const apiIsLoopback = URL.canParse(apiUrl) && isLoopbackHost(new URL(apiUrl).hostname);
  const callbackUrl = merged.EVENTSUB_CALLBACK_URL;
  const callback = callbackUrl === undefined ? undefined : collect(() => checkCallback(callbackUrl, apiIsLoopback));
  const listen = collect(() => parseListen(merged.EVENTSUBD_LISTEN!));
  if (listen && merged.EVENTSUBD_STREAM_PATH !== 'off' && !merged.EVENTSUBD_STREAM_TOKEN && !isLoopbackHost(listen.host)) {
    problems.push({
      setting: 'EVENTSUBD_STREAM_TOKEN',
      message: `EVENTSUBD_STREAM_TOKEN is required when EVENTSUBD_LISTEN is not a loopback address (${listen.host}): set it, or EVENTSUBD_STREAM_PATH=off`,
    });
  }
  const wsUrl = merged.TWITCH_EVENTSUB_WS_URL!;
  if (URL.canParse(wsUrl) && new URL(wsUrl).protocol === 'ws:' && !isLoopbackHost(new URL(wsUrl).hostname)) {
    problems.push({
      setting: 'TWITCH_EVENTSUB_WS_URL',
      message: 'TWITCH_EVENTSUB_WS_URL must be wss:// (plain ws:// only to a loopback address: the emulator, tests)',
    });
  }
  if (problems.length > 0 || !listen) {
    throw new ConfigProblemsError(joinProblems(problems, 'Settings'), problems);
  }
  const s = parsed.data;
  const config: Config = {
    clientId: s.TWITCH_CLIENT_ID,
    clientSecret: s.TWITCH_CLIENT_SECRET,
    accessToken: s.TWITCH_ACCESS_TOKEN,
    eventsubSecrets: Object.freeze(s.EVENTSUB_SECRET ?? []),
    callbackUrl: callback,
    listen,
    stateDir: s.EVENTSUBD_STATE_DIR,
    subscriptionsFile: s.EVENTSUBD_SUBSCRIPTIONS,
    prune: s.EVENTSUBD_PRUNE,
    reconcileCron: s.EVENTSUBD_RECONCILE_CRON,
    authUrl: s.TWITCH_AUTH_URL.replace(/\/+$/, ''),
    apiUrl: s.TWITCH_API_URL.replace(/\/+$/, ''),
    logLevel: s.EVENTSUBD_LOG_LEVEL,
    journalMaxBytes: s.EVENTSUBD_JOURNAL_MAX_BYTES,
    journalMaxAgeMs: Math.round(s.EVENTSUBD_JOURNAL_MAX_AGE_DAYS * 86_400_000),
    journalFsync: s.EVENTSUBD_JOURNAL_FSYNC,
    forward: s.EVENTSUBD_FORWARD_URL
      ? {
          url: s.EVENTSUBD_FORWARD_URL,
          secret: s.EVENTSUBD_FORWARD_SECRET,
          concurrency: s.EVENTSUBD_FORWARD_CONCURRENCY,
          maxBackoffMs: s.EVENTSUBD_FORWARD_MAX_BACKOFF_MS,
        }
      : undefined,
    stream: s.EVENTSUBD_STREAM_PATH === 'off' ? undefined : { path: s.EVENTSUBD_STREAM_PATH, token: s.EVENTSUBD_STREAM_TOKEN },
    apiIsLoopback,
    redirectUrl: s.TWITCH_REDIRECT_URL,
    transport: s.EVENTSUBD_TRANSPORT,
    conduit: { id: s.EVENTSUBD_CONDUIT_ID, shards: s.EVENTSUBD_CONDUIT_SHARDS, wsUrl: s.TWITCH_EVENTSUB_WS_URL },
    redis: s.EVENTSUBD_REDIS_URL
      ? {
          url: s.EVENTSUBD_REDIS_URL,
          prefix: s.EVENTSUBD_REDIS_PREFIX ?? `eventsubd:${s.TWITCH_CLIENT_ID ?? 'default'}`,
          durability: s.EVENTSUBD_REDIS_DURABILITY,
          leaseMs: s.EVENTSUBD_REDIS_LEASE_MS,
        }
      : undefined,
  };
  return Object.freeze(config);
}

/** Settings a command needs before it can talk to Twitch. */
export function requireTwitchAccess(config: Config): asserts config is Config & { clientId: string } {
  if (!config.clientId) throw new ConfigError('TWITCH_CLIENT_ID is required: set it to your app\'s client ID', { setting: 'TWITCH_CLIENT_ID' });
  if (!config.clientSecret && !config.accessToken) {
    throw new ConfigError('TWITCH_CLIENT_SECRET is required to mint app tokens (or supply TWITCH_ACCESS_TOKEN)', {
      setting: 'TWITCH_CLIENT_SECRET',
    });
  }
}

/** Settings needed to create webhook subscriptions or receive them. */
export function requireWebhook(config: Config): { callbackUrl: string; secret: string } {
  if (!config.callbackUrl) {
    throw new ConfigError('EVENTSUB_CALLBACK_URL is required for webhook subscriptions', { setting: 'EVENTSUB_CALLBACK_URL' });
  }
  const secret = config.eventsubSecrets[0];
  if (!secret) throw new ConfigError('EVENTSUB_SECRET is required for webhook subscriptions', { setting: 'EVENTSUB_SECRET' });
  return { callbackUrl: config.callbackUrl, secret };
}

/**
 * One secret setting as `loadConfig` reads it (the variable, else `NAME_FILE`, else the systemd credential), for a
 * command that needs it without the rest of the settings (`emulate`). @throws ConfigError for an unreadable file.
 */
export function secretSetting(name: (typeof SECRET_SETTINGS)[number], raw: RawSettings): string | undefined {
  return resolveSecret(name, raw, readSecretFile);
}

function resolveSecret(name: string, raw: RawSettings, readFile: (path: string) => string): string | undefined {
  const direct = blankToUndefined(raw[name]);
  if (direct !== undefined) return direct;
  const file = blankToUndefined(raw[`${name}_FILE`]);
  const credentials = blankToUndefined(raw.CREDENTIALS_DIRECTORY);
  const source = file ?? (credentials ? join(credentials, name.toLowerCase()) : undefined);
  if (source === undefined) return undefined;
  try {
    return readFile(source).trim() || undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A credential file that is simply absent means "not configured"; an explicit *_FILE must exist.
    if (file === undefined && code === 'ENOENT') return undefined;
    const why = code === 'EFTYPE' ? 'it is not a regular file' : (code ?? 'error');
    if (file !== undefined) throw new ConfigError(`${name}_FILE: cannot read ${source}: ${why}`, { setting: `${name}_FILE`, cause: err });
    throw new ConfigError(`${name}: cannot read the systemd credential ${source} (CREDENTIALS_DIRECTORY): ${why}`, {
      setting: 'CREDENTIALS_DIRECTORY',
      cause: err,
    });
  }
}

/** Largest secret file read, in bytes: a secret is short; a huge file is a mistake. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Reads a secret file: only a regular file (a FIFO or a device would block start-up, where no signal is
 * handled yet; it is opened non-blocking and refused with code EFTYPE), at most MAX_SECRET_FILE_BYTES.
 * Links are followed: Kubernetes mounts its secrets as links.
 */
function readSecretFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EFTYPE' });
    if (st.size > MAX_SECRET_FILE_BYTES) throw Object.assign(new Error(`${path} is too large`), { code: 'EFBIG' });
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

function checkCallback(value: string, apiIsLoopback: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('EVENTSUB_CALLBACK_URL must be an absolute https:// URL', { setting: 'EVENTSUB_CALLBACK_URL' });
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  if (!apiIsLoopback && (url.protocol !== 'https:' || port !== 443)) {
    throw new ConfigError(
      `EVENTSUB_CALLBACK_URL must be https:// on port 443 (Twitch's rule): current value uses ${url.protocol}//…:${port}`,
      { setting: 'EVENTSUB_CALLBACK_URL' },
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('EVENTSUB_CALLBACK_URL must be an https:// URL', { setting: 'EVENTSUB_CALLBACK_URL' });
  }
  return value;
}

/** `host:port`, `[v6]:port` or `:port`. */
export function parseListen(value: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ConfigError(`EVENTSUBD_LISTEN must be host:port (e.g. 127.0.0.1:8080): current value is "${value}"`, {
      setting: 'EVENTSUBD_LISTEN',
    });
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function blankToUndefined(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
