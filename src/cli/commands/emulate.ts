import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../../lib/errors.js';
import { startEmulator, type EmulatorOptions } from '../../emulator/index.js';
import { isLoopbackHost, secretSetting } from '../../config/settings.js';
import { stringOpt, type CommandContext } from '../command.js';

/**
 * `eventsubd emulate`: runs the local Twitch until SIGINT/SIGTERM. Its client is `--client-id`/`--client-secret`,
 * else TWITCH_CLIENT_ID/TWITCH_CLIENT_SECRET of the environment or .env (the secret also from TWITCH_CLIENT_SECRET_FILE
 * or the systemd credential, as `run` reads it) (so that a daemon configured with them
 * keeps working across restarts), else the `--state` file's, else a generated one. Declared (flags, help) in
 * ../commands.ts.
 */
export async function emulate(ctx: CommandContext): Promise<number> {
  const options: EmulatorOptions = { host: '127.0.0.1', port: parsePort(stringOpt(ctx.args, 'port') ?? '8081') };
  const deliverTo = stringOpt(ctx.args, 'deliver-to');
  if (deliverTo !== undefined) {
    let host: string;
    try {
      host = new URL(deliverTo).hostname;
    } catch {
      throw new ConfigError(`--deliver-to must be a URL such as http://127.0.0.1:8080: current value is "${deliverTo}"`);
    }
    if (!isLoopbackHost(host)) throw new ConfigError('--deliver-to must be a loopback address (127.0.0.1, ::1, localhost)');
    options.deliverTo = deliverTo.replace(/\/+$/, '');
  }
  const { clientId, clientSecret } = credentials(ctx);
  const redirectUris = parseRedirectUris(stringOpt(ctx.args, 'redirect-uri'));
  if (clientId && clientSecret) options.clients = [{ clientId, clientSecret, redirectUris }];
  else if (redirectUris) options.clients = [{ redirectUris }];
  const bucket = stringOpt(ctx.args, 'bucket');
  if (bucket !== undefined) options.bucket = parseBucket(bucket);
  const state = stringOpt(ctx.args, 'state');
  if (state !== undefined) options.stateFile = checkStatePath(state);
  options.logger = ctx.logger.child({ component: 'emulator' });
  options.dispatcher = await ctx.dispatcher();
  const emulator = await startEmulator(options);
  const client = emulator.clients[0]!;
  ctx.out.note(`Twitch emulator listening on ${emulator.url}`);
  ctx.out.result(
    {
      url: emulator.url,
      auth_url: emulator.authUrl,
      api_url: emulator.apiUrl,
      eventsub_ws_url: `${emulator.url.replace(/^http/, 'ws')}/ws`,
      client_id: client.clientId,
      client_secret: client.clientSecret,
    },
    () => [
      '# Point eventsubd at the emulator with these settings:',
      `TWITCH_AUTH_URL=${emulator.authUrl}`,
      `TWITCH_API_URL=${emulator.apiUrl}`,
      `TWITCH_CLIENT_ID=${client.clientId}`,
      `TWITCH_CLIENT_SECRET=${client.clientSecret}`,
      '# conduit mode (EVENTSUBD_TRANSPORT=conduit): the EventSub WebSocket server',
      `TWITCH_EVENTSUB_WS_URL=${emulator.url.replace(/^http/, 'ws')}/ws`,
      '# twitch-cli style mock paths are served too: ' + `${emulator.url}/auth/token, /auth/validate, /auth/revoke, /auth/authorize, /mock/...`,
    ],
  );
  await ctx.stopped;
  await emulator.close();
  return 0;
}

/** The flags, else the settings; either pair goes together. */
function credentials(ctx: CommandContext): { clientId: string | undefined; clientSecret: string | undefined } {
  const clientId = stringOpt(ctx.args, 'client-id');
  const clientSecret = stringOpt(ctx.args, 'client-secret');
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    throw new ConfigError('--client-id and --client-secret go together', { setting: '--client-id' });
  }
  if (clientId !== undefined) return { clientId, clientSecret };
  const envId = blankToUndefined(ctx.env.TWITCH_CLIENT_ID);
  const envSecret = secretSetting('TWITCH_CLIENT_SECRET', ctx.env);
  if ((envId === undefined) !== (envSecret === undefined)) {
    const missing = envId === undefined ? 'TWITCH_CLIENT_ID' : 'TWITCH_CLIENT_SECRET';
    throw new ConfigError(
      `emulate takes TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET together (environment or .env): ${missing} is not set; set it, or pass --client-id and --client-secret`,
      { setting: missing },
    );
  }
  return { clientId: envId, clientSecret: envSecret };
}

function blankToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** The state file's directory must exist: the file itself is created on the first change. */
function checkStatePath(path: string): string {
  const absolute = resolve(path);
  let isDir: boolean;
  try {
    isDir = statSync(dirname(absolute)).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new ConfigError(`--state: the directory of ${absolute} does not exist`, { setting: '--state' });
  return absolute;
}

function parseRedirectUris(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const uris = value.split(',').map((u) => u.trim()).filter(Boolean);
  const bad = uris.find((u) => !/^https?:\/\/[^/?#]+/.test(u));
  if (uris.length === 0 || uris.length > 10 || bad !== undefined) {
    throw new ConfigError(`--redirect-uri must be 1 to 10 http(s) URLs, comma-separated: current value is "${value}"`);
  }
  return uris;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d{1,5}$/.test(value) || port > 65535) throw new ConfigError(`--port must be 0-65535: current value is "${value}"`);
  return port;
}

function parseBucket(value: string): { limit: number; windowMs: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new ConfigError(`--bucket must be N/MS such as 800/60000: current value is "${value}"`);
  }
  return { limit: Number(m[1]), windowMs: Number(m[2]) };
}
