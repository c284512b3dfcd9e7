import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLine, parseLine, parseSegmentName, peekSeq, segmentName, serializeEntry } from '../../src/journal/format.js';
import { SegmentSet } from '../../src/journal/segment-set.js';
import { entry } from './helpers.js';

test('segmentName() zero-pads the first seq to 20 digits and parseSegmentName() reverses it', () => {
  assert.equal(segmentName(1), '00000000000000000001.jsonl');
  assert.equal(segmentName(1234567), '00000000000001234567.jsonl');
  assert.equal(parseSegmentName('00000000000001234567.jsonl'), 1234567);
  assert.equal(parseSegmentName('00000000000000000000.jsonl'), undefined);
  assert.equal(parseSegmentName('1.jsonl'), undefined);
  assert.equal(parseSegmentName('00000000000000000001.jsonl.tmp'), undefined);
});

test('formatLine() puts seq first and keeps the line on one line; peekSeq() and parseLine() read it back', () => {
  const line = formatLine(42, serializeEntry(entry(7)));
  assert.ok(line.startsWith('{"seq":42,"message_id":"msg-7",'));
  assert.equal(line.indexOf('\n'), line.length - 1);
  assert.equal(peekSeq(line), 42);
  assert.deepEqual(parseLine(line.trimEnd(), 42), { ...entry(7), seq: 42 });
  assert.equal(parseLine(line.trimEnd(), 43), undefined);
  assert.equal(parseLine('{"seq":42,"mess'), undefined);
  assert.equal(peekSeq('{"message_id":"x","seq":1}'), undefined);
});

test('SegmentSet.locate() finds the segment holding a seq, or the oldest for older seqs', () => {
  const set = new SegmentSet();
  for (const firstSeq of [5, 10, 20]) set.list.push({ firstSeq, path: `p${firstSeq}`, size: 1, lastSeq: 0, lastReceivedAtMs: 0 });
  assert.equal(set.locate(1)?.firstSeq, 5);
  assert.equal(set.locate(5)?.firstSeq, 5);
  assert.equal(set.locate(9)?.firstSeq, 5);
  assert.equal(set.locate(10)?.firstSeq, 10);
  assert.equal(set.locate(25)?.firstSeq, 20);
});
