/**
 * Delivery through the real daemon (`eventsubd run` in a child process): the forwarder survives its target
 * being down and a daemon restart, and the WebSocket stream shows what `events tail` shows.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, describe, test } from 'node:test';
import WebSocket from 'ws';
import { verifyForwardSignature } from '../../src/delivery/forwarder.js';
import type { JournalRecord } from '../../src/journal/types.js';
import { BIN, ROOT } from '../helpers/cli.js';
import { eventsTail, jsonLines, startDaemon, startFixture, waitFor, type Fixture } from '../daemon/harness.js';
import { send } from '../daemon/messages.js';

const FORWARD_SECRET = 'forward-secret-for-e2e';
const STREAM_TOKEN = 'stream-token-for-e2e-0123';

interface Received {
  seq: number;
  messageId: string;
  body: string;
  signatureOk: boolean;
}

/** A consumer that answers 503 while `down`, else 204, and records every request it accepted. */
async function startConsumer(): Promise<{ url: string; accepted: Received[]; attempts: number; down: boolean; close(): Promise<void> }> {
  const state = { accepted: [] as Received[], attempts: 0, down: true };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.attempts += 1;
      if (state.down) {
        res.writeHead(503).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      state.accepted.push({
        seq: Number(req.headers['eventsubd-seq']),
        messageId: String(req.headers['eventsubd-message-id']),
        body,
        signatureOk: verifyForwardSignature(FORWARD_SECRET, Buffer.from(body), String(req.headers['eventsubd-signature'])),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/hook`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

const fixtures: Fixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

describe('delivery through the daemon', () => {
  test('the forwarder waits out a down target and a restart, and delivers every record in order', async (t) => {
    const fx = await startFixture({ subscriptions: [] });
    fixtures.push(fx);
    const consumer = await startConsumer();
    t.after(() => consumer.close());
    const env = { EVENTSUBD_FORWARD_URL: consumer.url, EVENTSUBD_FORWARD_SECRET: FORWARD_SECRET, EVENTSUBD_FORWARD_MAX_BACKOFF_MS: '200' };
    let daemon = await startDaemon(fx, env);
    for (let i = 0; i < 10; i++) assert.equal((await send(fx)).status, 204);
    await waitFor('failed attempts while the target is down', () => consumer.attempts >= 3);
    assert.equal(consumer.accepted.length, 0);
    consumer.down = false;
    await waitFor('10 records forwarded', () => consumer.accepted.length >= 10, { timeoutMs: 10_000 });
    assert.equal(await daemon.stop('SIGTERM'), 0);

    consumer.down = true; // down across the restart
    daemon = await startDaemon(fx, env);
    t.after(() => daemon.stop('SIGTERM').catch(() => {}));
    for (let i = 0; i < 10; i++) assert.equal((await send(fx)).status, 204);
    await waitFor('attempts after the restart', () => consumer.attempts >= consumer.accepted.length + 14);
    consumer.down = false;
    await waitFor('20 distinct records forwarded', () => new Set(consumer.accepted.map((r) => r.seq)).size >= 20, { timeoutMs: 10_000 });

    const bySeq = new Map(consumer.accepted.map((r) => [r.seq, r]));
    assert.deepEqual([...bySeq.keys()].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1), 'every seq, none skipped');
    const seqs = consumer.accepted.map((r) => r.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in journal order');
    for (const r of consumer.accepted) {
      assert.ok(r.signatureOk, `signature of seq ${r.seq}`);
      const record = JSON.parse(r.body) as JournalRecord;
      assert.equal(record.seq, r.seq);
      assert.equal(record.message_id, r.messageId);
    }
    const journal = jsonLines((await eventsTail(fx, ['--since', '0', '--json'])).stdout);
    assert.deepEqual(
      journal.map((r) => r.message_id),
      [...bySeq.values()].sort((a, b) => a.seq - b.seq).map((r) => r.messageId),
      'an idempotent consumer holds exactly the journal',
    );
  });

  test('the stream replays from a cursor, continues live, and agrees with events tail; bad tokens are refused', async (t) => {
    const fx = await startFixture({ subscriptions: [] });
    fixtures.push(fx);
    const daemon = await startDaemon(fx, { EVENTSUBD_STREAM_TOKEN: STREAM_TOKEN });
    t.after(() => daemon.stop('SIGTERM').catch(() => {}));
    const wsUrl = `ws://127.0.0.1:${fx.port}/events`;

    for (const headers of [{}, { Authorization: 'Bearer wrong-token-000000000' }]) {
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${wsUrl}?since=0`, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => {});
      });
      assert.equal(refused, 401);
    }

    for (let i = 0; i < 5; i++) assert.equal((await send(fx)).status, 204);
    let followed = '';
    const follow = spawn(process.execPath, [BIN, 'events', 'tail', '--follow', '--json', '--since', '2'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...fx.env() },
    });
    t.after(() => follow.kill('SIGKILL'));
    follow.stdout.setEncoding('utf8').on('data', (d: string) => (followed += d));
    const frames: JournalRecord[] = [];
    const ws = new WebSocket(`${wsUrl}?since=2`, { headers: { Authorization: `Bearer ${STREAM_TOKEN}` } });
    t.after(() => ws.terminate());
    ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as JournalRecord));
    await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
    await waitFor('the replay', () => frames.length >= 3);
    for (let i = 0; i < 5; i++) assert.equal((await send(fx)).status, 204);
    await waitFor('live records', () => frames.length >= 8);
    assert.deepEqual(frames.map((f) => f.seq), [3, 4, 5, 6, 7, 8, 9, 10], 'no gap, no duplicate between replay and live');

    const tail = jsonLines((await eventsTail(fx, ['--since', '2', '--json'])).stdout);
    assert.deepEqual(frames, tail, 'the stream and events tail show the same records');
    await waitFor('events tail --follow to catch up', () => jsonLines(followed).length >= 8);
    assert.deepEqual(jsonLines(followed), frames, 'events tail --follow and the stream agree');
  });
});
