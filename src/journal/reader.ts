/**
 * Reading records by seq from the segment files. A read opens its own file handle and reads a segment only
 * up to its committed size, so it never waits for, nor sees the unfinished work of, the writer.
 */
import { decodeLine, peekSeq } from './format.js';
import { scanLines } from './segment-io.js';
import type { SegmentSet } from './segment-set.js';
import { errMessage, JournalError, OPEN_READ, type CorruptSpan, type JournalFileHandle, type JournalFs, type JournalRecord } from './types.js';

/** Where a previous read stopped, so that the next one (by `follow`) continues without rescanning. */
export interface ReadPosition {
  firstSeq: number;
  offset: number;
  nextSeq: number;
}

export interface ReadChunk {
  records: JournalRecord[];
  /** The seq read up to, corrupt or missing ones skipped included: where the next read starts. */
  after: number;
  position: ReadPosition | undefined;
}

export interface ReadRequest {
  since: number;
  /** At most this many records. */
  limit: number;
  /** Stop after the record that brings the records read to this many bytes (of JSON). Default: no limit. */
  maxBytes?: number | undefined;
  position?: ReadPosition | undefined;
  /** Told of each corrupt line skipped and each run of missing seqs. */
  onCorrupt?: ((span: CorruptSpan) => void) | undefined;
}

/**
 * Up to `limit` records with seq > `since`, in order. When `since` is older than the oldest retained
 * record, reading starts at the oldest retained one. A line that fails its check is skipped (and reported):
 * one corrupt record never stops the readers behind it.
 * @throws JournalError (STATE_DIR_UNUSABLE) when a segment cannot be opened or read.
 */
export async function readRecords(fs: JournalFs, set: SegmentSet, request: ReadRequest): Promise<ReadChunk> {
  const records: JournalRecord[] = [];
  const maxBytes = request.maxBytes ?? Number.POSITIVE_INFINITY;
  let bytes = 0;
  let after = request.since;
  let position = request.position;
  while (records.length < request.limit && bytes < maxBytes && after < set.head) {
    const seg = set.locate(after + 1);
    if (!seg) break;
    if (after + 1 < seg.firstSeq) after = seg.firstSeq - 1; // older records were removed by retention
    // Size and last seq together, at once: the writer moves both in one step after each commit.
    const end = seg.size;
    const endSeq = seg.lastSeq;
    const start = position && position.firstSeq === seg.firstSeq && position.nextSeq === after + 1 ? position.offset : 0;
    const handle = await openForRead(fs, seg.path);
    if (!handle) {
      if (set.list.includes(seg)) throw unreadable(seg.path, 'the file is missing');
      continue; // removed by retention since we located it: locate again
    }
    let offset = start;
    let full = false;
    /** A corrupt line was skipped since the last record: the next record's seq may jump. */
    let skipped = false;
    const before = after;
    try {
      await scanLines(handle, { start, end }, (text, lineStart, lineEnd) => {
        offset = lineEnd;
        const seq = peekSeq(text);
        if (seq !== undefined && seq <= after) return true;
        const record = decodeLine(text, set.legacy);
        if (record === undefined || record.seq <= after) {
          request.onCorrupt?.({ path: seg.path, offset: lineStart, text, seqs: { from: after + 1, to: after + 1 } });
          skipped = true;
          return true;
        }
        if (record.seq !== after + 1 && !skipped) {
          request.onCorrupt?.({ path: seg.path, offset: lineStart, text: '', seqs: { from: after + 1, to: record.seq - 1 } });
        }
        skipped = false;
        records.push(record);
        bytes += text.length;
        after = record.seq;
        full = records.length >= request.limit || bytes >= maxBytes;
        return !full;
      });
    } catch (err) {
      throw unreadable(seg.path, errMessage(err), err);
    } finally {
      await handle.close().catch(() => undefined);
    }
    // Read to the end seen at the start: whatever of its seqs did not come back was corrupt or missing, and was reported.
    if (!full) after = Math.max(after, endSeq);
    position = { firstSeq: seg.firstSeq, offset, nextSeq: after + 1 };
    if (after === before) break; // nothing more to read here (the segment is not committed further)
  }
  return { records, after, position };
}

async function openForRead(fs: JournalFs, path: string): Promise<JournalFileHandle | undefined> {
  try {
    return await fs.open(path, OPEN_READ);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(path, errMessage(err), err);
  }
}

function unreadable(path: string, why: string, cause?: unknown): JournalError {
  return new JournalError(`Cannot read journal segment ${path}: ${why}`, { code: 'STATE_DIR_UNUSABLE', path, cause });
}
