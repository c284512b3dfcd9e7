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
import type { Intake } from '../receiver/intake.js';
import type { ConduitRuntime } from '../conduit/conduit-runtime.js';
import type { ConduitManager } from '../conduit/conduit-manager.js';
import type { Replication } from './replication.js';

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
  /** Where the authorization watch and the conduit's shards register their metrics. */
  registry: Registry;
  /** Conduit mode: where the shards' messages are de-duplicated and journaled (the receiver's intake). */
  intake: Intake;
  /** Conduit mode: a shard's state changed. */
  onConduitChange?: (() => void) | undefined;
  /** Several replicas: the role (only the leader syncs, mints and rotates) and the Redis connection the token lives on. */
  replication?: Replication | undefined;
}

export interface TwitchSide {
  stack: TwitchStack;
  /** The sync and its reconcile schedule; undefined when no subscriptions file is managed. */
  scheduler: SyncScheduler | undefined;
  cron: ScheduledTask | undefined;
  /** Who must grant what, and the grant and revoke events; undefined when no subscriptions file is managed. */
  authorization: AuthorizationWatch | undefined;
  /** Conduit mode: the conduit and its shards, started once the token manager has a token. */
  conduit: ConduitRuntime | undefined;
}

/**
 * Builds the Twitch side and starts it in the background: the token manager validates the cached token (or
 * mints one), then the first sync runs; the cron schedule requests later syncs. Resolves once built, or
 * with undefined, having built nothing, when `isClosing()` turned true while its modules loaded. Closing is
 * the caller's, in its own order (cron, scheduler, ..., stack).
 */
export async function startTwitchSide(o: TwitchSideOptions): Promise<TwitchSide | undefined> {
  const { config, clock, logger } = o;
  const [managed, conduitModules] = await Promise.all([
    config.subscriptionsFile
      ? Promise.all([
          import('./sync-scheduler.js'),
          import('node-cron'),
          import('./authorization-watch.js'),
          import('../auth/grant-store.js'),
          import('../config/subscriptions-file.js'),
          import('../conduit/conduit-store.js'),
        ])
      : undefined,
    config.transport === 'conduit' ? Promise.all([import('../conduit/conduit-runtime.js'), import('../conduit/conduit-manager.js')]) : undefined,
  ]);
  const replication = o.replication;
  // Webhook mode still owns the conduit a conduit-mode run recorded: switching back migrates its subscriptions.
  // Read before the check below, so that nothing is awaited between the check and the return: a stop cannot come
  // in between and miss what is started here.
  const recorded =
    managed && !conduitModules
      ? await (replication ? replication.conduitStore().read() : managed[5].readConduitRecord(config.stateDir)).catch((err: unknown) => {
          logger.warn('The conduit record cannot be read: subscriptions on that conduit are not migrated', { error: toAppError(err) });
          return undefined;
        })
      : undefined;
  if (o.isClosing()) return undefined;
  const leading = replication ? () => replication.role === 'leader' : undefined;
  const stack = buildTwitchStack(config, {
    clock,
    logger,
    pid: o.pid,
    dispatcher: o.dispatcher,
    onFatal: o.onFatal,
    onCall: o.onCall,
    tokenStore: replication?.tokenStore(config.clientId),
    mayMint: leading,
  });
  let conduit: ConduitRuntime | undefined;
  let manager: ConduitManager | undefined;
  if (conduitModules) {
    const [{ ConduitRuntime }, { ConduitManager }] = conduitModules;
    // Several replicas: the record is Redis's, only the leader creates, adopts or replaces the conduit, and each
    // replica holds its share of the shards under fenced leases.
    manager = new ConduitManager({
      api: stack.helix,
      ...(replication ? { store: replication.conduitStore() } : { stateDir: config.stateDir }),
      mayWrite: leading,
      configuredId: config.conduit.id,
      shards: config.conduit.shards,
      clock,
      logger: logger.child({ component: 'conduit' }),
    });
    conduit = new ConduitRuntime({
      conduits: manager,
      shards: config.conduit.shards,
      wsUrl: config.conduit.wsUrl,
      intake: o.intake,
      clock,
      logger: logger.child({ component: 'conduit' }),
      registry: o.registry,
      onReplaced: () => void scheduler?.request('conduit replaced'),
      onChange: o.onConduitChange,
      ownership: replication ? (events) => replication.shardLeases(config.conduit.shards, events) : undefined,
    });
  }
  let scheduler: SyncScheduler | undefined;
  let cron: ScheduledTask | undefined;
  let authorization: AuthorizationWatch | undefined;
  if (managed && config.subscriptionsFile) {
    const [{ SyncScheduler }, { schedule }, { AuthorizationWatch }, { GrantStore }, { deliveryTarget, ownershipOf }] = managed;
    const recordedIds = recorded ? [recorded.conduit_id, ...recorded.previous] : [];
    const conduits = manager;
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
      // Conduit mode: undefined until the conduit is made sure of (the sync waits for it).
      target: () => (conduits ? (conduits.conduitId === undefined ? undefined : deliveryTarget(config, conduits.conduitId)) : deliveryTarget(config)),
      ownership: () => ownershipOf(config, conduits ? conduits.ownedIds() : recordedIds),
      before: conduit ? (signal) => conduit.verify(signal) : undefined,
      prune: config.prune,
      mayRun: leading,
      clock,
      logger: logger.child({ component: 'sync' }),
      onReport: o.onReport,
      onSubscriptions: o.onSubscriptions,
    }));
    cron = schedule(config.reconcileCron, () => void sync.request('cron'), { name: 'reconcile', noOverlap: true });
  } else {
    logger.info('No EVENTSUBD_SUBSCRIPTIONS file: subscriptions are not managed');
  }
  const fatal = (what: string) => (err: unknown) => {
    const e = toAppError(err);
    if (e.code === 'ABORTED') return;
    logger.error(what, { error: e });
    o.onFatal(e);
  };
  stack.tokens.start(o.signal).then(() => {
    // Conduit mode: the conduit first (the declared subscriptions are created onto it), then the first sync.
    if (!conduit) return void scheduler?.request('start');
    conduit.start().then(() => void scheduler?.request('start'), fatal('The conduit cannot be used'));
  }, fatal('The supplied token was refused'));
  return { stack, scheduler, cron, authorization, conduit };
}
