/**
 * The desired-subscriptions file (README.md "The subscriptions file"): YAML or JSON, validated with a
 * strict zod schema and against the catalogue of subscription types (./catalogue-check.ts), then frozen.
 * Every entry follows EVENTSUBD_TRANSPORT (SPEC "Conduit transport"): the file can be checked without knowing
 * where events will go (the daemon in conduit mode has no conduit yet when it starts), and entries get their
 * delivery target (`deliveryTarget`: the webhook callback and first EVENTSUB_SECRET, or the conduit) when a
 * sync runs. `ownershipOf` says which subscriptions such a sync may touch. Every failure is a ConfigError
 * (CONFIG_INVALID, exit 78) with one line naming the file, the entry's line, the path inside it and the rule,
 * e.g. `subs.yaml:7: subscriptions[3].condition.broadcaster_user_id: expected ...`; the problems of every
 * entry are listed at once (`subs.yaml: 3 problems: line 2: ...; line 5: ...`).
 * No value from the file other than type, version and condition ever reaches a message, and the secret never.
 */
import { open } from 'node:fs/promises';
import { isSeq, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../lib/errors.js';
import { nearestName } from '../lib/edit-distance.js';
import {
  describeSubscription,
  subscriptionKey,
  type DeclaredSubscription,
  type DeliveryTarget,
  type DesiredSubscription,
  type Ownership,
} from '../twitch/subscription.js';
import { checkEntry } from './catalogue-check.js';
import { ConfigProblemsError, joinProblems } from './problems.js';
// Type only: settings.ts loads node-cron, which the daemon's sync does not need (test/cli/startup-imports.test.ts).
import type { Config } from './settings.js';

/** The file may not be larger than this many bytes. */
export const MAX_SUBSCRIPTIONS_FILE_BYTES = 5 * 1024 * 1024;
/** The file may not declare more entries than this (Twitch's default max_total_cost is 10 000). */
export const MAX_SUBSCRIPTION_ENTRIES = 10_000;

const SETTING = 'EVENTSUBD_SUBSCRIPTIONS';
const TYPE_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const VERSION_RE = /^([1-9][0-9]{0,3}|beta)$/;
const FIELD_RE = /^[a-z][a-z0-9_]{0,63}$/;
/** Every condition field naming a user (broadcaster_user_id, moderator_user_id, user_id...) holds a numeric ID. */
const USER_FIELD_RE = /(^|_)user_id$/;
const USER_ID_RE = /^[0-9]{1,20}$/;
const MAX_VALUE_LENGTH = 256;

const Condition = z.unknown().transform((raw, ctx) => {
  if (raw === undefined) return fail(ctx, [], 'is required');
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return fail(ctx, [], `expected a mapping such as { broadcaster_user_id: "12345" }, got ${typeName(raw)}`);
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0) return fail(ctx, [], 'must name at least one condition field');
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (!FIELD_RE.test(key)) {
      fail(ctx, [key], 'is not a valid condition field name (lower-case letters, digits and _)');
      continue;
    }
    const text = stringOrInteger(value, ctx, [key], 'a string');
    if (text === undefined) continue;
    if (text === '') fail(ctx, [key], 'must not be empty');
    else if (text.length > MAX_VALUE_LENGTH) fail(ctx, [key], `must be at most ${MAX_VALUE_LENGTH} characters`);
    else if (USER_FIELD_RE.test(key) && !USER_ID_RE.test(text)) {
      fail(ctx, [key], 'expected a string of digits (a Twitch user ID such as "12345")');
    } else out[key] = text;
  }
  return out;
});

/** EVENTSUBD_TRANSPORT: how every declared subscription is delivered. */
export type TransportSetting = Config['transport'];

/**
 * Only `{ method: webhook }` or `{ method: conduit }`, and only the one EVENTSUBD_TRANSPORT names (checked with
 * the entry): the callback, the secret and the conduit come from the settings and the daemon, never from the file.
 */
const Transport = z.unknown().transform((raw, ctx): TransportSetting => {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return fail(ctx, [], `expected a mapping such as { method: webhook }, got ${typeName(raw)}`);
  }
  const { method, ...rest } = raw as Record<string, unknown>;
  if (method === undefined) return fail(ctx, ['method'], 'is required');
  if (method === 'websocket') {
    return fail(ctx, ['method'], 'websocket transport needs a user token; eventsubd manages webhook and conduit subscriptions (app token)');
  }
  if (method !== 'webhook' && method !== 'conduit') return fail(ctx, ['method'], 'expected "webhook" or "conduit" (or no transport key: it follows EVENTSUBD_TRANSPORT)');
  for (const key of Object.keys(rest)) {
    if (key === 'callback') fail(ctx, [key], 'is not allowed here: the callback is EVENTSUB_CALLBACK_URL');
    else if (key === 'secret') fail(ctx, [key], 'is not allowed here: the secret comes from EVENTSUB_SECRET');
    else if (key === 'conduit_id') fail(ctx, [key], 'is not allowed here: the conduit is EVENTSUBD_CONDUIT_ID or the one the daemon creates');
    else fail(ctx, [key], 'unknown key (allowed: method)');
  }
  return method;
});

const Entry = z.strictObject(
  {
    type: z
      .string({ error: (iss) => requiredOr('a string', iss.input) })
      .regex(TYPE_RE, 'expected an EventSub type such as "stream.online"'),
    version: z
      .unknown()
      .transform((v, ctx) =>
        v === undefined ? fail(ctx, [], 'is required') : stringOrInteger(v, ctx, [], 'a string such as "1"'),
      )
      .pipe(z.string().regex(VERSION_RE, 'expected a version such as "1", "2" or "beta"')),
    condition: Condition,
    transport: Transport.optional(),
  },
  { error: (iss) => `expected a mapping with type, version and condition, got ${typeName(iss.input)}` },
);

/** The file's shape; each entry is then checked on its own, so that every entry's problems are reported. */
const FileSchema = z.strictObject(
  {
    subscriptions: z
      .array(z.unknown(), { error: (iss) => requiredOr('a list', iss.input) })
      .max(MAX_SUBSCRIPTION_ENTRIES, `must have at most ${MAX_SUBSCRIPTION_ENTRIES} entries`),
  },
  { error: (iss) => `expected a mapping with a "subscriptions" list, got ${typeName(iss.input)}` },
);

export interface ResolveOptions {
  /**
   * EVENTSUBD_TRANSPORT: what every entry follows; a `transport:` key in the file must name it. Default: the
   * method of `target`, else `webhook`.
   */
  transport?: TransportSetting | undefined;
  /** Where the entries go (`deliveryTarget`); given, each entry gets it as its `transport`. */
  target?: DeliveryTarget | undefined;
  /**
   * The webhook target in two parts (EVENTSUB_CALLBACK_URL and the first EVENTSUB_SECRET, as `requireWebhook`
   * returns them); either given means webhook mode, and both are then required as soon as the file declares a
   * subscription. Ignored when `target` is given.
   */
  callbackUrl?: string | undefined;
  secret?: string | undefined;
}

/** Options that give the entries a target: the result is DesiredSubscription[]; without, DeclaredSubscription[]. */
export type WithTarget = { target: DeliveryTarget } | { callbackUrl: string; secret: string };

export interface ParseOptions extends ResolveOptions {
  /** Named in error messages; a name ending in `.json` is parsed as strict JSON. */
  fileName: string;
}

/**
 * Parses and validates the file's text. Pure. Without a target (`target`, or `callbackUrl` and `secret`) the
 * file is only checked, against `transport`, and the entries come back without one: `withTarget` adds it later.
 * @returns a frozen list (entries, conditions and transports frozen too), in file order.
 * @throws ConfigError (CONFIG_INVALID; a ConfigProblemsError listing each problem when entries are wrong) with a
 *   one-line message naming the file, the line, the path and the rule.
 */
export function parseSubscriptionsFile(text: string, options: ParseOptions & WithTarget): readonly DesiredSubscription[];
export function parseSubscriptionsFile(text: string, options: ParseOptions): readonly DeclaredSubscription[];
export function parseSubscriptionsFile(text: string, options: ParseOptions): readonly DeclaredSubscription[] {
  const file = options.fileName;
  if (Buffer.byteLength(text, 'utf8') > MAX_SUBSCRIPTIONS_FILE_BYTES) throw tooBig(file);
  const data = /\.json$/i.test(file) ? parseJson(text.replace(/^\uFEFF/, ''), file) : parseYaml(text, file);
  if (data === null || data === undefined) {
    throw configError(`${file}: the file is empty: expected a "subscriptions" list`);
  }
  const parsed = FileSchema.safeParse(data);
  if (!parsed.success) throw configError(`${file}: ${formatIssues(parsed.error.issues)}`);
  const mode = options.transport ?? options.target?.method ?? 'webhook';
  const entries = checkEntries(parsed.data.subscriptions, { file, text, mode });
  const declared = Object.freeze(
    entries.map((entry): DeclaredSubscription => Object.freeze({ type: entry.type, version: entry.version, condition: Object.freeze({ ...entry.condition }) })),
  );
  const target = options.target ?? legacyWebhook(options, entries.length > 0);
  return target ? withTarget(declared, target) : declared;
}

/** The webhook target of the two-part form, or undefined when neither part is given (a check only). */
function legacyWebhook(options: ParseOptions, declares: boolean): DeliveryTarget | undefined {
  if (options.callbackUrl === undefined && options.secret === undefined) return undefined;
  const file = options.fileName;
  if (declares && !options.callbackUrl) {
    const setting = 'EVENTSUB_CALLBACK_URL';
    throw configError(`${file} declares webhook subscriptions but ${setting} is not set`, setting);
  }
  if (declares && !options.secret) {
    throw configError(`${file} declares webhook subscriptions but EVENTSUB_SECRET is not set`, 'EVENTSUB_SECRET');
  }
  return { method: 'webhook', callback: options.callbackUrl ?? '', secret: options.secret ?? '' };
}

/** The declared entries with their delivery target, frozen (the target too), in the same order. */
export function withTarget(declared: readonly DeclaredSubscription[], target: DeliveryTarget): readonly DesiredSubscription[] {
  const transport: DeliveryTarget = Object.freeze({ ...target });
  return Object.freeze(declared.map((d): DesiredSubscription => Object.freeze({ type: d.type, version: d.version, condition: d.condition, transport })));
}

/**
 * Where this run's subscriptions go, from the settings: in webhook mode EVENTSUB_CALLBACK_URL and the first
 * EVENTSUB_SECRET (the one that signs new subscriptions); in conduit mode `conduitId` (the daemon's conduit, or
 * the recorded one), else EVENTSUBD_CONDUIT_ID.
 * @throws ConfigError (CONFIG_INVALID, exit 78) naming the missing setting: EVENTSUB_CALLBACK_URL or
 *   EVENTSUB_SECRET in webhook mode (the words of `requireWebhook` in settings.ts), EVENTSUBD_CONDUIT_ID in
 *   conduit mode when no conduit is known.
 */
export function deliveryTarget(config: Pick<Config, 'transport' | 'conduit' | 'callbackUrl' | 'eventsubSecrets'>, conduitId?: string): DeliveryTarget {
  if (config.transport === 'conduit') {
    const id = conduitId ?? config.conduit.id;
    if (!id) {
      throw new ConfigError(
        'No conduit yet: start `eventsubd run` once in conduit mode, it creates one, or set EVENTSUBD_CONDUIT_ID',
        { setting: 'EVENTSUBD_CONDUIT_ID' },
      );
    }
    return Object.freeze({ method: 'conduit', conduit_id: id });
  }
  if (!config.callbackUrl) {
    throw new ConfigError('EVENTSUB_CALLBACK_URL is required for webhook subscriptions', { setting: 'EVENTSUB_CALLBACK_URL' });
  }
  const secret = config.eventsubSecrets[0];
  if (!secret) throw new ConfigError('EVENTSUB_SECRET is required for webhook subscriptions', { setting: 'EVENTSUB_SECRET' });
  return Object.freeze({ method: 'webhook', callback: config.callbackUrl, secret });
}

/**
 * What a sync may touch (SPEC "Conduit transport", "Subscriptions"), whatever EVENTSUBD_TRANSPORT says: webhooks
 * to EVENTSUB_CALLBACK_URL when it is set, and subscriptions on `conduitIds` (the recorded conduit and those it
 * replaced) and on EVENTSUBD_CONDUIT_ID. So a switch of transport, either way, finds the old subscriptions as
 * owned and migrates them (twins first), and a replaced conduit's leftovers are pruned.
 */
export function ownershipOf(config: Pick<Config, 'callbackUrl' | 'conduit'>, conduitIds: readonly (string | undefined)[]): Ownership {
  const ids = [...conduitIds, config.conduit.id].filter((id): id is string => id !== undefined && id !== '');
  return Object.freeze({ callbackUrl: config.callbackUrl, conduitIds: Object.freeze([...new Set(ids)]) });
}

type CheckedEntry = z.output<typeof Entry>;

/**
 * Checks every entry (its shape, its transport key against `mode`, then the catalogue: type, version, condition
 * fields) and the duplicates.
 * @throws ConfigProblemsError listing every problem of the file, each with the entry's line and path.
 */
function checkEntries(items: readonly unknown[], source: { file: string; text: string; mode: TransportSetting }): CheckedEntry[] {
  const { file, text, mode } = source;
  const problems: Array<{ index: number; message: string }> = [];
  const out: CheckedEntry[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    const at = (path: Path): string => formatPath(['subscriptions', index, ...path]);
    const parsed = Entry.safeParse(item);
    if (!parsed.success) {
      for (const line of issueLines(parsed.error.issues, ['subscriptions', index], ENTRY_KEYS)) problems.push({ index, message: line });
      return;
    }
    const entry = parsed.data;
    if (entry.transport !== undefined && entry.transport !== mode) {
      problems.push({ index, message: `${at(['transport', 'method'])}: ${transportMismatch(entry.transport, mode)}` });
      return;
    }
    const wrong = checkEntry(entry);
    for (const p of wrong) problems.push({ index, message: `${at(p.path)}: ${p.message}` });
    if (wrong.length > 0) return;
    // Conditions compare as strings; the callback is the same for every entry of one file.
    const key = subscriptionKey(entry.type, entry.version, entry.condition, '');
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else problems.push({ index, message: `${at([])} duplicates subscriptions[${first}] (${describeSubscription(entry)})` });
    out.push(entry);
  });
  if (problems.length === 0) return out;
  const lines = entryLines(text);
  const where = (index: number): string => (lines[index] === undefined ? '' : `:${lines[index]}`);
  if (problems.length === 1) {
    const [p] = problems as [{ index: number; message: string }];
    throw new ConfigProblemsError(`${file}${where(p.index)}: ${p.message}`, [{ setting: SETTING, message: p.message }]);
  }
  const listed = problems.map((p) => ({
    setting: SETTING,
    message: lines[p.index] === undefined ? p.message : `line ${lines[p.index]}: ${p.message}`,
  }));
  throw new ConfigProblemsError(joinProblems(listed, file), listed);
}

/** Every entry follows EVENTSUBD_TRANSPORT: a `transport:` key naming another one is a mistake, said plainly. */
function transportMismatch(declared: TransportSetting, mode: TransportSetting): string {
  return (
    `${declared} transport does not match EVENTSUBD_TRANSPORT=${mode}: every declared subscription follows ` +
    `EVENTSUBD_TRANSPORT; set EVENTSUBD_TRANSPORT=${declared}, or remove this key`
  );
}

/** The line (1-based) where each entry of the `subscriptions` list starts; computed only to word an error. */
function entryLines(text: string): Array<number | undefined> {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  const list = doc.get('subscriptions', true);
  if (!isSeq(list)) return [];
  return list.items.map((node) => {
    const offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
    return offset === undefined ? undefined : counter.linePos(offset).line;
  });
}

export interface LoadOptions extends ResolveOptions {
  /** Reads the whole file; defaults to a capped read from disk. Injected by tests. */
  readFile?: (path: string) => Promise<string | Uint8Array>;
}

/**
 * Reads the file at `path` (at most MAX_SUBSCRIPTIONS_FILE_BYTES) and parses it (`parseSubscriptionsFile`: with
 * a target the entries come back with it; without, the file is only checked against `transport`).
 * @throws ConfigError (CONFIG_INVALID) when the file is missing, unreadable, too big, not UTF-8 or invalid.
 */
export async function loadSubscriptionsFile(path: string, options: LoadOptions & WithTarget): Promise<readonly DesiredSubscription[]>;
export async function loadSubscriptionsFile(path: string, options?: LoadOptions): Promise<readonly DeclaredSubscription[]>;
export async function loadSubscriptionsFile(path: string, options: LoadOptions = {}): Promise<readonly DeclaredSubscription[]> {
  let raw: string | Uint8Array;
  try {
    raw = await (options.readFile ?? readCapped)(path);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw configError(`${path}: cannot read the subscriptions file: ${describeReadError(err)}`, SETTING, err);
  }
  let text: string;
  if (typeof raw === 'string') text = raw.replace(/^\uFEFF/, '');
  else {
    if (raw.byteLength > MAX_SUBSCRIPTIONS_FILE_BYTES) throw tooBig(path);
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch (err) {
      throw configError(`${path}: the file is not valid UTF-8`, SETTING, err);
    }
  }
  const { readFile: _read, ...resolve } = options;
  return parseSubscriptionsFile(text, { ...resolve, fileName: path });
}

/** Reads at most one byte more than the cap, so a huge file (or /dev/zero) is never read whole. */
async function readCapped(path: string): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(MAX_SUBSCRIPTIONS_FILE_BYTES + 1);
    let length = 0;
    while (length < buf.length) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_SUBSCRIPTIONS_FILE_BYTES) throw tooBig(path);
    return buf.subarray(0, length);
  } finally {
    await handle.close();
  }
}

function parseYaml(text: string, file: string): unknown {
  // uniqueKeys rejects a repeated key; maxAliasCount bounds alias expansion ("billion laughs").
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const error = doc.errors[0];
  if (error) {
    const where = error.linePos ? `:${error.linePos[0].line}:${error.linePos[0].col}` : '';
    const reason = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw configError(`${file}${where}: invalid YAML: ${reason}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw configError(`${file}: invalid YAML: ${err instanceof Error ? err.message.split('\n')[0] : 'cannot be read'}`);
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : '';
    const position = /at position (\d+)/.exec(message)?.[1];
    // V8 may quote a snippet of the input ('Unexpected token x, "..." is not valid JSON'): drop it.
    const reason = message
      .replace(/, (\.\.\.)?".*" is not valid JSON$/s, '')
      .replace(/ in JSON at position \d+.*$/s, '');
    let where = '';
    if (position !== undefined) {
      const before = text.slice(0, Number(position)).split('\n');
      where = `:${before.length}:${(before.at(-1)?.length ?? 0) + 1}`;
    } else {
      // Some V8 messages carry no position; YAML's parser (a JSON superset) usually locates the fault.
      const pos = parseDocument(text).errors[0]?.linePos?.[0];
      if (pos) where = `:${pos.line}:${pos.col}`;
    }
    throw configError(`${file}${where}: invalid JSON: ${reason || 'cannot be parsed'}`, SETTING, err);
  }
}

function describeReadError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'it does not exist (ENOENT)';
  if (code === 'EACCES' || code === 'EPERM') return `permission denied (${code})`;
  if (code === 'EISDIR') return 'it is a directory (EISDIR)';
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message.split('\n')[0] ?? 'unknown error' : 'unknown error';
}

function tooBig(file: string): ConfigError {
  return configError(`${file}: the file is larger than ${MAX_SUBSCRIPTIONS_FILE_BYTES} bytes (5 MiB)`);
}

type Ctx = z.core.$RefinementCtx;
type Path = (string | number)[];

/** Adds a custom issue at `path` (relative to the value being checked) and returns z.NEVER. */
function fail(ctx: Ctx, path: Path, message: string): never {
  ctx.addIssue({ code: 'custom', path, message });
  return z.NEVER;
}

/** A string, or an integer converted to one (YAML reads `version: 1` and unquoted IDs as numbers). */
function stringOrInteger(value: unknown, ctx: Ctx, path: Path, expected: string): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isInteger(value)) {
    if (Number.isSafeInteger(value)) return String(value);
    fail(ctx, path, 'is too large to be read exactly as a number: quote it');
    return undefined;
  }
  fail(ctx, path, `expected ${expected}, got ${typeName(value)}`);
  return undefined;
}

/** `is required` for a missing value, else `expected <what>, got <kind>`. */
function requiredOr(what: string, input: unknown): string {
  return input === undefined ? 'is required' : `expected ${what}, got ${typeName(input)}`;
}

/** The kind of a value, never the value itself (it could be a secret pasted in the wrong place). */
function typeName(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}

const TOP_KEYS = ['subscriptions'];
const ENTRY_KEYS = ['type', 'version', 'condition', 'transport'];

/** One line for the file's top level: its first issue, unknown keys first (a misspelt key is usually the root cause). */
function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issueLines(issues, [], TOP_KEYS)[0] ?? 'invalid';
}

/**
 * One `path: rule` per issue, `prefix` before each path, unknown keys first, each with the nearest allowed
 * key when there is one (`typ` → did you mean "type"?).
 */
function issueLines(issues: readonly z.core.$ZodIssue[], prefix: Path, allowed: readonly string[]): string[] {
  const unknown = issues.filter((i) => i.code === 'unrecognized_keys');
  const suggested = new Set<string>();
  return [...unknown, ...issues.filter((i) => i.code !== 'unrecognized_keys')].flatMap((issue) => {
    if (issue.code !== 'unrecognized_keys') {
      // `typ: x` already said "did you mean type?": "type: is required" would say it twice.
      if (issue.message === 'is required' && suggested.has(formatPath(issue.path))) return [];
      const path = formatPath([...prefix, ...issue.path]);
      return [path ? `${path}: ${issue.message}` : issue.message];
    }
    // Unknown keys below the entry's own level (none today) are listed with the entry's keys as a hint.
    return issue.keys.map((key) => {
      const near = nearestName(key, allowed.filter((k) => !issue.keys.includes(k)));
      if (near) suggested.add(formatPath([...issue.path, near]));
      const hint = near ? `unknown key: did you mean "${near}"?` : `unknown key (allowed: ${allowed.join(', ')})`;
      return `${formatPath([...prefix, ...issue.path, key])}: ${hint}`;
    });
  });
}

/** `subscriptions[3].condition.broadcaster_user_id`; odd keys are quoted. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(part))) out += out ? `.${String(part)}` : String(part);
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function configError(message: string, setting = SETTING, cause?: unknown): ConfigError {
  return new ConfigError(message, cause === undefined ? { setting } : { setting, cause });
}
