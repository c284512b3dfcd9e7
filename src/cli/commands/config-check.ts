import { requireTwitchAccess, requireWebhook } from '../../config/settings.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import type { CommandContext } from '../command.js';

/**
 * `eventsubd config check`: validates the settings and the subscriptions file and prints them without
 * secrets. Declared (flags, help) in ../commands.ts.
 */
export async function configCheck(ctx: CommandContext): Promise<number> {
  const c = ctx.config();
  requireTwitchAccess(c);
  let declared: number | null = null;
  if (c.subscriptionsFile) {
    const { callbackUrl, secret } = requireWebhook(c);
    declared = (await loadSubscriptionsFile(c.subscriptionsFile, { callbackUrl, secret })).length;
  }
  const view = {
    TWITCH_CLIENT_ID: c.clientId,
    TWITCH_CLIENT_SECRET: c.clientSecret ? 'set' : 'not set',
    TWITCH_ACCESS_TOKEN: c.accessToken ? 'set' : 'not set',
    EVENTSUB_SECRET: c.eventsubSecrets.length > 0 ? `${c.eventsubSecrets.length} secret(s) set` : 'not set',
    EVENTSUB_CALLBACK_URL: c.callbackUrl ?? null,
    EVENTSUBD_LISTEN: `${c.listen.host}:${c.listen.port}`,
    EVENTSUBD_STATE_DIR: c.stateDir,
    EVENTSUBD_SUBSCRIPTIONS: c.subscriptionsFile ?? null,
    EVENTSUBD_PRUNE: c.prune,
    EVENTSUBD_RECONCILE_CRON: c.reconcileCron,
    TWITCH_AUTH_URL: c.authUrl,
    TWITCH_API_URL: c.apiUrl,
    EVENTSUBD_LOG_LEVEL: c.logLevel,
  };
  ctx.out.result({ ok: true, settings: view, declared_subscriptions: declared }, () => [
    ...Object.entries(view).map(([k, v]) => `${k.padEnd(25)} ${v ?? '-'}`),
    declared === null ? 'No subscriptions file: the daemon manages nothing.' : `${declared} subscription(s) declared.`,
    'Configuration OK.',
  ]);
  return 0;
}
