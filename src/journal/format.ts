/**
 * The journal's on-disk format, pure: segment file names and JSON lines with `seq` first.
 */
import type { JournalEntry, JournalRecord } from './types.js';

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

/** One line, newline included: `{"seq":42,` + the rest of the serialised entry. */
export function formatLine(seq: number, body: string): string {
  return `{"seq":${seq},${body.slice(1)}\n`;
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

/** A full line parsed into a record, or undefined when it is not valid JSON or its `seq` is not `expectedSeq`. */
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
