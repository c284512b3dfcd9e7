/**
 * The CLI runner: finds the command in the table, parses its flags strictly, builds the context, runs it,
 * and turns any error into one line on stderr plus the exit code of `errors.ts`. It never calls
 * `process.exit`; `main.ts` does, with what this returns.
 */
import { parseArgs } from 'node:util';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/settings.js';
import type { TwitchStack } from '../daemon/twitch-stack.js';
import type { TokenStore } from '../auth/token-cache.js';
import type { RedisConnection } from '../storage/redis-connection.js';
import type { Clock } from '../lib/clock.js';
import { ConfigError, EXIT, toAppError, UsageError } from '../lib/errors.js';
import { createJsonLogger, Redactor, type LogLevel } from '../lib/logger.js';
import { type CommandContext, type CommandSpec, type ParsedArgs, type ProcessControl } from './command.js';
import { COMMANDS } from './commands.js';
import { commandHelp, globalHelp, groupHelp } from './help.js';
import { Output, type TextSink } from './output.js';

/** What the CLI needs from the process, passed in by main.ts (and by tests). */
export interface CliProcess {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  stdout: TextSink;
  stderr: TextSink;
  clock: Clock;
  /** Parses a dotenv file; resolves undefined when it does not exist. */
  readEnvFile(path: string): Record<string, string> | undefined;
  version: string;
  signal: AbortSignal;
  stopped: Promise<void>;
  process: ProcessControl;
  /** For tests: the HTTP client to use instead of one the runner creates (and closes). */
  dispatcher?: Dispatcher;
  /** Resolves with an error nothing caught (uncaughtException, unhandledRejection): logged, then the command stops. */
  crashed?: Promise<unknown>;
}

export async function runCli(proc: CliProcess): Promise<number> {
  const redactor = new Redactor();
  const wantsJson = proc.argv.includes('--json');
  const out = new Output({ stdout: proc.stdout, stderr: proc.stderr, json: wantsJson, redactor });
  let stack: TwitchStack | undefined;
  /** Redis mode: the one connection of the command (token record, conduit record), closed after the stack. */
  let redis: Promise<RedisConnection> | undefined;
  let building: Promise<TwitchStack> | undefined;
  let owned: Promise<Dispatcher & { close(): Promise<void> }> | undefined;
  const dispatcher = (): Promise<Dispatcher> => {
    if (proc.dispatcher) return Promise.resolve(proc.dispatcher);
    owned ??= import('undici').then(({ Agent }) => new Agent({ keepAliveTimeout: 4_000, connections: 64 }));
    return owned;
  };
  try {
    const first = proc.argv[0];
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      proc.stdout.write(globalHelp(COMMANDS));
      return first === undefined ? EXIT.USAGE : EXIT.OK;
    }
    if (first === '--version' || first === '-V') {
      proc.stdout.write(proc.version + '\n');
      return EXIT.OK;
    }
    const found = findCommand(proc.argv, proc.stdout);
    if ('helpShown' in found) return found.helpShown;
    const { spec, rest } = found;
    if (rest.includes('--help') || rest.includes('-h')) {
      proc.stdout.write(commandHelp(spec));
      return EXIT.OK;
    }
    const args = parseCommandArgs(spec, rest);
    const env = mergeEnv(proc, args, out);
    // Loaded only once a command is going to run: help and usage errors stay free of zod.
    const settings: typeof import('../config/settings.js') = await import('../config/settings.js');
    for (const name of settings.SECRET_SETTINGS) redactor.add(env[name]);
    let config: Config | undefined;
    const getConfig = (): Config => {
      // Unknown setting names (a likely typo) are one warning line each on stderr, never fatal.
      config ??= settings.loadConfig(overrideSettings(env, spec, args), { warn: (line) => out.note(line) });
      // Secrets read from *_FILE or systemd credentials are only known once the config is loaded.
      for (const s of config.eventsubSecrets) redactor.add(s);
      redactor.add(config.clientSecret);
      redactor.add(config.accessToken);
      redactor.add(config.forward?.secret);
      redactor.add(config.stream?.token);
      // The Redis URL may carry a password: the URL and the password alone.
      redactor.add(config.redis?.url);
      if (config.redis && URL.canParse(config.redis.url)) redactor.add(decodeURIComponent(new URL(config.redis.url).password) || undefined);
      return config;
    };
    const logLevel = (env.EVENTSUBD_LOG_LEVEL as LogLevel | undefined) ?? 'info';
    const logger = createJsonLogger({
      // Through the output, so that a log line and a progress line on a terminal do not break each other.
      sink: out.logSink,
      level: ['debug', 'info', 'warn', 'error'].includes(logLevel) ? logLevel : 'info',
      redactor,
      now: () => proc.clock.now(),
    });
    void proc.crashed?.then((err) => logger.error('An error nothing caught; stopping gracefully (exit 1)', { error: toAppError(err) }));
    const redisConnection = (): Promise<RedisConnection> => {
      redis ??= (async () => {
        const c = getConfig();
        if (!c.redis) throw new Error('redisConnection() without EVENTSUBD_REDIS_URL');
        return (await import('./redis.js')).connectRedis({ ...c, redis: c.redis }, proc.clock, logger);
      })();
      return redis;
    };
    const ctx: CommandContext = {
      args,
      out,
      clock: proc.clock,
      logger,
      redactor,
      signal: proc.signal,
      env,
      dispatcher,
      stopped: proc.stopped,
      process: proc.process,
      config: getConfig,
      async conduitRecords() {
        const c = getConfig();
        if (!c.redis) return (await import('../conduit/conduit-store.js')).fileConduitRecordStore(c.stateDir);
        const { RedisConduitStore } = await import('../storage/redis-conduit-store.js');
        return new RedisConduitStore({ client: (await redisConnection()).client, prefix: c.redis.prefix });
      },
      twitch() {
        building ??= (async () => {
          const c = getConfig();
          settings.requireTwitchAccess(c);
          // The token cache lives in the state directory: an unusable one is named (EVENTSUBD_STATE_DIR, exit 78)
          // before any call to Twitch, as the daemon does at start.
          await (await import('../lib/state-dir.js')).ensureStateDir(c.stateDir, { uid: proc.process.uid });
          const { buildTwitchStack } = await import('../daemon/twitch-stack.js');
          // Several replicas: the token record and its mint lock are Redis's, shared with the daemons (a CLI never
          // mints beside a leader that is minting).
          let tokenStore: TokenStore | undefined;
          if (c.redis) {
            const { RedisTokenStore } = await import('../storage/redis-token-store.js');
            tokenStore = new RedisTokenStore({ client: (await redisConnection()).client, prefix: c.redis.prefix, clientId: c.clientId, clock: proc.clock, logger });
          }
          return (stack = buildTwitchStack(c, { clock: proc.clock, logger, dispatcher: await dispatcher(), pid: proc.process.pid, tokenStore }));
        })();
        return building;
      },
    };
    return await spec.run(ctx);
  } catch (err) {
    const appErr = toAppError(err);
    out.error(appErr);
    return appErr.exitCode;
  } finally {
    await stack?.close();
    await (await redis?.catch(() => undefined))?.close();
    await (await owned)?.close();
  }
}

/**
 * Longest match of command words. For a bare group such as `eventsubd token` it prints the group's help
 * and returns the exit code instead (2 when no subcommand was given, 0 for `--help`).
 */
function findCommand(argv: readonly string[], stdout: TextSink): { spec: CommandSpec; rest: string[] } | { helpShown: number } {
  let best: CommandSpec | undefined;
  for (const spec of COMMANDS) {
    if (spec.path.every((w, i) => argv[i] === w) && (!best || spec.path.length > best.path.length)) best = spec;
  }
  if (best) return { spec: best, rest: argv.slice(best.path.length) };
  const group = COMMANDS.filter((c) => c.path.length > 1 && c.path[0] === argv[0]);
  if (group.length > 0) {
    const next = argv[1];
    if (next === undefined || next === '--help' || next === '-h') {
      stdout.write(groupHelp(argv[0]!, group));
      return { helpShown: next === undefined ? EXIT.USAGE : EXIT.OK };
    }
    throw new UsageError(`Unknown command "${argv[0]} ${next}": run "eventsubd ${argv[0]} --help"`);
  }
  throw new UsageError(`Unknown command "${argv[0]}": run "eventsubd --help"`);
}

function parseCommandArgs(spec: CommandSpec, rest: string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    [SETTINGS_FILE_FLAG]: { type: 'string' },
    [LEGACY_ENV_FILE_FLAG]: { type: 'string' },
  };
  for (const [name, o] of Object.entries(spec.options)) options[name] = { type: o.type, multiple: o.multiple ?? false };
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(`${usageMessage(err)}: run "eventsubd ${spec.path.join(' ')} --help"`);
  }
  const [min, max] = spec.positionals ?? [0, 0];
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    throw new UsageError(
      n > max
        ? `Unexpected argument "${parsed.positionals[max]}": run "eventsubd ${spec.path.join(' ')} --help"`
        : `Missing argument: usage is "eventsubd ${spec.path.join(' ')} ${spec.usage}"`,
    );
  }
  return { values: parsed.values as ParsedArgs['values'], positionals: parsed.positionals };
}

/** Node's parseArgs messages are long and multi-line; keep the first sentence. */
function usageMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /^Unknown option '([^']+)'/.exec(msg);
  if (m) return `Unknown flag ${m[1]}`;
  const v = /^Option '([^']+)' argument missing/.exec(msg);
  if (v) return `Flag ${v[1]!.split(' ')[0]} needs a value`;
  return msg.split('\n')[0]!.replace(/\. To specify.*$/, '');
}

/** The flag that names the settings file (dotenv syntax) to read instead of ./.env. */
export const SETTINGS_FILE_FLAG = 'settings-file';
/**
 * Its former name, still accepted. Node 20 reads `--env-file` itself even after the script name and exits 9
 * before eventsubd runs when the file is missing (https://github.com/nodejs/node/issues/54232), so the
 * documented flag is `--settings-file`.
 */
export const LEGACY_ENV_FILE_FLAG = 'env-file';

/** env > settings file (the working directory's .env, or --settings-file PATH). */
function mergeEnv(proc: CliProcess, args: ParsedArgs, out: Output): Record<string, string | undefined> {
  const current = args.values[SETTINGS_FILE_FLAG];
  const legacy = args.values[LEGACY_ENV_FILE_FLAG];
  if (typeof current === 'string' && typeof legacy === 'string') {
    throw new UsageError(`--${SETTINGS_FILE_FLAG} and --${LEGACY_ENV_FILE_FLAG} name the same file: pass only --${SETTINGS_FILE_FLAG}`);
  }
  if (typeof legacy === 'string') {
    out.note(`eventsubd: warning: --${LEGACY_ENV_FILE_FLAG} is deprecated (Node 20 also reads it, and exits 9 when the file is missing): use --${SETTINGS_FILE_FLAG}`);
  }
  const flag = typeof legacy === 'string' ? LEGACY_ENV_FILE_FLAG : SETTINGS_FILE_FLAG;
  const explicit = typeof current === 'string' ? current : typeof legacy === 'string' ? legacy : undefined;
  let fromFile: Record<string, string> | undefined;
  try {
    fromFile = proc.readEnvFile(explicit ?? '.env');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    const what = explicit === undefined ? `.env in the working directory` : `--${flag}: ${explicit}`;
    throw new ConfigError(`Cannot read ${what} (${reason})`, { setting: explicit === undefined ? '.env' : `--${flag}`, cause: err });
  }
  if (explicit !== undefined && fromFile === undefined) {
    throw new ConfigError(`--${flag}: cannot read ${explicit}: no such file`, { setting: `--${flag}` });
  }
  return { ...(fromFile ?? {}), ...proc.env };
}

/** Flags beat the environment: e.g. `sync --file F` overrides EVENTSUBD_SUBSCRIPTIONS. */
function overrideSettings(
  env: Record<string, string | undefined>,
  spec: CommandSpec,
  args: ParsedArgs,
): Record<string, string | undefined> {
  const merged = { ...env };
  for (const [flag, setting] of Object.entries(spec.settingFlags ?? {})) {
    const v = args.values[flag];
    if (typeof v === 'string') merged[setting] = v;
  }
  return merged;
}
