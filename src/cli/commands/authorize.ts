import { authorizeWithCode, authorizeWithDevice, type AuthorizeDeps, type AuthorizeOutcome, type AuthorizeRequest } from '../../auth/authorize.js';
import { GrantStore } from '../../auth/grant-store.js';
import { loadSubscriptionsFile } from '../../config/subscriptions-file.js';
import { runningDaemonPid } from '../../daemon/instance-lock.js';
import { AppError, ConfigError, EXIT, UsageError } from '../../lib/errors.js';
import { pendingGrants, usersToCheck } from '../../subscriptions/authorization.js';
import { UserOAuthClient } from '../../twitch/user-oauth.js';
import { boolOpt, stringOpt, type CommandContext } from '../command.js';

const SCOPE = /^[a-z_]+(:[a-z_]+)+$/;

/**
 * `eventsubd authorize`: works out who must grant what for the declared subscriptions (or takes `--user` and
 * `--scopes`), runs the code flow (or `--device`) for each user in turn, and asks a running daemon to sync.
 * Declared (flags, help) in ../commands.ts.
 */
export async function authorize(ctx: CommandContext): Promise<number> {
  const config = ctx.config();
  const stack = await ctx.twitch();
  const clientId = config.clientId!;
  const deps: AuthorizeDeps = {
    clientId,
    userOAuth: new UserOAuthClient({ authUrl: config.authUrl, clientId, clientSecret: config.clientSecret, dispatcher: await ctx.dispatcher() }),
    oauth: stack.oauth,
    twitch: stack.helix,
    grants: new GrantStore({ stateDir: config.stateDir, clock: ctx.clock, logger: ctx.logger }),
    clock: ctx.clock,
    logger: ctx.logger,
    tell: (line) => ctx.out.note(line),
    signal: ctx.signal,
  };
  const asks = await whatToAsk(ctx, deps);
  if (asks.length === 0) {
    ctx.out.result({ authorized: [], nothing_to_do: true }, () => ['Nothing to authorize: the users of every declared subscription have granted what it needs.']);
    return EXIT.OK;
  }
  const device = boolOpt(ctx.args, 'device');
  const outcomes: AuthorizeOutcome[] = [];
  for (const ask of asks) {
    outcomes.push(device ? await authorizeWithDevice(deps, ask) : await authorizeWithCode(deps, ask, config.redirectUrl));
  }
  const pid = await runningDaemonPid(config.stateDir);
  const signalled = pid !== undefined && (ctx.process.signal?.(pid, 'SIGHUP') ?? false);
  ctx.out.result(
    {
      authorized: outcomes.map((o) => ({ user_id: o.userId, login: o.login, how: o.how, scopes: o.granted, missing: o.missing, expected_user: o.expectedUser })),
      daemon_asked_to_sync: signalled ? pid : null,
    },
    () => [
      ...outcomes.map((o) => `Authorized ${o.login ?? '?'} (${o.userId}) by ${o.how}: ${o.granted.join(', ') || 'no scope'}; the user token was revoked.`),
      ...outcomes.filter((o) => o.missing.length > 0).map((o) => `Still missing for ${o.userId}: ${o.missing.join(', ')}`),
      ...(signalled ? [`Asked the running daemon (pid ${pid}) to sync.`] : []),
    ],
  );
  const wrongUser = outcomes.find((o) => !o.expectedUser);
  if (wrongUser) {
    throw new AppError('AUTHORIZATION_FAILED', `${wrongUser.login ?? wrongUser.userId} (${wrongUser.userId}) authorized, not the user asked for: run eventsubd authorize again signed in as that user`);
  }
  const short = outcomes.find((o) => o.missing.length > 0);
  if (short) {
    throw new AppError(
      'AUTHORIZATION_FAILED',
      `Twitch does not show ${short.missing.join(', ')} granted by ${short.userId}: the user granted fewer scopes than asked, or the grant did not persist; run eventsubd authorize again`,
    );
  }
  return EXIT.OK;
}

/** The users and scopes to ask for, in order. */
async function whatToAsk(ctx: CommandContext, deps: AuthorizeDeps): Promise<AuthorizeRequest[]> {
  const config = ctx.config();
  const user = stringOpt(ctx.args, 'user');
  const expected = user === undefined ? undefined : /^\d+$/.test(user) ? { userId: user } : { login: user };
  const scopesFlag = stringOpt(ctx.args, 'scopes');
  if (scopesFlag !== undefined) {
    const scopes = [...new Set(scopesFlag.split(/[,\s]+/).filter(Boolean))];
    const bad = scopes.find((s) => !SCOPE.test(s));
    if (scopes.length === 0 || bad !== undefined) throw new UsageError(`--scopes must be scopes such as moderator:read:followers,bits:read: current value is "${scopesFlag}"`);
    return [{ scopes, expected }];
  }
  if (!config.subscriptionsFile) {
    throw new ConfigError('Cannot tell what to ask for: set EVENTSUBD_SUBSCRIPTIONS (the declared subscriptions say who must grant what), or pass --scopes', {
      setting: 'EVENTSUBD_SUBSCRIPTIONS',
    });
  }
  if (expected?.login !== undefined) throw new UsageError('--user takes the numeric user id of the declared subscriptions (or pass --scopes with a login)');
  const desired = await loadSubscriptionsFile(config.subscriptionsFile, { transport: config.transport });
  const view = await deps.twitch.userAuthorizations(usersToCheck(desired), { signal: ctx.signal });
  const pending = pendingGrants(desired, new Map(view.map((u) => [u.user_id, new Set(u.scopes)])));
  const chosen = expected?.userId === undefined ? pending : pending.filter((p) => p.userId === expected.userId);
  return chosen.map((p) => ({ scopes: p.scopes, expected: { userId: p.userId } }));
}
