/**
 * Reading segment files: a chunked line scanner (bounded memory for any segment size), the last line of a
 * sealed segment, and the recovery scan of the last segment, which finds the head and a torn tail.
 */
import { parseLine, receivedAtMs } from './format.js';
import { JournalError, type JournalFileHandle, type JournalFs } from './types.js';

const CHUNK = 256 * 1024;
const NL = 0x0a;

export interface ScanResult {
  /** Offset just after the last line handed to `onLine` (where to continue). */
  next: number;
  /** Bytes after the last complete line in the scanned range (a torn tail when the range ends at EOF). */
  fragmentBytes: number;
}

/**
 * Hands every complete line in `[start, end)` to `onLine(text, lineStart, lineEnd)`; `lineEnd` is just after
 * the newline. Stops after the line for which `onLine` returns false.
 */
export async function scanLines(
  handle: JournalFileHandle,
  range: { start: number; end: number },
  onLine: (text: string, lineStart: number, lineEnd: number) => boolean | void,
): Promise<ScanResult> {
  let pos = range.start;
  let lineStart = range.start;
  let pending: Buffer[] = [];
  const buf = Buffer.allocUnsafe(CHUNK);
  while (pos < range.end) {
    const want = Math.min(CHUNK, range.end - pos);
    const { bytesRead } = await handle.read(buf, 0, want, pos);
    if (bytesRead === 0) break;
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(NL, from);
      if (nl === -1 || nl >= bytesRead) break;
      const piece = buf.subarray(from, nl);
      const text = pending.length === 0 ? piece.toString('utf8') : Buffer.concat([...pending, piece]).toString('utf8');
      pending = [];
      const lineEnd = pos + nl + 1;
      if (onLine(text, lineStart, lineEnd) === false) return { next: lineEnd, fragmentBytes: 0 };
      lineStart = lineEnd;
      from = nl + 1;
    }
    if (from < bytesRead) pending.push(Buffer.from(buf.subarray(from, bytesRead)));
    pos += bytesRead;
  }
  return { next: lineStart, fragmentBytes: pos - lineStart };
}

/** The last complete line of a file of `size` bytes that ends with a newline, or undefined if it does not. */
export async function readLastLine(handle: JournalFileHandle, size: number): Promise<string | undefined> {
  if (size === 0) return undefined;
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, size - 1);
  if (last[0] !== NL) return undefined;
  const parts: Buffer[] = [];
  let end = size - 1;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const buf = Buffer.allocUnsafe(end - start);
    const { bytesRead } = await handle.read(buf, 0, end - start, start);
    const chunk = buf.subarray(0, bytesRead);
    const nl = chunk.lastIndexOf(NL);
    if (nl !== -1) {
      parts.unshift(chunk.subarray(nl + 1));
      return Buffer.concat(parts).toString('utf8');
    }
    parts.unshift(chunk);
    end = start;
  }
  return Buffer.concat(parts).toString('utf8');
}

export interface SegmentScan {
  /** The last valid seq, `firstSeq - 1` when the segment holds no valid line. */
  lastSeq: number;
  /** Offset just after the last valid line: where the next line goes. */
  goodEnd: number;
  /** `received_at` of the last valid line (epoch ms), NaN when none. */
  lastReceivedAtMs: number;
  /** Bytes after `goodEnd`: a torn last line (no newline, or not JSON) to drop. */
  tornBytes: number;
}

/**
 * Scans a segment from `start` (a line boundary where `expectedSeq` begins) to `size`, checking that every
 * line is JSON with the next seq. Only the last line may be bad: it is reported as torn.
 * @throws JournalError (JOURNAL_UNWRITABLE) on a bad line followed by more lines, or a line with the wrong seq.
 */
export async function scanSegment(
  handle: JournalFileHandle,
  init: { path: string; start: number; expectedSeq: number; size: number; lastReceivedAtMs?: number },
): Promise<SegmentScan> {
  let expected = init.expectedSeq;
  let goodEnd = init.start;
  let lastReceivedAtMs = init.lastReceivedAtMs ?? Number.NaN;
  let badAt: number | undefined;
  const corrupt = (offset: number, why: string): JournalError =>
    new JournalError(`Journal segment ${init.path} is corrupt at byte ${offset}: ${why}`, { path: init.path });

  const scan = await scanLines(handle, { start: init.start, end: init.size }, (text, lineStart, lineEnd) => {
    if (badAt !== undefined) throw corrupt(badAt, 'a line that is not valid JSON is followed by more lines');
    const record = parseLine(text);
    if (record === undefined) {
      badAt = lineStart;
      return;
    }
    if (record.seq !== expected) throw corrupt(lineStart, `expected seq ${expected}, found ${record.seq}`);
    expected += 1;
    goodEnd = lineEnd;
    lastReceivedAtMs = receivedAtMs(record);
  });
  if (badAt !== undefined && scan.fragmentBytes > 0) {
    throw corrupt(badAt, 'a line that is not valid JSON is followed by more data');
  }
  return { lastSeq: expected - 1, goodEnd, lastReceivedAtMs, tornBytes: init.size - goodEnd };
}

/** fsyncs a directory, so that a file created or removed in it survives a crash. */
export async function syncDir(fs: JournalFs, dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
