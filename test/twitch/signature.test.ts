import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { verifySignature } from '../../src/twitch/signature.js';

/** The reference: Node's own HMAC over id + timestamp + body, independent of signature.ts. */
const reference = (secret: string, id: string, timestamp: string, body: Uint8Array): string =>
  'sha256=' + createHmac('sha256', secret).update(id).update(timestamp).update(body).digest('hex');

const ID = 'befa7b53-d79d-478f-86b9-120f112b044e';
const TS = '2026-12-06T20:00:00.123456789Z';

test('verifySignature() matches createHmac for secrets shorter than, equal to and longer than a SHA-256 block, and unicode ones', () => {
  const body = Buffer.from('{"subscription":{"id":"x"},"event":{"a":"b"}}');
  for (const secret of ['0123456789', 'k'.repeat(63), 'k'.repeat(64), 'k'.repeat(65), 'k'.repeat(100), 'sécret-ключ-秘密-🔑', 'é'.repeat(40)]) {
    const signature = reference(secret, ID, TS, body);
    assert.equal(verifySignature([secret], ID, TS, body, signature), true, `secret of ${secret.length} chars`);
    assert.equal(verifySignature([secret + 'x'], ID, TS, body, signature), false, `secret of ${secret.length} chars + 1`);
  }
});

test('verifySignature() matches createHmac for bodies from empty to past the one-shot size, and a changed byte fails', () => {
  const secret = 'bench-webhook-secret-0123456789';
  for (const size of [0, 1, 55, 64, 4096, 65_535, 65_536, 65_537, 300_000, 1024 * 1024]) {
    const body = Buffer.alloc(size, 0x61);
    for (let i = 0; i < size; i += 997) body[i] = i & 0xff;
    const signature = reference(secret, ID, TS, body);
    assert.equal(verifySignature([secret], ID, TS, body, signature), true, `body of ${size} bytes`);
    if (size > 0) {
      body[size - 1] = body[size - 1]! ^ 1;
      assert.equal(verifySignature([secret], ID, TS, body, signature), false, `body of ${size} bytes, last byte changed`);
    }
  }
  // A large body first, then a small one: the scratch buffer that grew must not leak bytes into the next digest.
  const small = Buffer.from('{"a":1}');
  assert.equal(verifySignature([secret], ID, TS, small, reference(secret, ID, TS, small)), true);
});

test('verifySignature() takes header values as createHmac takes strings (UTF-8), including latin1 characters a header may carry', () => {
  const secret = 'another-secret-0123';
  const body = Buffer.from('{}');
  const id = 'id-\u00e9\u00ff';
  const signature = reference(secret, id, TS, body);
  assert.equal(verifySignature([secret], id, TS, body, signature), true);
  assert.equal(verifySignature([secret], 'id-\u00e9\u00fe', TS, body, signature), false);
});

test('verifySignature() accepts a match with any of several secrets, never with an empty one, and checks each with the right pads', () => {
  const body = Buffer.from('{"event":{}}');
  const current = 'current-secret-0123456789';
  const previous = 'previous-secret-0123456789';
  assert.equal(verifySignature([current, previous], ID, TS, body, reference(previous, ID, TS, body)), true);
  assert.equal(verifySignature([previous, current], ID, TS, body, reference(previous, ID, TS, body)), true);
  assert.equal(verifySignature([current], ID, TS, body, reference(previous, ID, TS, body)), false);
  assert.equal(verifySignature(['', current], ID, TS, body, reference('', ID, TS, body)), false);
  // More distinct secrets than the pad cache holds: each still verifies after the cache was cleared.
  for (let i = 0; i < 40; i++) {
    const secret = `rotating-secret-${i}-0123456789`;
    assert.equal(verifySignature([secret], ID, TS, body, reference(secret, ID, TS, body)), true);
  }
  assert.equal(verifySignature([current], ID, TS, body, reference(current, ID, TS, body)), true);
});
