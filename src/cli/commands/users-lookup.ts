import { AppError, EXIT, UsageError } from '../../lib/errors.js';
import type { CommandContext } from '../command.js';

/** Twitch logins: letters, digits and underscores, at most 25 (https://dev.twitch.tv/docs/api/reference/#get-users). */
const LOGIN = /^[A-Za-z0-9_]{1,25}$/;

/**
 * `eventsubd users lookup LOGIN...`: Get Users by login with the app token, so a condition can name the
 * broadcaster by id. Prints every login found; ends with USER_NOT_FOUND when Twitch knows one of them not.
 * Declared (flags, help) in ../commands.ts.
 */
export async function usersLookup(ctx: CommandContext): Promise<number> {
  const asked = [...new Set(ctx.args.positionals.map((l) => l.replace(/^@/, '').toLowerCase()))];
  const bad = asked.filter((l) => !LOGIN.test(l));
  if (bad.length > 0) throw new UsageError(`Not a Twitch login (letters, digits, _; at most 25): ${bad.map((l) => JSON.stringify(l)).join(', ')}`);
  const { helix } = await ctx.twitch();
  const found = await helix.usersByLogin(asked, { signal: ctx.signal });
  const byLogin = new Map(found.map((u) => [u.login.toLowerCase(), u]));
  const users = asked.flatMap((login) => {
    const u = byLogin.get(login);
    return u ? [{ id: u.id, login: u.login, display_name: u.display_name, broadcaster_type: u.broadcaster_type ?? '' }] : [];
  });
  const missing = asked.filter((l) => !byLogin.has(l));
  ctx.out.result({ users, missing }, () => users.map((u) => `${u.login} ${u.id}${u.display_name && u.display_name.toLowerCase() !== u.login ? ` (${u.display_name})` : ''}`));
  if (missing.length > 0) throw new AppError('USER_NOT_FOUND', `Twitch knows no user with the login ${missing.join(', ')}`);
  return EXIT.OK;
}
