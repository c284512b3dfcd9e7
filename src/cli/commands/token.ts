import { tokenStatusJson } from '../../daemon/routes.js';
import { EXIT } from '../../lib/errors.js';
import type { CommandContext } from '../command.js';
import { formatDuration, formatTime } from '../format.js';

/**
 * `eventsubd token status`: the cached token's state; exit 77 when it is refused. Declared (flags, help) in
 * ../commands.ts.
 */
export async function tokenStatus(ctx: CommandContext): Promise<number> {
  const { tokens } = await ctx.twitch();
  const s = await tokens.inspect(ctx.signal);
  const now = ctx.clock.now();
  ctx.out.result(
    tokenStatusJson(s),
    () => [
      `state:        ${s.state}`,
      `origin:       ${s.origin ?? '-'}`,
      `fingerprint:  ${s.fingerprint ?? '-'}`,
      `obtained at:  ${formatTime(s.obtainedAt)}`,
      `expires at:   ${formatTime(s.expiresAt)}` +
        (s.expiresAt !== undefined && s.expiresAt < Number.MAX_SAFE_INTEGER ? ` (in ${formatDuration(s.expiresAt - now)})` : ''),
      `validated at: ${formatTime(s.validatedAt)}`,
      ...(s.lastError ? [`last error:   ${s.lastError.code}: ${s.lastError.message}`] : []),
    ],
  );
  return s.state === 'refused' ? EXIT.TOKEN_REFUSED : EXIT.OK;
}

/**
 * `eventsubd token rotate`: mints a new app token, then revokes the old one. Declared (flags, help) in
 * ../commands.ts.
 */
export async function tokenRotate(ctx: CommandContext): Promise<number> {
  const { tokens } = await ctx.twitch();
  const r = await tokens.rotate(ctx.signal);
  ctx.out.result({ previous: r.previous ?? null, current: r.current }, () => [
    `Rotated: new token ${r.current}` + (r.previous ? `, revoked ${r.previous}` : ''),
  ]);
  return EXIT.OK;
}

/**
 * `eventsubd token revoke`: revokes the cached token and removes it from the cache. Declared (flags, help)
 * in ../commands.ts.
 */
export async function tokenRevoke(ctx: CommandContext): Promise<number> {
  const { tokens } = await ctx.twitch();
  const r = await tokens.revoke(ctx.signal);
  ctx.out.result({ revoked: r ?? null }, () => [r ? `Revoked ${r}` : 'No token to revoke.']);
  return EXIT.OK;
}

