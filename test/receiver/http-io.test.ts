import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { readHeaders } from '../../src/receiver/http-io.js';

const withRaw = (rawHeaders: string[]): IncomingMessage => ({ rawHeaders }) as unknown as IncomingMessage;

test('readHeaders() keys by lower-case name, keeps every value of a repeated header in order, and has no prototype', () => {
  const headers = readHeaders(
    withRaw([
      'Twitch-Eventsub-Message-Id', 'a',
      'Content-Type', 'application/json',
      'twitch-eventsub-message-id', 'b',
      'TWITCH-EVENTSUB-MESSAGE-ID', 'c',
      '__proto__', 'x',
    ]),
  );
  assert.deepEqual(headers['twitch-eventsub-message-id'], ['a', 'b', 'c']);
  assert.equal(headers['content-type'], 'application/json');
  assert.equal(headers['__proto__'], 'x', 'an own key, not the prototype');
  assert.equal(Object.getPrototypeOf(headers), null);
  assert.deepEqual(Object.keys(headers), ['twitch-eventsub-message-id', 'content-type', '__proto__']);
});
