import { ConfigError } from '../../lib/errors.js';
import { startEmulator, type EmulatorOptions } from '../../emulator/index.js';
import { isLoopbackHost } from '../../config/settings.js';
import { stringOpt, type CommandContext } from '../command.js';

/** `eventsubd emulate`: runs the local Twitch until SIGINT/SIGTERM. Declared (flags, help) in ../commands.ts. */
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
  const clientId = stringOpt(ctx.args, 'client-id');
  const clientSecret = stringOpt(ctx.args, 'client-secret');
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    throw new ConfigError('--client-id and --client-secret go together');
  }
  const redirectUris = parseRedirectUris(stringOpt(ctx.args, 'redirect-uri'));
  if (clientId && clientSecret) options.clients = [{ clientId, clientSecret, redirectUris }];
  else if (redirectUris) options.clients = [{ redirectUris }];
  const bucket = stringOpt(ctx.args, 'bucket');
  if (bucket !== undefined) options.bucket = parseBucket(bucket);
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
      client_id: client.clientId,
      client_secret: client.clientSecret,
    },
    () => [
      '# Point eventsubd at the emulator with these settings:',
      `TWITCH_AUTH_URL=${emulator.authUrl}`,
      `TWITCH_API_URL=${emulator.apiUrl}`,
      `TWITCH_CLIENT_ID=${client.clientId}`,
      `TWITCH_CLIENT_SECRET=${client.clientSecret}`,
      '# twitch-cli style mock auth paths are served too: ' + `${emulator.url}/auth/token, ${emulator.url}/auth/validate`,
    ],
  );
  await ctx.stopped;
  await emulator.close();
  return 0;
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
