/**
 * The command table: the single source of parsing, help and dispatch. Each entry declares its words, usage
 * and options here, statically; its code (`commands/*.ts`) is imported only when the command runs, so
 * `--help`, a usage error or `run` never load what another command needs (the emulator, Helix, YAML...).
 */
import { JSON_OPTION, type CommandContext, type CommandSpec } from './command.js';

type CommandRun = (ctx: CommandContext) => Promise<number>;

/** A `run` that imports the command's module on first use and calls its export `name`. */
function lazy<K extends string>(load: () => Promise<Record<K, CommandRun>>, name: K): CommandSpec['run'] {
  return async (ctx) => (await load())[name](ctx);
}

const JSON_ONLY = { json: JSON_OPTION };

const TABLE: CommandSpec[] = [
  {
    path: ['run'],
    summary: 'the daemon: receiver + durable journal + token lifecycle + continuous subscription sync',
    usage: '',
    options: {},
    run: lazy(() => import('./commands/run.js'), 'runDaemon'),
  },
  {
    path: ['subscriptions', 'list'],
    summary: 'list the EventSub subscriptions of this client (every page)',
    usage: '[--status S | --type T | --user-id U] [--json]',
    options: {
      status: { type: 'string', value: 'S', description: 'only subscriptions with this status' },
      type: { type: 'string', value: 'T', description: 'only subscriptions of this type' },
      'user-id': { type: 'string', value: 'U', description: 'only subscriptions whose condition names this user' },
      json: JSON_OPTION,
    },
    run: lazy(() => import('./commands/subscriptions-list.js'), 'subscriptionsList'),
  },
  {
    path: ['subscriptions', 'create'],
    summary: 'create one webhook subscription (a 409 adopts the existing one)',
    usage: '--type T --version V --condition key=value [...] [--json]',
    options: {
      type: { type: 'string', value: 'T', description: 'subscription type, e.g. stream.online' },
      version: { type: 'string', value: 'V', description: 'subscription version, e.g. 1' },
      condition: { type: 'string', value: 'key=value', multiple: true, description: 'a condition field (repeat for more)' },
      json: JSON_OPTION,
    },
    run: lazy(() => import('./commands/subscriptions-create.js'), 'subscriptionsCreate'),
  },
  {
    path: ['subscriptions', 'delete'],
    summary: 'delete subscriptions by id, or every one with a status (needs --yes)',
    usage: 'ID... | --status S [--yes] [--json]',
    options: {
      status: { type: 'string', value: 'S', description: 'delete every subscription with this status' },
      yes: { type: 'boolean', description: 'confirm a delete by --status' },
      json: JSON_OPTION,
    },
    positionals: [0, 1000],
    run: lazy(() => import('./commands/subscriptions-delete.js'), 'subscriptionsDelete'),
  },
  {
    path: ['subscriptions', 'sync'],
    summary: 'make Twitch match the subscriptions file (create, recreate, and with --prune delete)',
    usage: '[--file F] [--dry-run] [--prune] [--json]',
    options: {
      file: { type: 'string', value: 'F', description: 'the subscriptions file (default: EVENTSUBD_SUBSCRIPTIONS)' },
      'dry-run': { type: 'boolean', description: 'print the plan and change nothing' },
      prune: { type: 'boolean', description: 'also delete owned subscriptions the file no longer declares' },
      json: JSON_OPTION,
    },
    settingFlags: { file: 'EVENTSUBD_SUBSCRIPTIONS' },
    run: lazy(() => import('./commands/subscriptions-sync.js'), 'subscriptionsSync'),
  },
  {
    path: ['authorize'],
    summary: 'let a user grant the scopes the declared subscriptions need (authorization code flow, or --device)',
    usage: '[--user ID|LOGIN] [--scopes S,S...] [--device] [--json]',
    options: {
      user: { type: 'string', value: 'ID', description: 'only this user (the numeric id of the declared subscriptions; a login goes with --scopes)' },
      scopes: { type: 'string', value: 'S,S', description: 'ask for exactly these scopes (always runs the flow: a user may re-consent)' },
      device: { type: 'boolean', description: 'the device code flow: a code to enter at twitch.tv/activate, no redirect needed' },
      json: JSON_OPTION,
    },
    run: lazy(() => import('./commands/authorize.js'), 'authorize'),
  },
  {
    path: ['authorizations', 'list'],
    summary: 'who granted what (as Twitch shows it), and which declared subscriptions wait for whom',
    usage: '[--json]',
    options: JSON_ONLY,
    run: lazy(() => import('./commands/authorizations-list.js'), 'authorizationsList'),
  },
  {
    path: ['users', 'lookup'],
    summary: "print the numeric user id of each login (conditions name users by id), with the app token",
    usage: 'LOGIN... [--json]',
    options: JSON_ONLY,
    positionals: [1, 1000],
    run: lazy(() => import('./commands/users-lookup.js'), 'usersLookup'),
  },
  {
    path: ['conduit', 'status'],
    summary: "Twitch's view of the daemon's conduit: shard count, each shard's status and WebSocket session",
    usage: '[--json]',
    options: JSON_ONLY,
    run: lazy(() => import('./commands/conduit-status.js'), 'conduitStatus'),
  },
  {
    path: ['token', 'status'],
    summary: 'show the cached app token: state, expiry, last validation (never the token)',
    usage: '[--json]',
    options: JSON_ONLY,
    run: lazy(() => import('./commands/token.js'), 'tokenStatus'),
  },
  {
    path: ['token', 'rotate'],
    summary: 'mint a new app token, then revoke the old one',
    usage: '[--json]',
    options: JSON_ONLY,
    run: lazy(() => import('./commands/token.js'), 'tokenRotate'),
  },
  {
    path: ['token', 'revoke'],
    summary: 'revoke the cached app token and remove it from the cache',
    usage: '[--json]',
    options: JSON_ONLY,
    run: lazy(() => import('./commands/token.js'), 'tokenRevoke'),
  },
  {
    path: ['events', 'tail'],
    summary: 'print journaled notifications and revocations (the last 10, or all after --since)',
    usage: '[--follow] [--since SEQ] [--json]',
    options: {
      follow: { type: 'boolean', description: 'keep printing new records as they are journaled' },
      since: { type: 'string', value: 'SEQ', description: 'records after this sequence number (0: everything retained)' },
      json: JSON_OPTION,
    },
    run: lazy(() => import('./commands/events-tail.js'), 'eventsTail'),
  },
  {
    path: ['config', 'check'],
    summary: 'validate settings and the subscriptions file; print them without secrets',
    usage: '[--json]',
    options: JSON_ONLY,
    run: lazy(() => import('./commands/config-check.js'), 'configCheck'),
  },
  {
    path: ['emulate'],
    summary: 'run a local Twitch (OAuth + Helix EventSub + webhook verification) for demos and tests',
    usage: '[--port P] [--deliver-to URL] [--client-id ID --client-secret S] [--redirect-uri URL[,URL...]] [--bucket N/MS] [--state FILE]',
    options: {
      port: { type: 'string', value: 'P', description: 'port to listen on, on 127.0.0.1 (default 8081)' },
      'deliver-to': {
        type: 'string',
        value: 'URL',
        description: 'loopback origin that receives the webhook requests meant for the public callback, e.g. http://127.0.0.1:8080',
      },
      'client-id': { type: 'string', value: 'ID', description: "the client ID to accept (default: TWITCH_CLIENT_ID, else the --state file's, else generated)" },
      'client-secret': { type: 'string', value: 'S', description: 'its client secret (default: TWITCH_CLIENT_SECRET, else as the client ID)' },
      'redirect-uri': {
        type: 'string',
        value: 'URL',
        description: "the app's OAuth Redirect URLs, comma-separated, at most 10 (default http://localhost:3000)",
      },
      bucket: { type: 'string', value: 'N/MS', description: 'rate-limit bucket: N points per MS milliseconds (default 800/60000)' },
      state: {
        type: 'string',
        value: 'FILE',
        description: 'keep clients, tokens, grants, subscriptions and users in FILE across restarts (written atomically on each change)',
      },
    },
    run: lazy(() => import('./commands/emulate.js'), 'emulate'),
  },
  {
    path: ['trigger'],
    summary: 'sign and send test notifications, revocations or verifications of any type the way Twitch does',
    usage: 'TYPE|NAME [--to URL] [--secret S] [--version V] [--count N] [--message-type notification|revocation|webhook_callback_verification] [--json]',
    options: {
      to: { type: 'string', value: 'URL', description: 'the webhook URL to POST to (default: this receiver, http://EVENTSUBD_LISTEN + the path of EVENTSUB_CALLBACK_URL)' },
      secret: { type: 'string', value: 'S', description: 'the webhook secret to sign with, 10-100 ASCII characters (default: the first of EVENTSUB_SECRET)' },
      version: { type: 'string', value: 'V', description: "the subscription version (default: the type's latest)" },
      count: { type: 'string', value: 'N', description: 'send N messages, each with a new message id (default 1); exit 1 if any is not answered 2xx' },
      'message-type': { type: 'string', value: 'T', description: 'notification (default), revocation or webhook_callback_verification' },
      status: { type: 'string', value: 'S', description: 'revocation reason (default authorization_revoked)' },
      broadcaster: { type: 'string', value: 'ID', description: "broadcaster user id in the condition and event (default: the example's, 70885244)" },
      'subscription-id': { type: 'string', value: 'ID', description: 'subscription id (default: random)' },
      'message-id': { type: 'string', value: 'ID', description: 'Twitch-Eventsub-Message-Id (default: random; repeat one to test dedup)' },
      timestamp: { type: 'string', value: 'T', description: 'Twitch-Eventsub-Message-Timestamp, sent and signed verbatim (default: now)' },
      json: JSON_OPTION,
    },
    positionals: [1, 1],
    run: lazy(() => import('./commands/trigger.js'), 'trigger'),
  },
];

export const COMMANDS: readonly CommandSpec[] = Object.freeze(TABLE);
