/**
 * Composition of the Twitch side: OAuth client → token cache → token manager → Helix EventSub client.
 * The daemon and every CLI command build it here, so they share one engine and one token cache.
 */
import type { Dispatcher } from 'undici';
import { TokenCache, type TokenStore } from '../auth/token-cache.js';
import { TokenManager } from '../auth/token-manager.js';
import type { Config } from '../config/settings.js';
import type { Clock } from '../lib/clock.js';
import type { AppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { HelixEventSubClient } from '../twitch/helix.js';
import { OAuthClient } from '../twitch/oauth.js';

export interface TwitchStack {
  tokens: TokenManager;
  helix: HelixEventSubClient;
  /** id.twitch.tv: also what `authorize` validates and revokes user tokens with. */
  oauth: OAuthClient;
  close(): Promise<void>;
}

export interface TwitchStackDeps {
  clock: Clock;
  /** This process's id, written into `token.lock` while it is held. */
  pid?: number | undefined;
  logger: Logger;
  dispatcher?: Dispatcher | undefined;
  onFatal?: (err: AppError) => void;
  onCall?: ConstructorParameters<typeof HelixEventSubClient>[0]['onCall'];
  /** Where the token lives; default the state directory's token.json (several replicas: Redis). */
  tokenStore?: TokenStore | undefined;
  /** Several replicas: true only on the leader, the one replica that mints and rotates. Default: always. */
  mayMint?: (() => boolean) | undefined;
}

export function buildTwitchStack(config: Config & { clientId: string }, deps: TwitchStackDeps): TwitchStack {
  const oauth = new OAuthClient({
    authUrl: config.authUrl,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    dispatcher: deps.dispatcher,
    clock: deps.clock,
  });
  const cache = deps.tokenStore ?? new TokenCache({ stateDir: config.stateDir, clock: deps.clock, logger: deps.logger, pid: deps.pid });
  const tokens = new TokenManager({
    clientId: config.clientId,
    oauth,
    cache,
    clock: deps.clock,
    logger: deps.logger.child({ component: 'tokens' }),
    suppliedToken: config.accessToken,
    canMint: Boolean(config.clientSecret),
    ...(deps.mayMint ? { mayMint: deps.mayMint } : {}),
    onFatal: deps.onFatal,
  });
  const helix = new HelixEventSubClient({
    apiUrl: config.apiUrl,
    clientId: config.clientId,
    tokens,
    clock: deps.clock,
    logger: deps.logger.child({ component: 'helix' }),
    dispatcher: deps.dispatcher,
    onCall: deps.onCall,
  });
  return {
    tokens,
    helix,
    oauth,
    async close() {
      await tokens.close();
    },
  };
}
