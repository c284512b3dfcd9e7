import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checksummed, decodeLine, formatLine, parseLine, parseSegmentName, peekSeq, segmentName, serializeEntry, verifiedJson } from '../../src/journal/format.js';
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

test('formatLine() puts seq first, its checksum last, and keeps the line on one line; decodeLine() reads it back', () => {
  const line = formatLine(42, serializeEntry(entry(7)));
  assert.ok(line.startsWith('{"seq":42,"message_id":"msg-7",'));
  assert.match(line, /,"crc32":"[0-9a-f]{8}"\}\n$/);
  assert.equal(line.indexOf('\n'), line.length - 1);
  assert.equal(peekSeq(line), 42);
  const text = line.trimEnd();
  assert.deepEqual(decodeLine(text, false), { ...entry(7), seq: 42 });
  assert.equal(verifiedJson(text), JSON.stringify({ seq: 42, ...entry(7) }));
  assert.equal(parseLine(verifiedJson(text)!, 43), undefined);
  assert.equal(parseLine('{"seq":42,"mess'), undefined);
  assert.equal(peekSeq('{"message_id":"x","seq":1}'), undefined);
});

test('decodeLine() refuses every single-bit flip of a format-2 line, and a line without a checksum unless legacy', () => {
  const text = formatLine(7, serializeEntry(entry(3))).trimEnd();
  const bytes = Buffer.from(text, 'utf8');
  let accepted = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[i] = flipped[i]! ^ (1 << bit);
      if (decodeLine(flipped.toString('utf8'), false) !== undefined) accepted += 1;
    }
  }
  assert.equal(accepted, 0, `${accepted} of ${bytes.length * 8} flipped lines were accepted`);
  const legacy = JSON.stringify({ seq: 7, ...entry(3) });
  assert.equal(decodeLine(legacy, false), undefined);
  assert.deepEqual(decodeLine(legacy, true), { seq: 7, ...entry(3) });
  assert.deepEqual(decodeLine(text, true), { seq: 7, ...entry(3) }, 'a legacy reader checks a checksum when there is one');
  assert.equal(checksummed(legacy), `${text}\n`, 'the migration of a format-1 line gives the line format 2 writes');
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
