/**
 * The journal's on-disk format, pure: segment file names and JSON lines with `seq` first.
 *
 * Format 2 (the `VERSION` file in the journal directory says `2`): every line is the record's JSON with a
 * checksum as its last field, `{"seq":42,...,"crc32":"1a2b3c4d"}`, the CRC-32 of the record's JSON without
 * that field (`{"seq":42,...}`, UTF-8). A line whose checksum does not match is corrupt, whatever else it
 * looks like. Format 1 (no `VERSION` file, journals written before it existed) has no checksum; a journal
 * opened for writing is migrated to format 2 (see migrate.ts).
 */
import { crc32 } from 'node:zlib';
import type { JournalEntry, JournalRecord } from './types.js';

/** The format this code writes. */
export const FORMAT_VERSION = 2;
export const CRC_FIELD = ',"crc32":"';
/** `,"crc32":"` + 8 hex digits + `"}` */
const CRC_SUFFIX_LENGTH = CRC_FIELD.length + 10;

/** Segment names are the first seq, zero-padded to 20 digits so that they sort: `00000000000000000001.jsonl`. */
export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}.jsonl`;
}

/** The first seq a segment name carries, or undefined when the name is not a segment's. */
export function parseSegmentName(name: string): number | undefined {
  const m = /^(\d{20})\.jsonl$/.exec(name);
  if (!m) return undefined;
  const seq = Number(m[1]);
  return Number.isSafeInteger(seq) && seq >= 1 ? seq : undefined;
}

/**
 * The entry serialised without `seq` (which is assigned when the batch is written), e.g. `{"message_id":...}`.
 * A `seq` property on the entry is ignored.
 * @throws TypeError when the entry cannot be serialised (BigInt, cycles).
 */
export function serializeEntry(entry: JournalEntry): string {
  // Copied without `seq` only when it has one: the copy costs as much as the stringify of a small entry.
  const body = JSON.stringify(Object.hasOwn(entry, 'seq') ? withoutSeq(entry) : entry);
  if (typeof body !== 'string' || !body.startsWith('{"')) {
    throw new TypeError('A journal entry must serialise to a non-empty JSON object');
  }
  return body;
}

/**
 * What the writer queues for an entry: its serialised JSON after the opening brace (`"message_id":...}`),
 * UTF-8; the writer puts `{"seq":N,` in front when it assigns the seq.
 * @throws TypeError when the entry cannot be serialised (see serializeEntry).
 */
export function recordTail(entry: JournalEntry): Buffer {
  const json = serializeEntry(entry);
  return Buffer.from(json.slice(1), 'utf8');
}

/** One line, newline included: `{"seq":42,` + the rest of the serialised entry + its checksum field. */
export function formatLine(seq: number, body: string): string {
  return checksummed(`{"seq":${seq},${body.slice(1)}`);
}

/** A record's JSON (an object, `seq` first) as a format-2 line, newline included. */
export function checksummed(recordJson: string): string {
  return `${recordJson.slice(0, -1)}${CRC_FIELD}${crcHex(recordJson)}"}\n`;
}

function crcHex(text: string): string {
  return crc32(text).toString(16).padStart(8, '0');
}

/**
 * The record JSON a format-2 line carries (without its checksum field and newline), or undefined when the
 * line has no checksum field or it does not match.
 */
export function verifiedJson(line: string): string | undefined {
  const end = line.length;
  if (end <= CRC_SUFFIX_LENGTH || !line.endsWith('"}') || !line.startsWith(CRC_FIELD, end - CRC_SUFFIX_LENGTH)) return undefined;
  const hex = line.slice(end - 10, end - 2);
  const json = `${line.slice(0, end - CRC_SUFFIX_LENGTH)}}`;
  return /^[0-9a-f]{8}$/.test(hex) && crcHex(json) === hex ? json : undefined;
}

/**
 * A line read back (no newline) as a record, or undefined when it is corrupt: a format-2 line must carry a
 * matching checksum; with `legacy` (a format-1 journal) a line without one is taken if it is a JSON object
 * with a valid `seq`.
 */
export function decodeLine(line: string, legacy: boolean): JournalRecord | undefined {
  const json = verifiedJson(line);
  if (json !== undefined) return parseLine(json);
  return legacy ? parseLine(line) : undefined;
}

/** The record an entry becomes, `seq` first (as on disk). */
export function toRecord(seq: number, entry: JournalEntry): JournalRecord {
  return { seq, ...withoutSeq(entry) };
}

function withoutSeq(entry: JournalEntry): JournalEntry {
  const { seq: _ignored, ...rest } = entry as JournalEntry & { seq?: unknown };
  return rest;
}

const SEQ_PREFIX = /^\{"seq":(\d{1,16})[,}]/;

/** The seq at the start of a line, without parsing the rest, or undefined when the line does not start so. */
export function peekSeq(line: string): number | undefined {
  const m = SEQ_PREFIX.exec(line);
  return m ? Number(m[1]) : undefined;
}

/**
 * A record's JSON parsed, or undefined when it is not a JSON object with a positive integer `seq` (or its
 * `seq` is not `expectedSeq`). It does not check a checksum: see `decodeLine`.
 */
export function parseLine(line: string, expectedSeq?: number): JournalRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const seq = (value as { seq?: unknown }).seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  if (expectedSeq !== undefined && seq !== expectedSeq) return undefined;
  return value as JournalRecord;
}

/** `received_at` as epoch ms, NaN when missing or unparsable. */
export function receivedAtMs(record: { received_at?: unknown }): number {
  return typeof record.received_at === 'string' ? Date.parse(record.received_at) : Number.NaN;
}
