/**
 * Reading records by seq from the segment files. A read opens its own file handle and reads a segment only
 * up to its committed size, so it never waits for, nor sees the unfinished work of, the writer.
 */
import { parseLine, peekSeq } from './format.js';
import { scanLines } from './segment-io.js';
import type { SegmentSet } from './segment-set.js';
import { errMessage, JournalError, OPEN_READ, type JournalFileHandle, type JournalFs, type JournalRecord } from './types.js';

/** Where a previous read stopped, so that the next one (by `follow`) continues without rescanning. */
export interface ReadPosition {
  firstSeq: number;
  offset: number;
  nextSeq: number;
}

export interface ReadChunk {
  records: JournalRecord[];
  position: ReadPosition | undefined;
}

/**
 * Up to `limit` records with seq > `since`, in order. When `since` is older than the oldest retained
 * record, reading starts at the oldest retained one.
 * @throws JournalError (STATE_DIR_UNUSABLE) when a segment cannot be read or is corrupt.
 */
export async function readRecords(
  fs: JournalFs,
  set: SegmentSet,
  request: { since: number; limit: number; position?: ReadPosition | undefined },
): Promise<ReadChunk> {
  const records: JournalRecord[] = [];
  let after = request.since;
  let position = request.position;
  while (records.length < request.limit && after < set.head) {
    const seg = set.locate(after + 1);
    if (!seg) break;
    if (after + 1 < seg.firstSeq) after = seg.firstSeq - 1; // older records were removed by retention
    const end = seg.size;
    const start = position && position.firstSeq === seg.firstSeq && position.nextSeq === after + 1 ? position.offset : 0;
    const handle = await openForRead(fs, seg.path);
    if (!handle) {
      if (set.list.includes(seg)) throw unreadable(seg.path, 'the file is missing');
      continue; // removed by retention since we located it: locate again
    }
    let offset = start;
    const before = after;
    try {
      await scanLines(handle, { start, end }, (text, lineStart, lineEnd) => {
        const seq = peekSeq(text);
        if (seq === undefined) throw unreadable(seg.path, `a line at byte ${lineStart} does not start with a seq`);
        if (seq <= after) {
          offset = lineEnd;
          return true;
        }
        const record = parseLine(text, after + 1);
        if (!record) throw unreadable(seg.path, `expected seq ${after + 1} at byte ${lineStart}, found an invalid line or seq ${seq}`);
        records.push(record);
        after = seq;
        offset = lineEnd;
        return records.length < request.limit;
      });
    } catch (err) {
      if (err instanceof JournalError) throw err;
      throw unreadable(seg.path, errMessage(err), err);
    } finally {
      await handle.close().catch(() => undefined);
    }
    position = { firstSeq: seg.firstSeq, offset, nextSeq: after + 1 };
    if (after === before && records.length < request.limit) {
      throw unreadable(seg.path, `seq ${after + 1} is missing`);
    }
  }
  return { records, position };
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
