/**
 * What a command is: a name, a usage line, its options and a `run` that returns an exit code. The command
 * table (`commands.ts`) lists them all; parsing, help and exit codes are generated from that table.
 */
import type { Dispatcher } from 'undici';
import type { Config } from '../config/settings.js';
import type { TwitchStack } from '../daemon/twitch-stack.js';
import type { ConduitRecordStore } from '../conduit/conduit-store.js';
import type { Clock } from '../lib/clock.js';
import type { Logger, Redactor } from '../lib/logger.js';
import type { Output } from './output.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder shown in help, e.g. 'S'. */
  value?: string;
  multiple?: boolean;
  description: string;
}

export interface CommandSpec {
  /** Words after `eventsubd`, e.g. ['subscriptions', 'list']. */
  path: readonly string[];
  summary: string;
  /** Usage after the command words, e.g. '[--status S | --type T] [--json]'. */
  usage: string;
  options: Readonly<Record<string, OptionSpec>>;
  /** Positional arguments allowed: [min, max]. Default [0, 0]. */
  positionals?: readonly [number, number];
  /** Settings are flags too: maps an option to the setting it overrides (flag > env > .env). */
  settingFlags?: Readonly<Record<string, string>>;
  run(ctx: CommandContext): Promise<number>;
}

export interface ParsedArgs {
  values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  positionals: readonly string[];
}

/** Everything a command may touch. Nothing here reads `process` directly. */
export interface CommandContext {
  args: ParsedArgs;
  out: Output;
  clock: Clock;
  logger: Logger;
  redactor: Redactor;
  /** Aborts on SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** The validated settings (flags > env > .env > defaults). Throws ConfigError on first access if invalid. */
  config(): Config;
  /** Token manager + Helix client over the config; built once, closed by the runner. */
  twitch(): Promise<TwitchStack>;
  /** Where the daemon records its conduit: STATE_DIR/conduit.json, or with EVENTSUBD_REDIS_URL the shared Redis key. */
  conduitRecords(): Promise<ConduitRecordStore>;
  /** The raw merged environment (for commands that start child components such as the emulator). */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * The HTTP client every outbound request of the command goes through (Twitch, webhooks, forwarding):
   * created on first use (undici loads only then) and closed by the runner when the command has returned.
   */
  dispatcher: () => Promise<Dispatcher>;
  /** Resolves when the process is asked to stop (long-running commands). */
  stopped: Promise<void>;
  process: ProcessControl;
}

/** The few process facts a long-running command needs; supplied by main.ts. */
export interface ProcessControl {
  pid: number;
  /** The process's uid; undefined where the platform has none. */
  uid?: number | undefined;
  /** Sends `signal` to process `pid`; false when there is no such process (or it is not ours to signal). */
  signal?(pid: number, signal: 'SIGHUP'): boolean;
  /** Registers a SIGHUP listener; returns a function that removes it. */
  onHangup(listener: () => void): () => void;
}

export function commandName(spec: CommandSpec): string {
  return spec.path.join(' ');
}

export function stringOpt(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function boolOpt(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

export function listOpt(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export const JSON_OPTION: OptionSpec = { type: 'boolean', description: 'print machine-readable JSON on stdout' };
