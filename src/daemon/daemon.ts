/**
 * The composition root of `eventsubd run`: builds the components, starts them in order, closes them in
 * reverse. Receiving needs no token, so the receiver and journal come up first and READY=1 is sent as soon
 * as they are; the token manager and the sync then start in the background and heal by themselves.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { schedule, type ScheduledTask } from 'node-cron';
import type { Dispatcher } from 'undici';
import { requireWebhook, type Config } from '../config/settings.js';
import { loadSubscriptionsFile } from '../config/subscriptions-file.js';
import { CursorStore } from '../journal/cursor.js';
import { Journal } from '../journal/journal.js';
import { Forwarder } from '../delivery/forwarder.js';
import { EventStream } from '../delivery/stream.js';
import type { Clock } from '../lib/clock.js';
import { AppError, StateDirError, toAppError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { Dedup } from '../receiver/dedup.js';
import { createWebhookHandler } from '../receiver/handler.js';
import { dedupKeys } from '../receiver/message.js';
import { startReceiver, type ReceiverServer } from '../receiver/server.js';
import type { ReceivedSubscription } from '../receiver/types.js';
import { statusAction } from '../subscriptions/status.js';
import { acquireInstanceLock, type InstanceLock } from './instance-lock.js';
import type { Notifier } from './notify.js';
import { DaemonMetrics } from './observability.js';
import { daemonRoutes, statusLine } from './routes.js';
import { SyncScheduler } from './sync-scheduler.js';
import { buildTwitchStack, type TwitchStack } from './twitch-stack.js';

const DEDUP_RETENTION_MS = 20 * 60_000;

export interface DaemonOptions {
  config: Config & { clientId: string };
  clock: Clock;
  logger: Logger;
  notifier: Notifier;
  dispatcher?: Dispatcher | undefined;
  pid: number;
  isAlive: (pid: number) => boolean;
  /** WATCHDOG_USEC from systemd, when set. */
  watchdogUsec?: number | undefined;
  /** Delay before the sync that follows a recoverable revocation. */
  revocationSyncDelayMs?: number;
}

export class Daemon {
  readonly #o: DaemonOptions;
  readonly #abort = new AbortController();
  #lock: InstanceLock | undefined;
  #journal: Journal | undefined;
  #stack: TwitchStack | undefined;
  #receiver: ReceiverServer | undefined;
  #scheduler: SyncScheduler | undefined;
  #cron: ScheduledTask | undefined;
  #metrics: DaemonMetrics | undefined;
  #forwarder: Forwarder | undefined;
  #stream: EventStream | undefined;
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

  /** Starts everything; resolves once READY=1 was sent. On failure, closes what was started and throws. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(options);
    try {
      await d.#start();
    } catch (err) {
      await d.close();
      throw err;
    }
    return d;
  }

  get url(): string {
    return this.#receiver?.url ?? '';
  }

  async #start(): Promise<void> {
    const { config, clock, logger } = this.#o;
    // A bad subscriptions file is a configuration error at start (exit 78), before anything binds or calls
    // Twitch. Later, on SIGHUP or cron, a bad edit is reported and the daemon keeps running.
    if (config.subscriptionsFile) {
      await loadSubscriptionsFile(config.subscriptionsFile, requireWebhook(config));
    }
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      throw new StateDirError(`Cannot create ${config.stateDir}: ${err.code ?? err.message}`, { cause: err });
    });
    this.#lock = await acquireInstanceLock(config.stateDir, this.#o);
    const journal = (this.#journal = await Journal.open({
      dir: join(config.stateDir, 'journal'),
      clock,
      logger: logger.child({ component: 'journal' }),
      retention: { maxBytes: config.journalMaxBytes, maxAgeMs: config.journalMaxAgeMs },
      durability: config.journalFsync,
    }));
    const dedup = new Dedup({ clock, retentionMs: DEDUP_RETENTION_MS });
    for await (const rec of journal.recent(clock.now() - DEDUP_RETENTION_MS)) {
      for (const key of dedupKeys(rec)) dedup.add(key, Date.parse(rec.received_at));
    }
    const stack = (this.#stack = buildTwitchStack(config, {
      clock,
      logger,
      dispatcher: this.#o.dispatcher,
      onFatal: (err) => this.#resolveFatal(err),
      onCall: (info) => this.#metrics?.helixCalls.inc({ method: info.method, status: String(info.status) }),
    }));
    const metrics = (this.#metrics = new DaemonMetrics({
      journal,
      tokens: stack.tokens,
      helix: stack.helix,
      clock,
      forwarder: () => this.#forwarder,
    }));
    const webhook = config.callbackUrl ? new URL(config.callbackUrl) : undefined;
    const scheduler = (this.#scheduler = new SyncScheduler({
      api: stack.helix,
      file: config.subscriptionsFile,
      callbackUrl: config.callbackUrl,
      secret: config.eventsubSecrets[0],
      prune: config.prune,
      clock,
      logger: logger.child({ component: 'sync' }),
      onReport: (report) => {
        metrics.recordSync(report);
        void this.#notifyStatus();
      },
      onSubscriptions: (subs) => metrics.recordListing(subs),
    }));
    this.#startDelivery(journal);
    const handler = createWebhookHandler({
      webhookPath: webhook?.pathname ?? '/eventsub',
      secrets: () => config.eventsubSecrets,
      clock,
      journal,
      dedup,
      onRevocation: (sub) => this.#onRevocation(sub),
      routes: daemonRoutes({
        daemon: this,
        journal,
        tokens: stack.tokens,
        scheduler,
        metrics,
        receiver: () => this.#receiver,
        forwarder: () => this.#forwarder,
        stream: () => this.#stream,
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
      onUpgrade: (req, socket, head) => this.#stream?.handleUpgrade(req, socket, head) ?? false,
    });
    if (!webhook || config.eventsubSecrets.length === 0) {
      logger.warn('EVENTSUB_CALLBACK_URL or EVENTSUB_SECRET is not set: webhook deliveries will be refused', { code: 'CONFIG_INVALID' });
    }
    await this.#o.notifier.notify({ READY: '1', STATUS: this.statusLine(), MAINPID: String(this.#o.pid) });
    this.#startBackground(scheduler);
  }

  /** The two consumers of the journal: HTTP forwarding (an outbox) and the WebSocket stream. */
  #startDelivery(journal: Journal): void {
    const { config, clock, logger } = this.#o;
    if (config.stream) {
      this.#stream = new EventStream({
        journal,
        path: config.stream.path,
        token: config.stream.token,
        clock,
        logger: logger.child({ component: 'stream' }),
      });
    }
    if (config.forward) {
      this.#forwarder = new Forwarder({
        journal,
        cursor: new CursorStore({ stateDir: config.stateDir, name: 'forward' }),
        url: config.forward.url,
        secret: config.forward.secret,
        concurrency: config.forward.concurrency,
        backoff: { baseMs: 500, maxMs: config.forward.maxBackoffMs },
        clock,
        logger: logger.child({ component: 'forwarder' }),
        dispatcher: this.#o.dispatcher,
      });
      void this.#forwarder.start(this.#abort.signal).catch((err: unknown) => {
        logger.error('The forwarder could not start', { error: toAppError(err) });
      });
    }
  }

  #startBackground(scheduler: SyncScheduler): void {
    const { config, logger } = this.#o;
    const signal = this.#abort.signal;
    this.#stack!.tokens.start(signal).then(
      () => void scheduler.request('start'),
      (err: unknown) => {
        const e = toAppError(err);
        if (e.code === 'ABORTED') return;
        logger.error('The supplied token was refused', { error: e });
        this.#resolveFatal(e);
      },
    );
    if (scheduler.enabled) {
      this.#cron = schedule(config.reconcileCron, () => void scheduler.request('cron'), { name: 'reconcile', noOverlap: true });
    } else {
      logger.info('No EVENTSUBD_SUBSCRIPTIONS file: subscriptions are not managed');
    }
    void this.#loop(this.#watchdogMs(), () => this.#o.notifier.notify({ WATCHDOG: '1' }));
    void this.#loop(3_600_000, async () => void (await this.#journal?.prune().catch(() => 0)));
  }

  /** SIGHUP: re-read the subscriptions file and sync. */
  reload(): Promise<void> {
    this.#o.logger.info('Reload requested: re-reading the subscriptions file');
    return this.#scheduler?.request('reload') ?? Promise.resolve();
  }

  statusLine(): string {
    return statusLine({ tokens: this.#stack?.tokens, scheduler: this.#scheduler, journal: this.#journal });
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Graceful: new webhook requests get 503, in-flight appends finish, the journal is flushed. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    await this.#o.notifier.notify({ STOPPING: '1', STATUS: 'stopping' });
    this.#abort.abort(new Error('stopping'));
    await this.#cron?.stop();
    await this.#cron?.destroy();
    await this.#scheduler?.close();
    await this.#stream?.close();
    await this.#receiver?.close();
    await this.#forwarder?.close();
    await this.#journal?.close();
    await this.#stack?.close();
    await this.#lock?.release();
    this.#o.notifier.close();
    if (this.#receiver) this.#o.logger.info('Stopped; subscriptions are left in place');
  }

  #onRevocation(sub: ReceivedSubscription): void {
    const status = sub.status ?? 'unknown';
    this.#metrics?.revocations.inc({ status });
    if (statusAction(status) === 'recreate') {
      this.#o.logger.warn('Subscription revoked; the next sync recreates it', { id: sub.id, type: sub.type, status });
      this.#scheduler?.requestAfter(this.#o.revocationSyncDelayMs ?? 5_000, 'revocation');
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
