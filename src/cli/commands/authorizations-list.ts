import { GrantStore } from '../../auth/grant-store.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import { EXIT } from '../../lib/errors.js';
import { authorizeCommand, pendingGrants, usersToCheck } from '../../subscriptions/authorization.js';
import { describeSubscription, type DeclaredSubscription } from '../../twitch/subscription.js';
import type { CommandContext } from '../command.js';

/**
 * `eventsubd authorizations list`: each user with a grant (Twitch's view, Get User Authorization, with the local
 * record's when and how), then each declared subscription that waits for a grant, and whose.
 * Declared (flags, help) in ../commands.ts.
 */
export async function authorizationsList(ctx: CommandContext): Promise<number> {
  const config = ctx.config();
  const { helix } = await ctx.twitch();
  const records = await new GrantStore({ stateDir: config.stateDir, clock: ctx.clock, logger: ctx.logger }).list();
  const desired: readonly DeclaredSubscription[] = config.subscriptionsFile ? await loadSubscriptionsFile(config.subscriptionsFile, { transport: config.transport }) : [];
  const userIds = [...new Set([...usersToCheck(desired), ...records.map((r) => r.userId)])].sort();
  const view = userIds.length === 0 ? [] : await helix.userAuthorizations(userIds, { signal: ctx.signal });
  const byId = new Map(view.map((v) => [v.user_id, v]));
  const users = userIds
    .filter((id) => byId.has(id) || records.some((r) => r.userId === id))
    .map((id) => {
      const v = byId.get(id);
      const r = records.find((x) => x.userId === id);
      return {
        user_id: id,
        login: v?.user_login ?? r?.login ?? null,
        state: v ? 'active' : r?.revokedAt ? 'revoked' : 'none',
        scopes: [...(v?.scopes ?? [])].sort(),
        granted_at: r?.grantedAt ?? null,
        how: r?.how ?? null,
        revoked_at: r?.revokedAt ?? null,
      };
    });
  const waiting = pendingGrants(desired, new Map(view.map((v) => [v.user_id, new Set(v.scopes)]))).map((p) => ({
    user_id: p.userId,
    fields: p.fields,
    scopes: p.scopes,
    subscriptions: p.waiting.map((d) => describeSubscription(d)),
    command: authorizeCommand(p.userId),
  }));
  ctx.out.result({ users, waiting }, () => [
    ...(users.length === 0 ? ['No user has authorized the app (as far as the declared subscriptions and the local record tell).'] : []),
    ...users.map((u) => `${u.user_id} ${u.login ?? '?'} ${u.state}${u.scopes.length ? `: ${u.scopes.join(', ')}` : ''}${u.granted_at ? ` (granted ${u.granted_at} by ${u.how})` : ''}${u.revoked_at ? ` (revoked ${u.revoked_at})` : ''}`),
    ...waiting.flatMap((w) => [`Waiting for ${w.user_id} (${w.fields.join(', ')}) to grant ${w.scopes.join(', ')}: run ${w.command}`, ...w.subscriptions.map((s) => `  ${s}`)]),
  ]);
  return EXIT.OK;
}
