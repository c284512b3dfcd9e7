import { describeSettings } from '../../config/describe-settings.js';
import { requireTwitchAccess, requireWebhook } from '../../config/settings.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import type { CommandContext } from '../command.js';

/**
 * `eventsubd config check`: validates the settings and the subscriptions file (its entries against the
 * catalogue of subscription types too) and prints every setting, secrets only as `set` / `not set`.
 * Declared (flags, help) in ../commands.ts.
 */
export async function configCheck(ctx: CommandContext): Promise<number> {
  const c = ctx.config();
  requireTwitchAccess(c);
  let declared: number | null = null;
  if (c.subscriptionsFile) {
    const { callbackUrl, secret } = requireWebhook(c);
    declared = (await loadSubscriptionsFile(c.subscriptionsFile, { callbackUrl, secret })).length;
  }
  const view = describeSettings(c);
  const width = Math.max(...Object.keys(view).map((k) => k.length)) + 1;
  ctx.out.result({ ok: true, settings: view, declared_subscriptions: declared }, () => [
    ...Object.entries(view).map(([k, v]) => `${k.padEnd(width)} ${v ?? '-'}`),
    declared === null ? 'No subscriptions file: the daemon manages nothing.' : `${declared} subscription(s) declared.`,
    'Configuration OK.',
  ]);
  return 0;
}
