/**
 * The settings as `eventsubd config check` shows them: every setting with its effective value, secrets only
 * as `set` / `not set`.
 */
import { SETTING_NAMES, type Config, type SettingName } from './settings.js';

/** A setting's effective value as `config check` shows it; secrets only as `set` / `not set`. */
export type ShownValue = string | number | boolean | null;

const setOrNot = (v: string | undefined): string => (v ? 'set' : 'not set');

/** How each setting is shown; typed over every name of the schema, so a new setting cannot be left out. */
const SHOWN: { readonly [K in SettingName]: (c: Config) => ShownValue } = {
  TWITCH_CLIENT_ID: (c) => c.clientId ?? null,
  TWITCH_CLIENT_SECRET: (c) => setOrNot(c.clientSecret),
  TWITCH_ACCESS_TOKEN: (c) => setOrNot(c.accessToken),
  EVENTSUB_SECRET: (c) => (c.eventsubSecrets.length === 0 ? 'not set' : c.eventsubSecrets.length === 1 ? 'set' : `set (${c.eventsubSecrets.length} secrets)`),
  EVENTSUB_CALLBACK_URL: (c) => c.callbackUrl ?? null,
  EVENTSUBD_LISTEN: (c) => `${c.listen.host.includes(':') ? `[${c.listen.host}]` : c.listen.host}:${c.listen.port}`,
  EVENTSUBD_STATE_DIR: (c) => c.stateDir,
  EVENTSUBD_SUBSCRIPTIONS: (c) => c.subscriptionsFile ?? null,
  EVENTSUBD_PRUNE: (c) => c.prune,
  EVENTSUBD_RECONCILE_CRON: (c) => c.reconcileCron,
  TWITCH_AUTH_URL: (c) => c.authUrl,
  TWITCH_API_URL: (c) => c.apiUrl,
  EVENTSUBD_JOURNAL_MAX_BYTES: (c) => c.journalMaxBytes,
  EVENTSUBD_JOURNAL_MAX_AGE_DAYS: (c) => c.journalMaxAgeMs / 86_400_000,
  EVENTSUBD_JOURNAL_FSYNC: (c) => c.journalFsync,
  EVENTSUBD_FORWARD_URL: (c) => c.forward?.url ?? null,
  EVENTSUBD_FORWARD_SECRET: (c) => (c.forward ? setOrNot(c.forward.secret) : null),
  EVENTSUBD_FORWARD_CONCURRENCY: (c) => c.forward?.concurrency ?? null,
  EVENTSUBD_FORWARD_MAX_BACKOFF_MS: (c) => c.forward?.maxBackoffMs ?? null,
  EVENTSUBD_STREAM_PATH: (c) => c.stream?.path ?? 'off',
  EVENTSUBD_STREAM_TOKEN: (c) => (c.stream ? setOrNot(c.stream.token) : null),
  TWITCH_REDIRECT_URL: (c) => c.redirectUrl,
  EVENTSUBD_TRANSPORT: (c) => c.transport,
  EVENTSUBD_CONDUIT_ID: (c) => c.conduit.id ?? null,
  EVENTSUBD_CONDUIT_SHARDS: (c) => c.conduit.shards,
  TWITCH_EVENTSUB_WS_URL: (c) => c.conduit.wsUrl,
  EVENTSUBD_REDIS_URL: (c) => setOrNot(c.redis?.url),
  EVENTSUBD_REDIS_PREFIX: (c) => c.redis?.prefix ?? null,
  EVENTSUBD_REDIS_DURABILITY: (c) =>
    c.redis ? (c.redis.durability.kind === 'replicas' ? `replicas:${c.redis.durability.replicas}` : c.redis.durability.kind) : null,
  EVENTSUBD_REDIS_LEASE_MS: (c) => c.redis?.leaseMs ?? null,
  EVENTSUBD_LOG_LEVEL: (c) => c.logLevel,
};

/**
 * Every setting with its effective value, in SETTING_NAMES order, for `config check`. Secrets appear as
 * `set` or `not set`, never their value; `null` is a setting that is unset or unused (forwarding off).
 */
export function describeSettings(config: Config): Record<string, ShownValue> {
  return Object.fromEntries(SETTING_NAMES.map((name) => [name, SHOWN[name as SettingName](config)]));
}
