/**
 * eventsubd's Twitch side built in the bench process, piece by piece as `buildTwitchStack` does, so that
 * the Helix client can be given the emulator's (scaled) rate-limit window: OAuthClient → TokenCache →
 * TokenManager → HelixEventSubClient.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenCache } from '../../dist/auth/token-cache.js';
import { TokenManager } from '../../dist/auth/token-manager.js';
import { systemClock } from '../../dist/lib/clock.js';
import { silentLogger } from '../../dist/lib/logger.js';
import { HelixEventSubClient } from '../../dist/twitch/helix.js';
import { OAuthClient } from '../../dist/twitch/oauth.js';

/** Builds and starts the stack against `emulator`; `windowMs` is the bucket's refill window. */
export async function startStack(emulator, { windowMs = 60_000 } = {}) {
  const { clientId, clientSecret } = emulator.clients[0];
  const stateDir = mkdtempSync(join(tmpdir(), 'eventsubd-bench-stack-'));
  const clock = systemClock;
  const oauth = new OAuthClient({ authUrl: emulator.authUrl, clientId, clientSecret, clock });
  const cache = new TokenCache({ stateDir, clock, logger: silentLogger });
  const tokens = new TokenManager({ clientId, oauth, cache, clock, logger: silentLogger, canMint: true });
  const helix = new HelixEventSubClient({ apiUrl: emulator.apiUrl, clientId, tokens, clock, logger: silentLogger, windowMs });
  const abort = new AbortController();
  await tokens.start(abort.signal);
  return {
    tokens,
    helix,
    async close() {
      abort.abort();
      await tokens.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
