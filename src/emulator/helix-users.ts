/**
 * `GET /helix/users` (https://dev.twitch.tv/docs/api/reference/#get-users): users by `id` and `login`, up to
 * 100 of both together, with an app or a user token; a user token without parameters gets its own user.
 * The directory is the emulator's: users registered with `POST /_emulator/users`, and every user who granted
 * a client something, consents at the authorize page or holds a user token. Unknown ids and logins are left
 * out of `data`, as Twitch does.
 */
import { helixError, type Reply, type Req } from './http.js';
import type { DirectoryUser, EmulatorState, TokenRecord } from './state.js';

/** Get Users takes at most this many `id` and `login` parameters together. */
export const MAX_USERS_PER_REQUEST = 100;

/**
 * When every user was created: the emulator has no history, and a fixed date keeps answers deterministic.
 * The other fields a real user has (images, description) are empty.
 */
const CREATED_AT = '2016-12-14T20:32:28Z';

/** Get Users. */
export function getUsers(state: EmulatorState, req: Req, caller: TokenRecord): Reply {
  if (req.method !== 'GET') return { ...helixError(405, 'Method Not Allowed'), headers: { allow: 'GET' } };
  const ids = req.query.getAll('id');
  const logins = req.query.getAll('login').map((l) => l.toLowerCase());
  if (ids.length + logins.length > MAX_USERS_PER_REQUEST) {
    return helixError(400, `The combined number of id and login parameters must not exceed ${MAX_USERS_PER_REQUEST}`);
  }
  if (ids.some((v) => v === '') || logins.some((v) => v === '')) return helixError(400, 'Parameters id and login must not be empty');
  if (ids.length + logins.length === 0) {
    // With an app token Twitch needs at least one parameter; a user token means "me".
    if (caller.kind === 'app' || caller.userId === undefined) return helixError(400, 'Missing required parameter "id" or "login"');
    ids.push(caller.userId);
  }
  const known = state.knownUsers();
  const wanted = known.filter((u) => ids.includes(u.id) || logins.includes(u.login));
  return { status: 200, json: { data: wanted.map(wireUser) } };
}

function wireUser(user: DirectoryUser): Record<string, unknown> {
  return {
    id: user.id,
    login: user.login,
    display_name: user.display_name,
    type: '',
    broadcaster_type: '',
    description: '',
    profile_image_url: '',
    offline_image_url: '',
    view_count: 0,
    created_at: CREATED_AT,
  };
}
