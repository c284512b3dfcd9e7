import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Output } from '../../src/cli/output.js';
import { AppError } from '../../src/lib/errors.js';
import { Redactor } from '../../src/lib/logger.js';
import { screen } from '../helpers/terminal.js';

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

test('Output.progress() writes only when stderr is a terminal; off a terminal log lines are plain lines', () => {
  const pipe = make(false, false);
  pipe.output.progress('created 5/10');
  pipe.output.logSink.write('{"msg":"Created subscription"}\n');
  pipe.output.endProgress();
  assert.equal(pipe.err(), '{"msg":"Created subscription"}\n');
  const tty = make(false, true);
  tty.output.progress('created 5/10');
  assert.equal(tty.err(), '\r\x1b[2Kcreated 5/10');
});

test('Output on a terminal: a log line clears the progress line, is written whole, and the progress line is drawn again below it', () => {
  const tty = make(false, true);
  tty.output.progress('deleted 1/2, created 0/3');
  tty.output.logSink.write('{"msg":"Deleted subscription"}\n');
  tty.output.progress('deleted 2/2, created 1/3');
  tty.output.note('a s3cret-value note');
  assert.deepEqual(screen(tty.err()), ['{"msg":"Deleted subscription"}', 'a [redacted] note', 'deleted 2/2, created 1/3']);
  // Every log line starts on a fresh line: never glued to the progress text.
  assert.ok(tty.err().includes('\r\x1b[2K{"msg":"Deleted subscription"}\n\r\x1b[2Kdeleted 1/2, created 0/3'));
});

test('Output on a terminal: results on stdout clear the progress line first; endProgress() and error() remove it for good', () => {
  const tty = make(false, true);
  tty.output.progress('created 1/3');
  tty.output.lines(['+ create stream.online v1 broadcaster_user_id=1']);
  assert.equal(tty.out(), '+ create stream.online v1 broadcaster_user_id=1\n');
  assert.ok(tty.err().endsWith('\r\x1b[2K\r\x1b[2Kcreated 1/3'), 'cleared before stdout, drawn again after');
  tty.output.endProgress();
  tty.output.logSink.write('{"msg":"after"}\n');
  tty.output.error(new AppError('ABORTED', 'The operation was aborted'));
  assert.deepEqual(screen(tty.err()), ['{"msg":"after"}', 'eventsubd: ABORTED: The operation was aborted', '']);
});

test('Output.lines() prints for a person only: nothing in --json mode', () => {
  const json = make(true, true);
  json.output.lines(['+ create x']);
  assert.equal(json.out(), '');
});
