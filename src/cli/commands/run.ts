import { requireTwitchAccess } from '../../config/settings.js';
import { Daemon } from '../../daemon/daemon.js';
import { createNotifier } from '../../daemon/notify.js';
import { EXIT } from '../../lib/errors.js';
import type { CommandContext } from '../command.js';

/**
 * `eventsubd run`: starts the daemon, then waits for SIGINT/SIGTERM (exit 0) or a fatal token refusal (exit
 * 77). Declared (flags, help) in ../commands.ts.
 */
export async function runDaemon(ctx: CommandContext): Promise<number> {
  const config = ctx.config();
  requireTwitchAccess(config);
  const logger = ctx.logger.child({ component: 'daemon' });
  const watchdogPid = ctx.env.WATCHDOG_PID === undefined ? undefined : Number(ctx.env.WATCHDOG_PID);
  const daemon = await Daemon.start({
    config,
    clock: ctx.clock,
    logger: ctx.logger,
    notifier: createNotifier(ctx.env.NOTIFY_SOCKET, logger),
    dispatcher: ctx.dispatcher,
    pid: ctx.process.pid,
    uid: ctx.process.uid,
    watchdogUsec: watchdogPid === undefined || watchdogPid === ctx.process.pid ? Number(ctx.env.WATCHDOG_USEC) || undefined : undefined,
  });
  logger.info('eventsubd is ready', {
    url: daemon.url,
    webhook_path: config.callbackUrl ? new URL(config.callbackUrl).pathname : null,
    status: daemon.statusLine(),
  });
  const stopHangup = ctx.process.onHangup(() => void daemon.reload());
  try {
    const fatal = await Promise.race([ctx.stopped.then(() => undefined), daemon.fatal]);
    if (fatal) {
      await daemon.close();
      throw fatal;
    }
    logger.info('Stopping: finishing in-flight requests and flushing the journal');
    await daemon.close();
    return EXIT.OK;
  } finally {
    stopHangup();
  }
}
