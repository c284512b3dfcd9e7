import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { test } from 'node:test';
import { readHeaders, readRawHeaders } from '../../src/receiver/http-io.js';
import type { ReceiverRequest } from '../../src/receiver/types.js';

test('readRawHeaders() keys by lower-case name, keeps every value of a repeated header in order, and has no prototype', () => {
  const headers = readRawHeaders([
    'Twitch-Eventsub-Message-Id', 'a',
    'Content-Type', 'application/json',
    'twitch-eventsub-message-id', 'b',
    'TWITCH-EVENTSUB-MESSAGE-ID', 'c',
    '__proto__', 'x',
  ]);
  assert.deepEqual(headers['twitch-eventsub-message-id'], ['a', 'b', 'c']);
  assert.equal(headers['content-type'], 'application/json');
  assert.equal(headers['__proto__'], 'x', 'an own key, not the prototype');
  assert.equal(Object.getPrototypeOf(headers), null);
  assert.deepEqual(Object.keys(headers), ['twitch-eventsub-message-id', 'content-type', '__proto__']);
});

/** readHeaders() of a real node:http request carrying `head` (the header lines, CRLF-separated). */
async function headersOf(head: string): Promise<ReceiverRequest['headers']> {
  let seen: ReceiverRequest['headers'] | undefined;
  const server = createServer((req: IncomingMessage, res) => {
    seen = readHeaders(req);
    res.writeHead(204, { Connection: 'close' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.end(`POST /webhooks/callback HTTP/1.1\r\n${head}\r\nContent-Length: 0\r\n\r\n`);
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
    });
  } finally {
    server.close();
  }
  assert.ok(seen, 'the request reached the server');
  return seen;
}

const own = (headers: ReceiverRequest['headers']): Record<string, unknown> => Object.fromEntries(Object.entries(headers));

test('readHeaders() of a request whose header names are all distinct: every header once, as a string, by lower-case name', async () => {
  const headers = await headersOf('Host: 127.0.0.1\r\nTwitch-Eventsub-Message-Id: a\r\nCONTENT-TYPE: application/json\r\nSet-Cookie: c=1');
  assert.deepEqual(own(headers), {
    host: '127.0.0.1',
    'twitch-eventsub-message-id': 'a',
    'content-type': 'application/json',
    'set-cookie': 'c=1',
    'content-length': '0',
  });
});

test('readHeaders() of a request repeating a header (one Node joins, one it drops, Set-Cookie) keeps every value in order', async () => {
  const headers = await headersOf(
    'Host: 127.0.0.1\r\nTwitch-Eventsub-Message-Id: a\r\ntwitch-eventsub-message-id: b\r\nContent-Type: x\r\nContent-Type: y\r\nSet-Cookie: c=1\r\nSet-Cookie: c=2',
  );
  assert.deepEqual(headers['twitch-eventsub-message-id'], ['a', 'b']);
  assert.deepEqual(headers['content-type'], ['x', 'y']);
  assert.deepEqual(headers['set-cookie'], ['c=1', 'c=2']);
  assert.equal(headers['host'], '127.0.0.1');
});

test('readHeaders() of a request with a header named __proto__ keeps it as an own key', async () => {
  const headers = await headersOf('Host: 127.0.0.1\r\n__proto__: x\r\nTwitch-Eventsub-Message-Id: a');
  assert.equal(Object.hasOwn(headers, '__proto__'), true);
  assert.equal(headers['__proto__'], 'x');
  assert.equal(headers['twitch-eventsub-message-id'], 'a');
});
