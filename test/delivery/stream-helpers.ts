import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';
import { EventStream, type EventStreamOptions } from '../../src/delivery/stream.js';
import type { JournalRecord } from '../../src/journal/types.js';

/** An EventStream behind a real node:http server on 127.0.0.1 that answers 404 to other upgrade paths. */
export async function startStream(t: TestContext, options: EventStreamOptions): Promise<{ stream: EventStream; base: string }> {
  const stream = new EventStream(options);
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    if (!stream.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await stream.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { stream, base: `ws://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A client and what it saw: records, the open, the HTTP refusal or the close. */
export interface TestClient {
  ws: WebSocket;
  records: JournalRecord[];
  /** Resolves with 'open', or with the HTTP status of a refused upgrade. */
  outcome: Promise<'open' | number>;
  closed: Promise<{ code: number; reason: string }>;
}

export function connect(t: TestContext, url: string, options: ClientOptions = {}): TestClient {
  const ws = new WebSocket(url, options);
  const records: JournalRecord[] = [];
  ws.on('message', (data: Buffer) => records.push(JSON.parse(data.toString('utf8')) as JournalRecord));
  ws.on('error', () => undefined);
  const outcome = new Promise<'open' | number>((resolve) => {
    ws.once('open', () => resolve('open'));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  t.after(() => ws.terminate());
  return { ws, records, outcome, closed };
}

/** The seqs of `records`. */
export function seqs(records: JournalRecord[]): number[] {
  return records.map((r) => r.seq);
}

/** [from, from+1, ..., to]. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
