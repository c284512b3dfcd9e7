import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Output } from '../../src/cli/output.js';
import { AppError } from '../../src/lib/errors.js';
import { Redactor } from '../../src/lib/logger.js';

function make(json: boolean, stderrTTY = false) {
  const redactor = new Redactor();
  redactor.add('s3cret-value');
  let out = '';
  let err = '';
  const output = new Output({
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s), isTTY: stderrTTY },
    json,
    redactor,
  });
  return { output, out: () => out, err: () => err };
}

test('Output.result() prints human lines or one JSON document, and redacts secrets in both', () => {
  const human = make(false);
  human.output.result({ a: 's3cret-value' }, () => ['token s3cret-value here']);
  assert.equal(human.out(), 'token [redacted] here\n');
  const json = make(true);
  json.output.result({ a: 's3cret-value', n: 1 }, () => ['unused']);
  assert.deepEqual(JSON.parse(json.out()), { a: '[redacted]', n: 1 });
});

test('Output.error() is one line on stderr, redacted', () => {
  const o = make(false);
  o.output.error(new AppError('TWITCH_HTTP_ERROR', 'Twitch echoed s3cret-value'));
  assert.equal(o.err(), 'eventsubd: TWITCH_HTTP_ERROR: Twitch echoed [redacted]\n');
  assert.equal(o.out(), '');
});

test('Output.progress() writes only when stderr is a terminal', () => {
  const pipe = make(false, false);
  pipe.output.progress('Applying plan', 5, 10);
  assert.equal(pipe.err(), '');
  const tty = make(false, true);
  tty.output.progress('Applying plan', 5, 10);
  assert.match(tty.err(), /Applying plan 5\/10 \(50%\)/);
});
