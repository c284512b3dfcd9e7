/**
 * The composition root of `eventsubd run`: builds the components, starts them in order, closes them in
 * reverse. Receiving needs no token, so only the journal, dedup and the receiver come up before READY=1; the
 * Twitch side (tokens, Helix, sync, cron) and the forwarder are imported and started right after it, in the
 * background, and heal by themselves; the WebSocket stream is built on its first connection. So READY=1
 * waits for neither undici, ws nor a network call.
 */
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ScheduledTask } from 'node-cron';
import type { Dispatcher } from 'undici';
import { requireWebhook, type Config } from '../config/settings.js';
import { Journal } from '../journal/journal.js';
import type { CursorStorage, EventJournal } from '../storage/types.js';
import type { Replication } from './replication.js';
import type { Forwarder } from '../delivery/forwarder.js';
import type { EventStream } from '../delivery/stream.js';
import { refuseUpgrade, requestUrl } from '../delivery/upgrade.js';
import { settleWithin, type Clock } from '../lib/clock.js';
import { AppError, toAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { Dedup } from '../receiver/dedup.js';
import { restoreDedupWindow, saveDedupWindow } from './dedup-window.js';
import { createWebhookHandler } from '../receiver/handler.js';
import { Intake } from '../receiver/intake.js';
import type { ConduitRuntime } from '../conduit/conduit-runtime.js';
import { startReceiver, type ReceiverServer } from '../receiver/server.js';
import type { ReceivedSubscription } from '../receiver/types.js';
import { statusAction } from '../subscriptions/status.js';
import type { HeldLock } from '../lib/file-lock.js';
import { secureStateDir } from '../lib/state-dir.js';
import type { AuthorizationWatch } from './authorization-watch.js';
import { acquireInstanceLock } from './instance-lock.js';
import type { Notifier } from './notify.js';
import { DaemonMetrics } from './observability.js';
import { daemonRoutes, statusLine } from './routes.js';
import type { SyncScheduler } from './sync-scheduler.js';
import type { TwitchStack } from './twitch-stack.js';

/** `/status` of an enabled stream that no client has used yet (the stream itself is built on first use). */
const UNUSED_STREAM = {
  stats: () => ({ clients: 0, paused: 0, sent: 0, tooSlow: 0, unresponsive: 0, refused: 0, peakBufferedBytes: 0 }),
};

export interface DaemonOptions {
  config: Config & { clientId: string };
  clock: Clock;
  logger: Logger;
  notifier: Notifier;
  /** The HTTP client for Twitch and the forwarder, asked for after READY=1 (the caller owns and closes it). */
  dispatcher: () => Promise<Dispatcher>;
  pid: number;
  /** This process's uid (state files must be its own); undefined where the platform has none. */
  uid?: number | undefined;
  /** WATCHDOG_USEC from systemd, when set. */
  watchdogUsec?: number | undefined;
  /** Delay before the sync that follows a recoverable revocation. */
  revocationSyncDelayMs?: number;
  /** Several replicas: this replica's id (default: host name, pid and random bytes). */
  replicaId?: string | undefined;
  /** The most `close()` may take before what is left is cut. Default DEFAULT_STOP_TIMEOUT_MS. */
  stopTimeoutMs?: number;
}

/** 15 s: below the unit's TimeoutStopSec (30 s), above the receiver's drain (8 s) and the stream's close grace (2 s). */
export const DEFAULT_STOP_TIMEOUT_MS = 15_000;

export class Daemon {
  readonly #o: DaemonOptions;
  readonly #abort = new AbortController();
  #lock: HeldLock | undefined;
  #journal: EventJournal | undefined;
  /** The local dedup window (a journal on disk only): saved at a graceful stop for the next start. */
  #dedup: Dedup | undefined;
  /** Several replicas (EVENTSUBD_REDIS_URL): the Redis connection, the shared journal, the role. */
  #replication: Replication | undefined;
  /** Role changes apply one after the other (forwarder started or stopped, sync requested). */
  #roleChange: Promise<void> = Promise.resolve();
  #stack: TwitchStack | undefined;
  #receiver: ReceiverServer | undefined;
  #scheduler: SyncScheduler | undefined;
  #cron: ScheduledTask | undefined;
  #metrics: DaemonMetrics | undefined;
  #forwarder: Forwarder | undefined;
  #stream: EventStream | undefined;
  /** Conduit mode: the conduit and its WebSocket shards; built with the Twitch side. */
  #conduit: ConduitRuntime | undefined;
  /** De-duplication and journal appends, shared by the webhook receiver and the conduit's shards. */
  #intake: Intake | undefined;
  /** Who must grant what; grant and revoke events. Built with the Twitch side when a subscriptions file is managed. */
  #authorization: AuthorizationWatch | undefined;
  /** Settles once the Twitch side is built (or the daemon closed first); never rejects. */
  #twitchSide: Promise<void> = Promise.resolve();
  /** Settles once the WebSocket stream is built, which its first upgrade request starts. Never rejects. */
  #streamBuilt: Promise<void> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  readonly startedAt: number;
  #resolveFatal!: (err: AppError) => void;
  /** Settles with the error that must stop the daemon (a refused supplied token: exit 77). */
  readonly fatal: Promise<AppError>;

  private constructor(options: DaemonOptions) {
    this.#o = options;
    this.startedAt = options.clock.now();
    this.fatal = new Promise((resolve) => (this.#resolveFatal = resolve));
  }

  /**
   * Starts the journal, dedup and the receiver; resolves once READY=1 was sent, with the Twitch side and
   * the forwarder starting in the background. On failure, closes what was started and throws.
   */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(options);
    try {
      await d.#start();
    } catch (err) {
      await d.close();
      throw err;
    }
    d.#twitchSide = d.#startTwitchSide();
    const replication = d.#replication;
    if (replication) {
      // The leader forwards (one cursor, in order) and syncs; a follower only receives.
      replication.onRole((role) => d.#onRole(role));
      replication.onSyncRequest((reason) => void d.#twitchSide.then(() => d.#scheduler?.request(reason)));
      replication.start(d.#abort.signal);
    } else if (options.config.forward) void d.#startForwarder();
    d.#startLoops();
    return d;
  }

  get url(): string {
    return this.#receiver?.url ?? '';
  }

  async #start(): Promise<void> {
    const { config, clock, logger } = this.#o;
    // Independent steps overlap: the subscriptions file is checked while the state directory, the lock and
    // the journal open. A bad file is still a configuration error at start (exit 78) that wins over a state
    // error, before anything binds or calls Twitch; later, on SIGHUP or cron, a bad edit is only reported.
    const [file, state] = await Promise.allSettled([this.#checkSubscriptionsFile(), this.#openState()]);
    if (file.status === 'rejected') throw file.reason;
    if (state.status === 'rejected') throw state.reason;
    const journal = state.value;
    const dedup = new Dedup({ clock });
    // With Redis the de-duplication is Redis's (shared by the replicas); the local set only remembers this process's own.
    if (!this.#replication) {
      await restoreDedupWindow({ stateDir: config.stateDir, journal, dedup, clock, logger });
      this.#dedup = dedup; // only a whole window is saved at the stop: not one whose restore failed halfway
    }
    const metrics = (this.#metrics = new DaemonMetrics({
      journal,
      tokens: () => this.#stack?.tokens,
      helix: () => this.#stack?.helix,
      clock,
      forwarder: () => this.#forwarder,
    }));
    const webhook = config.callbackUrl ? new URL(config.callbackUrl) : undefined;
    const intake = (this.#intake = new Intake({
      journal,
      dedup,
      clock,
      onRevocation: (sub) => this.#onRevocation(sub),
      // Only the authorization events are parsed: the others stay the raw bytes the fast path journaled.
      onNotification: (sub, event) => {
        if (sub.type.startsWith('user.authorization.')) this.#authorization?.onNotification(sub.type, event());
      },
      logger: logger.child({ component: 'intake' }),
    }));
    const handler = createWebhookHandler({
      webhookPath: webhook?.pathname ?? '/eventsub',
      secrets: () => config.eventsubSecrets,
      clock,
      journal,
      dedup,
      intake,
      routes: daemonRoutes({
        daemon: this,
        journal,
        tokens: () => this.#stack?.tokens,
        scheduler: () => this.#scheduler,
        managed: config.subscriptionsFile !== undefined,
        authorization: () => this.#authorization,
        metrics,
        receiver: () => this.#receiver,
        forwarder: () => this.#forwarder,
        stream: () => this.#stream ?? (config.stream ? UNUSED_STREAM : undefined),
        conduit: config.transport === 'conduit' ? () => this.#conduit : undefined,
        replication: this.#replication,
      }),
      isClosing: () => this.#closing,
      metrics: { outcome: (name) => metrics.requests.inc({ outcome: name }) },
      logger: logger.child({ component: 'receiver' }),
    });
    this.#receiver = await startReceiver({
      host: config.listen.host,
      port: config.listen.port,
      handler,
      clock,
      logger: logger.child({ component: 'receiver' }),
      metrics: { outcome: (name) => metrics.requests.inc({ outcome: name }) },
      onUpgrade: (req, socket, head) => this.#onUpgrade(req, socket, head),
    });
    if (config.transport === 'webhook' && (!webhook || config.eventsubSecrets.length === 0)) {
      logger.warn('EVENTSUB_CALLBACK_URL or EVENTSUB_SECRET is not set: webhook deliveries will be refused', { code: 'CONFIG_INVALID' });
    }
    await this.#o.notifier.notify({ READY: '1', STATUS: this.statusLine(), MAINPID: String(this.#o.pid) });
  }

  async #checkSubscriptionsFile(): Promise<void> {
    const { config } = this.#o;
    if (!config.subscriptionsFile) return;
    const { loadSubscriptionsFile } = await import('../config/subscriptions-file.js');
    // Conduit mode: checked against the transport only (the conduit id is known once the conduit is made sure of).
    await loadSubscriptionsFile(config.subscriptionsFile, config.transport === 'conduit' ? { transport: 'conduit' } : requireWebhook(config));
  }

  /**
   * The state directory (checked: 0700, owned, no links), the instance lock, then the journal: the local one
   * (recovered), or with EVENTSUBD_REDIS_URL the shared one in Redis.
   */
  async #openState(): Promise<EventJournal> {
    const { config, clock, logger } = this.#o;
    await secureStateDir(config.stateDir, { uid: this.#o.uid, logger });
    this.#lock = await acquireInstanceLock(config.stateDir, this.#o);
    if (config.redis) {
      const { Replication } = await import('./replication.js');
      this.#replication = await Replication.open({
        redis: config.redis,
        retention: { maxBytes: config.journalMaxBytes, maxAgeMs: config.journalMaxAgeMs },
        clock,
        logger,
        pid: this.#o.pid,
        replicaId: this.#o.replicaId,
      });
      return (this.#journal = this.#replication.journal);
    }
    return (this.#journal = await Journal.open({
      dir: join(config.stateDir, 'journal'),
      clock,
      logger: logger.child({ component: 'journal' }),
      retention: { maxBytes: config.journalMaxBytes, maxAgeMs: config.journalMaxAgeMs },
      durability: config.journalFsync,
    }));
  }

  /** The WebSocket stream over the journal, built (and ws loaded) on its first upgrade request. */
  async #startStream(): Promise<void> {
    const { config, clock, logger } = this.#o;
    try {
      const { EventStream } = await import('../delivery/stream.js');
      if (this.#closing || !config.stream || !this.#journal) return;
      this.#stream = new EventStream({
        journal: this.#journal,
        path: config.stream.path,
        token: config.stream.token,
        clock,
        logger: logger.child({ component: 'stream' }),
      });
    } catch (err) {
      logger.error('The event stream could not be built', { error: toAppError(err) });
      this.#resolveFatal(toAppError(err));
    }
  }

  /**
   * HTTP upgrades: the stream's path goes to the stream, built on the first one (a daemon nobody streams
   * from never loads ws); upgrades that arrive while it is being built wait for it. Other paths get 404.
   */
  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (this.#stream) return this.#stream.handleUpgrade(req, socket, head);
    const path = this.#o.config.stream?.path;
    if (path === undefined || requestUrl(req)?.pathname !== path) return false;
    this.#streamBuilt ??= this.#startStream();
    void this.#streamBuilt.then(() => {
      if (!this.#stream?.handleUpgrade(req, socket, head)) refuseUpgrade(socket, 503, 'The event stream is not available');
    });
    return true;
  }

  /** After READY=1: imports and starts the Twitch side. A failure here stops the daemon like a fatal error. */
  async #startTwitchSide(): Promise<void> {
    try {
      const { startTwitchSide } = await import('./twitch-side.js');
      const side = await startTwitchSide({
        config: this.#o.config,
        clock: this.#o.clock,
        pid: this.#o.pid,
        logger: this.#o.logger,
        dispatcher: await this.#o.dispatcher(),
        signal: this.#abort.signal,
        isClosing: () => this.#closing,
        onFatal: (err) => this.#resolveFatal(err),
        onCall: (info) => this.#metrics?.helixCalls.inc({ method: info.method, status: String(info.status) }),
        onReport: (report) => {
          this.#metrics?.recordSync(report);
          void this.#notifyStatus();
        },
        onSubscriptions: (subs) => this.#metrics?.recordListing(subs),
        registry: this.#metrics!.registry,
        intake: this.#intake!,
        replication: this.#replication,
        onConduitChange: () => void this.#notifyStatus(),
      });
      if (!side) return;
      this.#stack = side.stack;
      // systemd's STATUS= follows the token too (minted, rotated, taken from another process, lost).
      side.stack.tokens.onSwap(() => void this.#notifyStatus());
      this.#scheduler = side.scheduler;
      this.#cron = side.cron;
      this.#authorization = side.authorization;
      this.#conduit = side.conduit;
    } catch (err) {
      this.#o.logger.error('The Twitch side could not start', { error: toAppError(err) });
      this.#resolveFatal(toAppError(err));
    }
  }

  /** Several replicas: a new leader starts the forwarder and syncs at once; a replica that stops leading stops forwarding. */
  #onRole(role: 'leader' | 'follower'): void {
    this.#roleChange = this.#roleChange.then(async () => {
      if (this.#closing) return;
      void this.#notifyStatus();
      // A new leader mints at once when the shared token is missing or rejected; a follower stops rotating.
      this.#stack?.tokens.roleChanged();
      if (role === 'leader') {
        void this.#twitchSide.then(() => this.#scheduler?.request('became leader'));
        if (this.#o.config.forward && !this.#forwarder) await this.#startForwarder();
      } else {
        const forwarder = this.#forwarder;
        this.#forwarder = undefined;
        await forwarder?.close();
      }
    });
  }

  /**
   * After READY=1 (with Redis: when this replica becomes the leader): the HTTP forwarder (an outbox over the
   * journal). Failing to build it stops the daemon; a failure of its start is reported and the daemon keeps receiving.
   */
  async #startForwarder(): Promise<void> {
    const { config, clock, logger } = this.#o;
    let forwarder: Forwarder;
    try {
      const [{ Forwarder }, cursor] = await Promise.all([import('../delivery/forwarder.js'), this.#forwardCursor()]);
      if (this.#closing || !config.forward || !this.#journal) return;
      forwarder = this.#forwarder = new Forwarder({
        journal: this.#journal,
        cursor,
        url: config.forward.url,
        secret: config.forward.secret,
        concurrency: config.forward.concurrency,
        backoff: { baseMs: 500, maxMs: config.forward.maxBackoffMs },
        clock,
        logger: logger.child({ component: 'forwarder' }),
        dispatcher: await this.#o.dispatcher(),
      });
    } catch (err) {
      logger.error('The forwarder could not be built', { error: toAppError(err) });
      this.#resolveFatal(toAppError(err));
      return;
    }
    await forwarder.start(this.#abort.signal).catch((err: unknown) => {
      logger.error('The forwarder could not start', { error: toAppError(err) });
    });
  }

  /** The forwarder's cursor: `STATE_DIR/cursors/forward.json`, or with Redis the shared `PREFIX:cursor:forward`. */
  async #forwardCursor(): Promise<CursorStorage> {
    const redis = this.#o.config.redis;
    if (this.#replication && redis) {
      const { RedisCursor } = await import('../storage/redis-cursor.js');
      return new RedisCursor({ client: this.#replication.connection.client, prefix: redis.prefix, name: 'forward' });
    }
    const { CursorStore } = await import('../journal/cursor.js');
    return new CursorStore({ stateDir: this.#o.config.stateDir, name: 'forward' });
  }

  #startLoops(): void {
    void this.#loop(this.#watchdogMs(), () => this.#o.notifier.notify({ WATCHDOG: '1' }));
    void this.#loop(3_600_000, async () => void (await this.#journal?.prune().catch(() => 0)));
  }

  /** SIGHUP: re-read the subscriptions file and sync. */
  reload(): Promise<void> {
    if (this.#replication?.role === 'follower') {
      this.#o.logger.info('Reload requested on a follower: asking the leader to sync');
      return this.#replication.requestSync('reload').catch((err: unknown) => {
        this.#o.logger.error('The sync request could not reach the leader', { error: toAppError(err) });
      });
    }
    this.#o.logger.info('Reload requested: re-reading the subscriptions file');
    return this.#twitchSide.then(() => this.#scheduler?.request('reload'));
  }

  statusLine(): string {
    return statusLine({
      tokens: this.#stack?.tokens,
      scheduler: this.#scheduler,
      managed: this.#o.config.subscriptionsFile !== undefined,
      journal: this.#journal,
      conduit: this.#o.config.transport === 'conduit' ? (this.#conduit ?? { statusLine: () => 'conduit pending' }) : undefined,
      role: this.#replication?.role,
    });
  }

  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Graceful: new webhook requests get 503, in-flight appends finish, the journal is flushed. Past
   * `stopTimeoutMs`, connections still open are cut and it resolves. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const ms = this.#o.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
      if ((await settleWithin(this.#close(), ms, this.#o.clock)) === 'done') return;
      this.#o.logger.error('The stop deadline passed; cutting what is still open', { deadline_ms: ms });
      this.#stream?.destroy();
      await this.#receiver?.destroy();
    })();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    await this.#o.notifier.notify({ STOPPING: '1', STATUS: 'stopping' });
    this.#abort.abort(new Error('stopping'));
    // A stop that comes while the Twitch side is still starting waits for it: what it starts (the cron job among them)
    // is then known here and stopped below, rather than left running and keeping the process alive.
    await this.#twitchSide;
    await this.#cron?.stop();
    await this.#cron?.destroy();
    await this.#scheduler?.close();
    // Side by side: stream clients get their close frame while the receiver drains its requests and the shards
    // close theirs (what they read is journaled before the journal closes).
    await Promise.all([this.#stream?.close(), this.#receiver?.close(), this.#conduit?.close()]);
    await this.#roleChange;
    await this.#forwarder?.close();
    if (this.#replication) {
      // The token manager first (its watch subscribes on a connection of its own), then the lease is released (another
      // replica leads at once), then the shared journal and the connection close.
      await this.#stack?.close();
      await this.#replication.close();
    } else {
      await this.#journal?.close();
      await this.#stack?.close();
      const { config, clock, logger } = this.#o;
      if (this.#journal && this.#dedup) await saveDedupWindow({ stateDir: config.stateDir, journal: this.#journal, dedup: this.#dedup, clock, logger });
    }
    await this.#lock?.release();
    this.#o.notifier.close();
    if (this.#receiver) this.#o.logger.info('Stopped; subscriptions are left in place');
  }

  #onRevocation(sub: ReceivedSubscription): void {
    const status = sub.status ?? 'unknown';
    this.#metrics?.revocations.inc({ status });
    if (statusAction(status) === 'recreate') {
      this.#o.logger.warn('Subscription revoked; the next sync recreates it', { id: sub.id, type: sub.type, status });
      void this.#twitchSide.then(() => this.#scheduler?.requestAfter(this.#o.revocationSyncDelayMs ?? 5_000, 'revocation'));
    } else {
      this.#o.logger.warn('Subscription revoked and will not be recreated', { id: sub.id, type: sub.type, status });
    }
  }

  #watchdogMs(): number | undefined {
    const usec = this.#o.watchdogUsec;
    return usec && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : undefined;
  }

  async #loop(everyMs: number | undefined, fn: () => Promise<void>): Promise<void> {
    if (everyMs === undefined) return;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      await fn();
      try {
        await this.#o.clock.sleep(everyMs, signal);
      } catch {
        return;
      }
    }
  }

  async #notifyStatus(): Promise<void> {
    if (!this.#closing) await this.#o.notifier.notify({ STATUS: this.statusLine() });
  }
}
