import { describeSettings } from '../../config/describe-settings.js';
import { requireTwitchAccess, requireWebhook } from '../../config/settings.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import { ConfigProblemsError, joinProblems, type ConfigProblem } from '../../config/problems.js';
import { ConfigError } from '../../lib/errors.js';
import type { CommandContext } from '../command.js';

/**
 * `eventsubd config check`: validates the settings and the subscriptions file (its entries against the
 * catalogue of subscription types too) and prints every setting, secrets only as `set` / `not set`.
 * Declared (flags, help) in ../commands.ts.
 */
export async function configCheck(ctx: CommandContext): Promise<number> {
  const c = ctx.config();
  // Every mistake in one run: the missing credentials, the webhook settings and the file's entries together.
  const problems: ConfigProblem[] = [];
  const collect = async <T>(step: () => T | Promise<T>): Promise<T | undefined> => {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push({ setting: err.setting, message: err.message });
      return undefined;
    }
  };
  await collect(() => requireTwitchAccess(c));
  let declared: number | null = null;
  if (c.subscriptionsFile) {
    const file = c.subscriptionsFile;
    // Webhook mode needs the callback and secret to create anything; conduit mode needs neither (nor, to check
    // the file, the conduit: the daemon creates it). The entries are checked either way.
    if (c.transport === 'webhook') await collect(() => requireWebhook(c));
    declared = (await collect(() => loadSubscriptionsFile(file, { transport: c.transport })))?.length ?? null;
  }
  if (problems.length > 0) throw new ConfigProblemsError(joinProblems(problems, 'Configuration'), problems);
  const view = describeSettings(c);
  const width = Math.max(...Object.keys(view).map((k) => k.length)) + 1;
  ctx.out.result({ ok: true, settings: view, declared_subscriptions: declared }, () => [
    ...Object.entries(view).map(([k, v]) => `${k.padEnd(width)} ${v ?? '-'}`),
    declared === null ? 'No subscriptions file: the daemon manages nothing.' : `${declared} subscription(s) declared.`,
    'Configuration OK.',
  ]);
  return 0;
}
