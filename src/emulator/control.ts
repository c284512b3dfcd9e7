/**
 * `/_emulator/*`: the public Emulator API over HTTP, for a standalone `eventsubd emulate` and for tests
 * in another process. JSON in and out; errors use the Helix body shape.
 */
import { z } from 'zod';
import { FaultSchema } from './faults.js';
import { helixError, parseJson, type Reply, type Req } from './http.js';
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

const NO_CONTENT: Reply = { status: 204 };
const STATUS_PATH = /^\/_emulator\/subscriptions\/([^/]+)\/status$/;
const DISCONNECT_PATH = /^\/_emulator\/users\/([^/]+)\/disconnect$/;

/** Handles a request under `/_emulator`. */
export function handleControl(emulator: Emulator, req: Req): Reply {
  const key = `${req.method} ${STATUS_PATH.test(req.path) ? '/_emulator/subscriptions/:id/status' : DISCONNECT_PATH.test(req.path) ? '/_emulator/users/:id/disconnect' : req.path}`;
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
    case 'POST /_emulator/users/:id/disconnect': {
      const userId = decodeURIComponent(DISCONNECT_PATH.exec(req.path)?.[1] ?? '');
      return withBody(req, DisconnectBody, (b) => ({ status: 200, json: { revoked: emulator.disconnectUser(userId, b.client_id) } }), 404);
    }
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
    case 'POST /_emulator/subscriptions/:id/status': {
      const id = STATUS_PATH.exec(req.path)?.[1] ?? '';
      return withBody(req, StatusBody, (b) => {
        emulator.setSubscriptionStatus(decodeURIComponent(id), b.status);
        return NO_CONTENT;
      }, 404);
    }
    default:
      return knownPath(req.path) ? helixError(405, 'Method Not Allowed') : helixError(404, 'Not Found');
  }
}

/**
 * Parses the body (an empty body is `{}`) with `schema` and runs `act`; a schema failure is 400, an error
 * thrown by `act` (unknown client, taken ID, unknown subscription) is `failure`.
 */
function withBody<T>(req: Req, schema: z.ZodType<T>, act: (body: T) => Reply, failure = 400): Reply {
  const json = req.body.length === 0 ? { ok: true as const, value: {} } : parseJson(req.body);
  if (!json.ok) return helixError(400, 'The request body is not valid JSON');
  const parsed = schema.safeParse(json.value);
  if (!parsed.success) return helixError(400, `Invalid body: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
  try {
    return act(parsed.data);
  } catch (err) {
    return helixError(failure, err instanceof Error ? err.message : String(err));
  }
}

function knownPath(path: string): boolean {
  return (
    STATUS_PATH.test(path) ||
    DISCONNECT_PATH.test(path) ||
    ['/_emulator/users', '/_emulator/consent', '/_emulator/device', '/_emulator/grants', '/_emulator/user-tokens', '/_emulator/redirect-uris', '/_emulator/clients', '/_emulator/faults', '/_emulator/stats', '/_emulator/expire-tokens', '/_emulator/subscriptions'].includes(path)
  );
}
