/** Helpers for tests of the emulator's conduits over its own `/ws`: a recording WebSocket client, a conduit with shards on them. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import WebSocket from 'ws';
import { createEventSubWsServer, type EventSubWsOptions, type EventSubWsServer } from '../../src/emulator/eventsub-ws.js';
import type { Emulator } from '../../src/emulator/index.js';
import type { WsSessionView } from '../../src/emulator/ws-sessions.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { untilEmitted } from '../helpers/wait.js';
import { call, helix, type Answer } from './helpers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read the frames' JSON field by field
export type Frame = any;

export interface WsClient {
  ws: WebSocket;
  frames: Frame[];
  /** The session id of the first welcome. */
  id: string;
  /** Frames of one message_type. */
  of(type: string): Frame[];
  /** Resolves once `cond(frames)` holds (checked on each frame; fails after the guard time). */
  until(cond: (frames: Frame[]) => boolean, what: string): Promise<void>;
  /** Resolves with the close code once the socket is closed. */
  closed(): Promise<number>;
}

/** Opens a socket to `url` (default the emulator's `/ws`), closed after the test, and waits for its welcome. */
export async function wsClient(t: TestContext, emu: Emulator, url = `${emu.url.replace(/^http/, 'ws')}/ws`): Promise<WsClient> {
  const ws = new WebSocket(url);
  t.after(() => ws.terminate());
  const frames: Frame[] = [];
  let closeCode: number | undefined;
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8'))));
  ws.on('error', () => undefined);
  ws.on('close', (code) => (closeCode = code));
  const until = (cond: (f: Frame[]) => boolean, what: string): Promise<void> => untilEmitted(ws, 'message', () => cond(frames), what);
  await until((f) => f.length >= 1, 'the welcome');
  return {
    ws,
    frames,
    id: frames[0].payload.session.id as string,
    of: (type) => frames.filter((f) => f.metadata.message_type === type),
    until,
    closed: async () => {
      await untilEmitted(ws, 'close', () => closeCode !== undefined, 'the socket to close');
      return closeCode!;
    },
  };
}

export interface WsServerRig {
  clock: FakeClock;
  server: EventSubWsServer;
  url: string;
  port: number;
  /** Every session that ended, in order. */
  disconnects: WsSessionView[];
}

/** The EventSub WebSocket server alone on a loopback HTTP server, on a FakeClock; closed after the test. */
export async function startWsServer(t: TestContext, options: EventSubWsOptions = {}): Promise<WsServerRig> {
  const clock = new FakeClock();
  const server = createEventSubWsServer({ clock, ...options });
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => {
    if (!server.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  const disconnects: WsSessionView[] = [];
  server.sessions.onDisconnect((s) => disconnects.push(s));
  t.after(async () => {
    await server.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  return { clock, server, url: `ws://127.0.0.1:${port}/ws`, port, disconnects };
}

/** JSON call to the control API. */
export function control(emu: Emulator, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
  return call(`${emu.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
}

/** A conduit of `sessions.length` shards, shard i assigned to session i; @throws when Helix refuses. */
export async function conduitOn(emu: Emulator, auth: { token: string; clientId: string }, sessions: readonly string[]): Promise<string> {
  const created = await helix(emu, { ...auth, method: 'POST', path: '/helix/eventsub/conduits', body: { shard_count: sessions.length } });
  if (created.status !== 200) throw new Error(`conduit create: ${created.status} ${created.text}`);
  const conduitId = created.json.data[0].id as string;
  const shards = sessions.map((session_id, i) => ({ id: String(i), transport: { method: 'websocket', session_id } }));
  const assigned = await helix(emu, { ...auth, method: 'PATCH', path: '/helix/eventsub/conduits/shards', body: { conduit_id: conduitId, shards } });
  if (assigned.status !== 202 || assigned.json.errors.length > 0) throw new Error(`shard update: ${assigned.status} ${assigned.text}`);
  return conduitId;
}

/** Creates a subscription; returns its id. @throws when Helix refuses. */
export async function subscribe(
  emu: Emulator,
  auth: { token: string; clientId: string },
  body: { type: string; version: string; condition: Record<string, string>; transport: Record<string, string> },
): Promise<string> {
  const res = await helix(emu, { ...auth, method: 'POST', body });
  if (res.status !== 202) throw new Error(`subscribe: ${res.status} ${res.text}`);
  return res.json.data[0].id as string;
}

/** The status of one shard as Get Conduit Shards shows it. */
export async function shardStatus(emu: Emulator, auth: { token: string; clientId: string }, conduitId: string, shardId: string): Promise<string> {
  const res = await helix(emu, { ...auth, path: '/helix/eventsub/conduits/shards', query: `conduit_id=${conduitId}` });
  return res.json.data.find((s: { id: string }) => s.id === shardId)?.status as string;
}
