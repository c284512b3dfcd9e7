/**
 * The emulator's node:http server: reads each request, applies a queued fault, routes it, writes (or drops)
 * the reply and records it. Nothing a client sends can crash it: bad input is a 4xx, a bug a 500.
 */
import { Conduits, wireConduitWithShards } from './conduits.js';
import { createEventSubWsServer, type ReconnectOptions } from './eventsub-ws.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/logger.js';
import { Buckets } from './bucket.js';
import { handleControl } from './control.js';
import { FaultQueue } from './faults.js';
import { faultHeaders, handleHelix, type HelixDeps } from './helix.js';
import { authorization, helixError, oauthError, type Reply, type Req } from './http.js';
import { announceGrant, disconnectUser } from './authorization-events.js';
import { mintToken, mockUserToken, revokeToken, validateToken, type OAuthDeps } from './oauth.js';
import { activatePage, authorizePage, startDevice } from './user-oauth.js';
import { resolveOptions } from './options.js';
import { EmulatorState } from './state.js';
import { emptyStats, recordRequest, resetStats } from './stats.js';
import type { Emulator, EmulatorOptions, Fault, RequestRecord } from './types.js';
import { WebhookDeliveries } from './deliveries.js';
import { readStateFile, restoreState, StateFileWriter } from './state-file.js';
import { EventSender, type SendEventsOptions } from './send-events.js';
import { WsControl } from './ws-control.js';

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * twitch-cli's mock paths (https://github.com/twitchdev/twitch-cli/blob/main/docs/mock-api.md#auth-namespace:
 * `/auth/token`, `/auth/validate`; `/auth/revoke`, which twitch-cli lacks, by the same rule) and twurple's
 * mock-mode path (`TWURPLE_MOCK_API_PORT`), mapped to Twitch's. `/auth/authorize` is twitch-cli's own
 * user-token endpoint (see oauth.ts mockUserToken), and `/mock/...` is Helix (twitch-cli's `/mock` namespace).
 */
const ALIASES: Readonly<Record<string, string>> = {
  '/auth/token': '/oauth2/token',
  '/auth/validate': '/oauth2/validate',
  '/auth/revoke': '/oauth2/revoke',
  '/eventsub/subscriptions': '/helix/eventsub/subscriptions',
};
const MOCK_PREFIX = '/mock/';

/** The Twitch path a requested path stands for. */
function resolveAlias(path: string): string {
  if (path.startsWith(MOCK_PREFIX)) return `/helix/${path.slice(MOCK_PREFIX.length)}`;
  return ALIASES[path] ?? path;
}

type Kind = 'oauth' | 'helix' | 'control';
type Handler = (req: Req) => Reply;

/**
 * Starts an emulated Twitch (id.twitch.tv OAuth + Helix EventSub subscriptions + webhook verification) on
 * a loopback port. @throws ConfigError for invalid options; the listen error when the port is taken.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const o = resolveOptions(options);
  const state = new EmulatorState(o.clock, o.tokenTtlSeconds);
  restoreState(state, o.stateFile === undefined ? undefined : readStateFile(o.stateFile), o.clients);
  const stateFile = o.stateFile === undefined ? undefined : new StateFileWriter({ path: o.stateFile, state, logger: o.logger });
  if (stateFile) {
    state.onChange = () => stateFile.schedule();
    // The clients generated or given at start are part of the state from the first moment.
    stateFile.schedule();
  }
  const stats = emptyStats();
  const faults = new FaultQueue();
  const closing = new AbortController();
  const verifier = new WebhookDeliveries({ ...o, mode: o.verification, state, stats, signal: closing.signal });
  const events = { state, deliveries: verifier };
  // EventSub WebSocket sessions on /ws of this server, the conduits' websocket shards (unless a test supplies its own).
  const eventsubWs = createEventSubWsServer({ clock: o.clock, logger: o.logger, reconnectNewSessionId: o.reconnectNewSessionId });
  const conduits = new Conduits({ ...o, wsSessions: o.wsSessions ?? eventsubWs.sessions, state, stats, signal: closing.signal });
  const sender = new EventSender({ state, conduits, deliveries: verifier, clock: o.clock, logger: o.logger, signal: closing.signal });
  const wsControl = new WsControl(eventsubWs, conduits);
  const oauth: OAuthDeps = {
    state,
    stats,
    tokenTtlSeconds: o.tokenTtlSeconds,
    url: () => url,
    onGrant: (clientId, user) => announceGrant(events, clientId, user),
  };
  const helix: HelixDeps = {
    state,
    stats,
    clock: o.clock,
    buckets: new Buckets(o.bucket),
    pageSize: o.pageSize,
    maxTotalCost: o.maxTotalCost,
    conduits,
    onCreated: (s) => verifier.onCreated(s),
  };
  const oauthRoutes: Record<string, Record<string, Handler>> = {
    '/oauth2/token': { POST: (r) => mintToken(oauth, r), GET: () => oauthError(404, 'Not Found') },
    '/oauth2/validate': { GET: (r) => validateToken(oauth, r) },
    '/oauth2/revoke': { POST: (r) => revokeToken(oauth, r) },
    '/oauth2/authorize': { GET: (r) => authorizePage(oauth, r) },
    '/auth/authorize': { GET: (r) => authorizePage(oauth, r), POST: (r) => mockUserToken(oauth, r) },
    '/oauth2/device': { POST: (r) => startDevice(oauth, r) },
    '/activate': { GET: (r) => activatePage(oauth, r) },
  };

  const route = (req: Req): { kind: Kind | undefined; handle: Handler } => {
    if (req.path.startsWith('/_emulator/')) return { kind: 'control', handle: (r) => handleControl(emulator, r) };
    if (req.path === '/helix' || req.path.startsWith('/helix/')) return { kind: 'helix', handle: (r) => handleHelix(helix, r) };
    const methods = oauthRoutes[req.path];
    if (!methods) return { kind: undefined, handle: () => helixError(404, 'Not Found') };
    return { kind: 'oauth', handle: methods[req.method] ?? (() => oauthError(405, 'Method Not Allowed')) };
  };

  const faultReply = (fault: Extract<Fault, { kind: 'status' }>, req: Req, kind: Kind | undefined): Reply => {
    const base = kind === 'oauth' ? oauthError(fault.status, 'injected fault') : helixError(fault.status, 'injected fault');
    const reply = fault.body === undefined ? base : { status: fault.status, json: fault.body };
    return kind === 'helix' ? { ...reply, headers: { ...faultHeaders(helix, req, fault.status) } } : reply;
  };

  const authKind = (req: Req): RequestRecord['auth'] => {
    if (req.headers.authorization === undefined) return 'none';
    return state.validToken(authorization(req)?.token)?.kind ?? 'invalid';
  };

  const onRequest = async (raw: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = o.clock.now();
    const req = await readRequest(raw, res);
    if (!req) return;
    // The path only: a query may hold a client secret or a token (twitch-cli's mock auth takes them there).
    const log = (status: number): void =>
      o.logger.debug('emulator request', { method: req.method, path: req.rawPath, status, ms: o.clock.now() - started });
    const { kind, handle } = route(req);
    if (kind === 'control') {
      const reply = safely(handle, req, o.logger);
      log(reply.status);
      return write(res, reply);
    }
    const record = (status: number, auth: RequestRecord['auth']): void => {
      recordRequest(stats, { method: req.method, path: req.rawPath, status, auth }, kind === 'helix');
      log(status);
    };
    const fault = faults.take(req.method, req.path, kind === 'helix');
    if (fault?.kind === 'reset') {
      record(0, authKind(req));
      raw.socket.destroy();
      return;
    }
    if (fault?.kind === 'latency') {
      try {
        await o.clock.sleep(fault.ms, closing.signal);
      } catch {
        res.destroy();
        return;
      }
    }
    if (fault?.kind === 'expire-token') {
      const presented = authorization(req)?.token;
      if (presented) state.invalidate(presented);
    }
    const auth = authKind(req);
    const reply = fault?.kind === 'status' ? faultReply(fault, req, kind) : safely(handle, req, o.logger);
    if (fault?.kind === 'drop-response') {
      record(0, auth);
      res.destroy();
    } else {
      record(reply.status, auth);
      write(res, reply);
    }
    reply.after?.();
  };

  const server = createServer((raw, res) => {
    onRequest(raw, res).catch((err: unknown) => {
      o.logger.error('emulator request failed', { err: err instanceof Error ? err : new Error(String(err)) });
      if (!res.headersSent) write(res, helixError(500, 'Internal Server Error'));
      else res.destroy();
    });
  });
  server.on('upgrade', (req, socket, head) => {
    if (!eventsubWs.handleUpgrade(req, socket, head)) socket.destroy();
  });
  const port = await listen(server, o.host, o.port);
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;

  let closed: Promise<void> | undefined;
  const emulator: Emulator = Object.freeze({
    url,
    authUrl: `${url}/oauth2`,
    apiUrl: `${url}/helix`,
    get clients() {
      return state.clients;
    },
    addClient: (client?: Parameters<Emulator['addClient']>[0]) => state.addClient(client),
    userTokens: (clientId?: string) =>
      state.userTokens(clientId).map((t) => ({
        token: t.value,
        user_id: t.userId ?? '',
        login: t.login ?? '',
        scopes: [...t.scopes],
        valid: state.validToken(t.value) !== undefined,
      })),
    addRedirectUri: (uri: string, clientId?: string) => state.addRedirectUri(clientId ?? state.clients[0]!.clientId, uri),
    registerUserToken: (init: Parameters<Emulator['registerUserToken']>[0]) => state.registerUserToken(init).value,
    setConsent: (consent: Parameters<Emulator['setConsent']>[0]) => {
      const clientId = consent?.clientId ?? state.clients[0]!.clientId;
      state.grants.setConsent(
        clientId,
        consent === undefined ? undefined : consent.decision === 'deny' ? 'deny' : { userId: consent.userId, login: consent.login ?? `user${consent.userId}`, scopes: consent.scopes },
      );
    },
    approveDevice: (userCode: string, decision: Parameters<Emulator['approveDevice']>[1]) => {
      const record = state.grants.deviceByUserCode(userCode);
      if (!record) throw new Error(`No open device code ${userCode}`);
      record.decision = decision === 'deny' ? 'deny' : { userId: decision.userId, login: decision.login ?? `user${decision.userId}` };
    },
    registerUser: (user: Parameters<Emulator['registerUser']>[0]) =>
      state.registerUser({ id: user.id, login: user.login, display_name: user.display_name ?? user.login }),
    users: () => state.knownUsers(),
    disconnectUser: (userId: string, clientId?: string) =>
      (disconnectUser(events, clientId ?? state.clients[0]!.clientId, userId) ?? []).map((s) => s.wire.id),
    grants: (clientId?: string) => {
      const id = clientId ?? state.clients[0]!.clientId;
      return state.grants.list(id).map((g) => ({ user_id: g.userId, login: g.login, scopes: [...g.scopes].sort() }));
    },
    expireToken: (value: string) => void state.invalidate(value),
    expireAllTokens: () => state.invalidateAll(),
    injectFault: (fault: Fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    subscriptions: (clientId?: string) => state.subscriptionsOf(clientId).map((s) => structuredClone(s.wire)),
    setSubscriptionStatus: (id: string, status: string) => {
      const found = state.findSubscription(id);
      if (!found) throw new Error(`Unknown subscription ${id}`);
      state.setSubscriptionStatus(found, status);
    },
    deliverToConduit: (id: string, event: Record<string, unknown>) => {
      const found = state.findSubscription(id);
      if (found?.wire.transport.method !== 'conduit') throw new Error(`No conduit subscription ${id}`);
      return conduits.deliver(found, event);
    },
    sendEvents: (id: string, options?: SendEventsOptions) => sender.send(id, options),
    conduits: () => conduits.list().map(wireConduitWithShards),
    wsSessions: () => wsControl.list(),
    reconnectWs: (sessionId?: string, options?: ReconnectOptions) => wsControl.reconnect(sessionId, options),
    closeWs: (sessionId: string, code: number) => wsControl.close(sessionId, code),
    terminateWs: (sessionId: string) => wsControl.terminate(sessionId),
    stats,
    resetStats: () => resetStats(stats),
    close: () =>
      (closed ??= (async () => {
        closing.abort();
        // Upgraded sockets are not reached by closeAllConnections(): the WebSocket sessions close first.
        await eventsubWs.close();
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await Promise.all([done, verifier.drain(), conduits.drain()]);
        await stateFile?.flush();
      })()),
  });
  return emulator;
}

/** Reads the whole request; answers 400/413 itself and returns undefined when it cannot be handled. */
async function readRequest(raw: IncomingMessage, res: ServerResponse): Promise<Req | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Past the limit the rest is read and dropped: breaking out would destroy the socket before the 413.
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) {
    write(res, { ...helixError(413, 'Request body too large'), headers: { connection: 'close' } });
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(raw.url ?? '/', 'http://emulator.invalid');
  } catch {
    write(res, helixError(400, 'Bad request URL'));
    return undefined;
  }
  const rawPath = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
  return {
    method: (raw.method ?? 'GET').toUpperCase(),
    rawPath,
    path: resolveAlias(rawPath),
    query: url.searchParams,
    headers: raw.headers,
    body: Buffer.concat(chunks),
  };
}

/** A handler that throws is a bug in the emulator: answer 500 and log it, never crash. */
function safely(handle: Handler, req: Req, logger: Logger): Reply {
  try {
    return handle(req);
  } catch (err) {
    logger.error('emulator handler failed', { path: req.rawPath, err: err instanceof Error ? err : new Error(String(err)) });
    return helixError(500, 'Internal Server Error');
  }
}

function write(res: ServerResponse, reply: Reply): void {
  if (res.destroyed || res.headersSent) return;
  const headers: Record<string, string> = { ...reply.headers };
  let payload = '';
  if (reply.json !== undefined && reply.status !== 204) {
    payload = JSON.stringify(reply.json);
    headers['content-type'] = 'application/json';
  } else if (reply.text !== undefined) {
    payload = reply.text;
    headers['content-type'] = 'text/plain; charset=utf-8';
  }
  headers['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(reply.status, headers);
  res.end(payload);
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
