/**
 * `/_emulator/*`: the public Emulator API over HTTP, for a standalone `eventsubd emulate` and for tests
 * in another process. JSON in and out; errors use the Helix body shape.
 */
import { z } from 'zod';
import { FaultSchema } from './faults.js';
import { EmulatorRequestError, helixError, parseJson, type Reply, type Req } from './http.js';
import { MAX_EVENTS_PER_REQUEST } from './send-events.js';
import type { Emulator } from './types.js';

const UserTokenBody = z.object({
  client_id: z.string().min(1).optional(),
  user_id: z.string().min(1),
  login: z.string().min(1).optional(),
  scopes: z.array(z.string()).optional(),
});
const ClientBody = z.object({ client_id: z.string().min(1).optional(), client_secret: z.string().min(1).optional() });
const ExpireBody = z.object({ access_token: z.string().min(1).optional() });
const StatusBody = z.object({ status: z.string().min(1) });

const ConsentBody = z.union([
  z.object({ client_id: z.string().min(1).optional(), decision: z.literal('deny') }),
  z.object({
    client_id: z.string().min(1).optional(),
    user_id: z.string().min(1),
    login: z.string().min(1).optional(),
    scopes: z.array(z.string()).optional(),
    decision: z.literal('allow').optional(),
  }),
]);
const DeviceBody = z.object({
  user_code: z.string().min(1),
  user_id: z.string().min(1).optional(),
  login: z.string().min(1).optional(),
  decision: z.enum(['allow', 'deny']).optional(),
});
const DisconnectBody = z.object({ client_id: z.string().min(1).optional() });
const RedirectBody = z.object({ client_id: z.string().min(1).optional(), redirect_uri: z.string().min(1) });
const UserBody = z.object({
  id: z.string().regex(/^\d{1,20}$/, 'id must be a numeric user id'),
  login: z.string().regex(/^[A-Za-z0-9_]{1,25}$/, 'login must be 1-25 letters, digits or _'),
  display_name: z.string().min(1).optional(),
});

const ReconnectBody = z.object({
  grace_ms: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  new_session_id: z.boolean().optional(),
});
const CloseBody = z.object({ code: z.number().int() });
const EmptyBody = z.object({});
const EventsBody = z.object({
  event: z.record(z.string(), z.unknown()).optional(),
  count: z.number().int().min(1).max(MAX_EVENTS_PER_REQUEST).optional(),
  message_type: z.enum(['notification', 'revocation']).optional(),
  status: z.string().min(1).optional(),
});

const NO_CONTENT: Reply = { status: 204 };

/** The routes with an id in their path: the pattern, and the route's name with `:id` (what the switch below matches). */
const ID_ROUTES: ReadonlyArray<[RegExp, string]> = [
  [/^\/_emulator\/subscriptions\/([^/]+)\/status$/, '/_emulator/subscriptions/:id/status'],
  [/^\/_emulator\/subscriptions\/([^/]+)\/events$/, '/_emulator/subscriptions/:id/events'],
  [/^\/_emulator\/users\/([^/]+)\/disconnect$/, '/_emulator/users/:id/disconnect'],
  [/^\/_emulator\/ws\/sessions\/([^/]+)\/reconnect$/, '/_emulator/ws/sessions/:id/reconnect'],
  [/^\/_emulator\/ws\/sessions\/([^/]+)\/close$/, '/_emulator/ws/sessions/:id/close'],
  [/^\/_emulator\/ws\/sessions\/([^/]+)\/terminate$/, '/_emulator/ws/sessions/:id/terminate'],
];
const PLAIN_PATHS: ReadonlySet<string> = new Set([
  '/_emulator/users',
  '/_emulator/consent',
  '/_emulator/device',
  '/_emulator/grants',
  '/_emulator/user-tokens',
  '/_emulator/redirect-uris',
  '/_emulator/clients',
  '/_emulator/faults',
  '/_emulator/stats',
  '/_emulator/expire-tokens',
  '/_emulator/subscriptions',
  '/_emulator/conduits',
  '/_emulator/ws/sessions',
  '/_emulator/ws/reconnect',
]);

/** The route a path is (`:id` for its id part) and the decoded id; the path itself when it has no id. */
function routeOf(path: string): { route: string; id: string } {
  for (const [pattern, route] of ID_ROUTES) {
    const match = pattern.exec(path);
    if (match) return { route, id: decodeURIComponent(match[1] ?? '') };
  }
  return { route: path, id: '' };
}

/** Handles a request under `/_emulator`. */
export function handleControl(emulator: Emulator, req: Req): Reply {
  let route: { route: string; id: string };
  try {
    route = routeOf(req.path);
  } catch {
    return helixError(400, 'The id in the path is not valid percent-encoding');
  }
  const { id } = route;
  const key = `${req.method} ${route.route}`;
  switch (key) {
    case 'POST /_emulator/user-tokens':
      return withBody(req, UserTokenBody, (b) => {
        const token = emulator.registerUserToken({ clientId: b.client_id, userId: b.user_id, login: b.login, scopes: b.scopes });
        return { status: 200, json: { access_token: token } };
      });
    case 'POST /_emulator/clients':
      return withBody(req, ClientBody, (b) => {
        const client = emulator.addClient({ clientId: b.client_id, clientSecret: b.client_secret });
        return { status: 200, json: { client_id: client.clientId, client_secret: client.clientSecret } };
      }, 409);
    case 'POST /_emulator/consent':
      return withBody(req, ConsentBody, (b) => {
        if ('user_id' in b) emulator.setConsent({ clientId: b.client_id, userId: b.user_id, login: b.login, scopes: b.scopes });
        else emulator.setConsent({ clientId: b.client_id, decision: 'deny' });
        return NO_CONTENT;
      });
    case 'POST /_emulator/redirect-uris':
      return withBody(req, RedirectBody, (b) => {
        emulator.addRedirectUri(b.redirect_uri, b.client_id);
        return NO_CONTENT;
      });
    case 'DELETE /_emulator/consent':
      emulator.setConsent(undefined);
      return NO_CONTENT;
    case 'POST /_emulator/device':
      return withBody(req, DeviceBody, (b) => {
        if (b.decision !== 'deny' && !b.user_id) throw new Error('user_id is required to approve a device code');
        emulator.approveDevice(b.user_code, b.decision === 'deny' ? 'deny' : { userId: b.user_id!, login: b.login });
        return NO_CONTENT;
      }, 404);
    case 'POST /_emulator/users/:id/disconnect':
      return withBody(req, DisconnectBody, (b) => ({ status: 200, json: { revoked: emulator.disconnectUser(id, b.client_id) } }), 404);
    case 'POST /_emulator/users':
      return withBody(req, UserBody, (b) => {
        emulator.registerUser({ id: b.id, login: b.login, display_name: b.display_name });
        return NO_CONTENT;
      });
    case 'GET /_emulator/users':
      return { status: 200, json: { data: emulator.users() } };
    case 'GET /_emulator/user-tokens':
      return { status: 200, json: { data: emulator.userTokens(req.query.get('client_id') ?? undefined) } };
    case 'GET /_emulator/grants':
      return { status: 200, json: { data: emulator.grants(req.query.get('client_id') ?? undefined) } };
    case 'POST /_emulator/faults':
      return withBody(req, FaultSchema, (fault) => {
        emulator.injectFault(fault);
        return NO_CONTENT;
      });
    case 'DELETE /_emulator/faults':
      emulator.clearFaults();
      return NO_CONTENT;
    case 'GET /_emulator/stats':
      return { status: 200, json: emulator.stats };
    case 'DELETE /_emulator/stats':
      emulator.resetStats();
      return NO_CONTENT;
    case 'POST /_emulator/expire-tokens':
      return withBody(req, ExpireBody, (b) => {
        if (b.access_token) emulator.expireToken(b.access_token);
        else emulator.expireAllTokens();
        return NO_CONTENT;
      });
    case 'GET /_emulator/subscriptions':
      return { status: 200, json: { data: emulator.subscriptions(req.query.get('client_id') ?? undefined) } };
    case 'POST /_emulator/subscriptions/:id/status':
      return withBody(req, StatusBody, (b) => {
        emulator.setSubscriptionStatus(id, b.status);
        return NO_CONTENT;
      }, 404);
    case 'POST /_emulator/subscriptions/:id/events':
      return withBody(req, EventsBody, (b) => {
        const sent = emulator.sendEvents(id, { event: b.event, count: b.count, messageType: b.message_type, status: b.status });
        return { status: 200, json: { data: sent } };
      });
    case 'GET /_emulator/conduits':
      return { status: 200, json: { data: emulator.conduits() } };
    case 'GET /_emulator/ws/sessions':
      return { status: 200, json: { data: emulator.wsSessions() } };
    case 'POST /_emulator/ws/reconnect':
      return withBody(req, ReconnectBody, (b) => ({ status: 200, json: { data: emulator.reconnectWs(undefined, reconnectOptions(b)) } }));
    case 'POST /_emulator/ws/sessions/:id/reconnect':
      return withBody(req, ReconnectBody, (b) => ({ status: 200, json: { data: emulator.reconnectWs(id, reconnectOptions(b)) } }));
    case 'POST /_emulator/ws/sessions/:id/close':
      return withBody(req, CloseBody, (b) => {
        emulator.closeWs(id, b.code);
        return NO_CONTENT;
      });
    case 'POST /_emulator/ws/sessions/:id/terminate':
      return withBody(req, EmptyBody, () => {
        emulator.terminateWs(id);
        return NO_CONTENT;
      });
    default:
      return knownPath(req.path) ? helixError(405, 'Method Not Allowed') : helixError(404, 'Not Found');
  }
}

function reconnectOptions(b: z.infer<typeof ReconnectBody>): { graceMs?: number; newSessionId?: boolean } {
  return { ...(b.grace_ms === undefined ? {} : { graceMs: b.grace_ms }), ...(b.new_session_id === undefined ? {} : { newSessionId: b.new_session_id }) };
}

/**
 * Parses the body (an empty body is `{}`) with `schema` and runs `act`; a schema failure is 400, an error
 * thrown by `act` (unknown client, taken ID, unknown subscription) is `failure`, or the status an
 * EmulatorRequestError carries.
 */
function withBody<T>(req: Req, schema: z.ZodType<T>, act: (body: T) => Reply, failure = 400): Reply {
  const json = req.body.length === 0 ? { ok: true as const, value: {} } : parseJson(req.body);
  if (!json.ok) return helixError(400, 'The request body is not valid JSON');
  const parsed = schema.safeParse(json.value);
  if (!parsed.success) return helixError(400, `Invalid body: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
  try {
    return act(parsed.data);
  } catch (err) {
    if (err instanceof EmulatorRequestError) return helixError(err.status, err.message);
    return helixError(failure, err instanceof Error ? err.message : String(err));
  }
}

function knownPath(path: string): boolean {
  return PLAIN_PATHS.has(path) || ID_ROUTES.some(([pattern]) => pattern.test(path));
}
