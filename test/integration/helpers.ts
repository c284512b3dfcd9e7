/**
 * The integration rig: the real emulator on 127.0.0.1 and the real engine (`buildTwitchStack`) in the same
 * process, on one shared FakeClock, with a fresh state directory and a dedicated undici Agent. Everything is
 * closed in `t.after()`, in reverse order of construction.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { loadConfig, requireTwitchAccess, type Config, type RawSettings } from '../../src/config/settings.js';
import { buildTwitchStack, type TwitchStack } from '../../src/daemon/twitch-stack.js';
import { startEmulator, type Emulator, type EmulatorClient, type EmulatorOptions } from '../../src/emulator/index.js';
import { silentLogger } from '../../src/lib/logger.js';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import type { CreateSubscriptionBody } from '../../src/twitch/wire.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { untilTurn } from '../helpers/wait.js';

/** Our callback: https on 443, as the emulator (like Twitch) demands. Never reached: verification is 'accept'. */
export const CALLBACK = 'https://events.example.com/twitch/eventsub';
/** Someone else's callback on the same client ID: never ours to touch. */
export const FOREIGN_CALLBACK = 'https://other-team.example.com/hooks/twitch';
export const SECRET = 'integration-secret-0123456789';

export interface Rig {
  emu: Emulator;
  clock: FakeClock;
  client: EmulatorClient;
  config: Config & { clientId: string };
  stack: TwitchStack;
  agent: Agent;
}

export interface RigOptions {
  /** Default: a manual FakeClock. Shared by the emulator and the stack. */
  clock?: FakeClock;
  emulator?: Omit<EmulatorOptions, 'clock'>;
  /** Extra or overriding settings, merged over the rig's defaults before `loadConfig`; may prepare the emulator. */
  settings?: (emu: Emulator, client: EmulatorClient) => RawSettings | Promise<RawSettings>;
  /** Options of the undici Agent used by the engine. */
  agent?: ConstructorParameters<typeof Agent>[0];
}

/** Starts the emulator and builds the engine against it; all of it is closed after the test. */
export async function startRig(t: TestContext, options: RigOptions = {}): Promise<Rig> {
  const clock = options.clock ?? new FakeClock();
  const emu = await startEmulator({ ...options.emulator, clock });
  const stateDir = await mkdtemp(join(tmpdir(), 'eventsubd-it-'));
  const agent = new Agent(options.agent);
  const client = emu.clients[0];
  if (!client) throw new Error('emulator started without a client');
  const config = loadConfig({
    TWITCH_CLIENT_ID: client.clientId,
    TWITCH_CLIENT_SECRET: client.clientSecret,
    TWITCH_API_URL: emu.apiUrl,
    TWITCH_AUTH_URL: emu.authUrl,
    EVENTSUBD_STATE_DIR: stateDir,
    EVENTSUB_CALLBACK_URL: CALLBACK,
    EVENTSUB_SECRET: SECRET,
    ...(await options.settings?.(emu, client)),
  });
  requireTwitchAccess(config);
  const stack = buildTwitchStack(config, { clock, logger: silentLogger, dispatcher: agent });
  t.after(async () => {
    await stack.close();
    await emu.close();
    await agent.close();
    await rm(stateDir, { recursive: true, force: true });
  });
  return { emu, clock, client, config, stack, agent };
}

/** A webhook create body for `type` v1 with `broadcaster_user_id` = `userId`, to `callback`. */
export function body(userId: string, init: { type?: string; callback?: string } = {}): CreateSubscriptionBody {
  return {
    type: init.type ?? 'stream.online',
    version: '1',
    condition: { broadcaster_user_id: userId },
    transport: { method: 'webhook', callback: init.callback ?? CALLBACK, secret: SECRET },
  };
}

/** The desired-file entry equivalent of `body(userId, { type })`. */
export function desired(userId: string, type = 'stream.online'): DesiredSubscription {
  return {
    type,
    version: '1',
    condition: { broadcaster_user_id: userId },
    transport: { method: 'webhook', callback: CALLBACK, secret: SECRET },
  };
}

/** `GET /oauth2/validate` straight to the emulator: the status tells whether Twitch still accepts the token. */
export async function validateStatus(emu: Emulator, token: string): Promise<number> {
  const res = await request(`${emu.authUrl}/validate`, { headers: { authorization: `OAuth ${token}` } });
  await res.body.text();
  return res.statusCode;
}

/** Mints an app token for `client` with a raw client-credentials grant (not through the engine). */
export async function mintRaw(emu: Emulator, client: EmulatorClient): Promise<string> {
  const res = await request(`${emu.authUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' }).toString(),
  });
  const json = (await res.body.json()) as { access_token?: string };
  if (res.statusCode !== 200 || !json.access_token) throw new Error(`raw mint failed: ${res.statusCode}`);
  return json.access_token;
}

/** Helix requests the emulator has seen so far, by method and status (e.g. 'POST 202'). */
export function helixTally(emu: Emulator): Record<string, number> {
  const tally: Record<string, number> = {};
  for (const r of emu.stats.requests) {
    if (!r.path.startsWith('/helix/')) continue;
    const key = `${r.method} ${r.status}`;
    tally[key] = (tally[key] ?? 0) + 1;
  }
  return tally;
}

/**
 * Waits until `check` holds, for I/O the FakeClock cannot drive and that announces no event: the last resort,
 * checked on every turn of the event loop with no timed sleep.
 */
export function eventually(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  return untilTurn(check, what, timeoutMs);
}
