/**
 * The daemon's Twitch side: token manager, Helix client, the subscription sync and its cron schedule.
 * Receiving needs no token (README.md "The daemon (`eventsubd run`)"), so the daemon imports this module only after
 * READY=1: start-up does not pay for undici or the wire schemas. The sync engine (and the YAML parser) is
 * loaded only when a subscriptions file is managed.
 */
import type { ScheduledTask } from 'node-cron';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/settings.js';
import type { Clock } from '../lib/clock.js';
import { toAppError, type AppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Subscription } from '../twitch/wire.js';
import type { SyncReport, SyncScheduler } from './sync-scheduler.js';
import type { Registry } from '../lib/metrics.js';
import type { AuthorizationWatch } from './authorization-watch.js';
import { buildTwitchStack, type TwitchStack, type TwitchStackDeps } from './twitch-stack.js';

export interface TwitchSideOptions {
  config: Config & { clientId: string };
  clock: Clock;
  pid: number;
  logger: Logger;
  dispatcher?: Dispatcher | undefined;
  /** Aborts the token manager's first attempt and loop (the daemon's shutdown). */
  signal: AbortSignal;
  /** True once the daemon is closing: nothing is built after that. */
  isClosing: () => boolean;
  /** A supplied token was refused, or another error that must stop the daemon (exit 77). */
  onFatal: (err: AppError) => void;
  onCall?: TwitchStackDeps['onCall'];
  onReport: (report: SyncReport) => void;
  onSubscriptions: (subs: readonly Subscription[]) => void;
  /** Where the authorization watch registers its metrics. */
  registry: Registry;
}

export interface TwitchSide {
  stack: TwitchStack;
  /** The sync and its reconcile schedule; undefined when no subscriptions file is managed. */
  scheduler: SyncScheduler | undefined;
  cron: ScheduledTask | undefined;
  /** Who must grant what, and the grant and revoke events; undefined when no subscriptions file is managed. */
  authorization: AuthorizationWatch | undefined;
}

/**
 * Builds the Twitch side and starts it in the background: the token manager validates the cached token (or
 * mints one), then the first sync runs; the cron schedule requests later syncs. Resolves once built, or
 * with undefined, having built nothing, when `isClosing()` turned true while its modules loaded. Closing is
 * the caller's, in its own order (cron, scheduler, ..., stack).
 */
export async function startTwitchSide(o: TwitchSideOptions): Promise<TwitchSide | undefined> {
  const { config, clock, logger } = o;
  const managed = config.subscriptionsFile
    ? await Promise.all([import('./sync-scheduler.js'), import('node-cron'), import('./authorization-watch.js'), import('../auth/grant-store.js')])
    : undefined;
  if (o.isClosing()) return undefined;
  const stack = buildTwitchStack(config, { clock, logger, pid: o.pid, dispatcher: o.dispatcher, onFatal: o.onFatal, onCall: o.onCall });
  let scheduler: SyncScheduler | undefined;
  let cron: ScheduledTask | undefined;
  let authorization: AuthorizationWatch | undefined;
  if (managed && config.subscriptionsFile) {
    const [{ SyncScheduler }, { schedule }, { AuthorizationWatch }, { GrantStore }] = managed;
    authorization = new AuthorizationWatch({
      clientId: config.clientId,
      grants: new GrantStore({ stateDir: config.stateDir, clock, logger }),
      clock,
      logger: logger.child({ component: 'authorization' }),
      registry: o.registry,
      requestSync: (delayMs, reason) => scheduler?.requestAfter(delayMs, reason),
    });
    const sync = (scheduler = new SyncScheduler({
      api: stack.helix,
      authorizations: stack.helix,
      clientId: config.clientId,
      authorization,
      file: config.subscriptionsFile,
      callbackUrl: config.callbackUrl,
      secret: config.eventsubSecrets[0],
      prune: config.prune,
      clock,
      logger: logger.child({ component: 'sync' }),
      onReport: o.onReport,
      onSubscriptions: o.onSubscriptions,
    }));
    cron = schedule(config.reconcileCron, () => void sync.request('cron'), { name: 'reconcile', noOverlap: true });
  } else {
    logger.info('No EVENTSUBD_SUBSCRIPTIONS file: subscriptions are not managed');
  }
  stack.tokens.start(o.signal).then(
    () => void scheduler?.request('start'),
    (err: unknown) => {
      const e = toAppError(err);
      if (e.code === 'ABORTED') return;
      logger.error('The supplied token was refused', { error: e });
      o.onFatal(e);
    },
  );
  return { stack, scheduler, cron, authorization };
}
