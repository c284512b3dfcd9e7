import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBody, parseRfc3339 } from '../../src/receiver/message.js';

test('parseRfc3339() reads nanosecond timestamps, truncating to milliseconds', () => {
  assert.equal(parseRfc3339('2019-11-16T10:11:12.634234626Z'), Date.parse('2019-11-16T10:11:12.634Z'));
  assert.equal(parseRfc3339('2019-11-16T10:11:12Z'), Date.parse('2019-11-16T10:11:12.000Z'));
  assert.equal(parseRfc3339('2019-11-16T10:11:12.5Z'), Date.parse('2019-11-16T10:11:12.500Z'));
  assert.equal(parseRfc3339('2019-11-16t10:11:12.1z'), Date.parse('2019-11-16T10:11:12.100Z'));
});

test('parseRfc3339() applies numeric offsets', () => {
  assert.equal(parseRfc3339('2019-11-16T12:11:12.000+02:00'), Date.parse('2019-11-16T10:11:12.000Z'));
  assert.equal(parseRfc3339('2019-11-16T05:41:12.000-04:30'), Date.parse('2019-11-16T10:11:12.000Z'));
});

test('parseRfc3339() rejects what is not an RFC 3339 date-time', () => {
  for (const bad of [
    '',
    '2019-11-16',
    '2019-11-16T10:11:12',
    '2019-11-16 10:11:12Z',
    '2019-02-29T10:11:12Z',
    '2019-13-01T10:11:12Z',
    '2019-11-16T24:00:00Z',
    '2019-11-16T10:60:00Z',
    '2019-11-16T10:11:12.1234567890Z',
    '2019-11-16T10:11:12+2:00',
    ' 2019-11-16T10:11:12Z',
    '1573899072',
  ]) {
    assert.equal(parseRfc3339(bad), undefined, bad);
  }
  assert.equal(parseRfc3339('2020-02-29T00:00:00Z'), Date.parse('2020-02-29T00:00:00Z'));
});

test('parseBody() keeps only id, type, version, condition and status of the subscription', () => {
  const body = Buffer.from(
    JSON.stringify({
      subscription: { id: 's', type: 't', version: '1', status: 'enabled', condition: { a: '1' }, transport: { method: 'webhook' }, cost: 1 },
      event: { id: 'e' },
    }),
  );
  assert.deepEqual(parseBody('notification', body), {
    type: 'notification',
    subscription: { id: 's', type: 't', version: '1', status: 'enabled', condition: { a: '1' } },
    event: { id: 'e' },
  });
});

