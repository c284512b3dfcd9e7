/**
 * Reading segment files: a chunked line scanner (bounded memory for any segment size), the last line of a
 * sealed segment, and the recovery scan of the last segment, which finds the head and a torn tail.
 */
import { decodeLine, receivedAtMs } from './format.js';
import type { CorruptSpan, JournalFileHandle, JournalFs } from './types.js';

const CHUNK = 256 * 1024;
const ZEROS = Buffer.alloc(CHUNK);
const NL = 0x0a;
/**
 * The most a crash can leave past the last commit in the active segment: the batches in flight (PIPELINE_DEPTH of
 * at most MAX_BATCH_BYTES each, plus one record past that; writer.ts), written over zeros in any order of pages.
 * Data further past the first zeros than this was committed: it is corruption, never a torn tail.
 */
export const TORN_SPAN_MAX = 32 * 1024 * 1024;

export interface ScanResult {
  /** Offset just after the last line handed to `onLine` (where to continue). */
  next: number;
  /** Bytes after the last complete line in the scanned range (a torn tail when the range ends at EOF). */
  fragmentBytes: number;
}

/**
 * Hands every complete line in `[start, end)` to `onLine(text, lineStart, lineEnd)`; `lineEnd` is just after
 * the newline. Stops after the line for which `onLine` returns false, and, with `stopAtZero`, before a line
 * that starts with a NUL byte (the zeros ahead of the writer: the rest counts as a fragment, unread).
 */
export async function scanLines(
  handle: JournalFileHandle,
  range: { start: number; end: number },
  onLine: (text: string, lineStart: number, lineEnd: number) => boolean | void,
  stopAtZero = false,
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
    if (stopAtZero && pending.length === 0 && from < bytesRead && buf[from] === 0) return { next: lineStart, fragmentBytes: range.end - lineStart };
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
  /** The last seq the segment holds (good or corrupt), `firstSeq - 1` when it holds none. */
  lastSeq: number;
  /** Offset just after the last line kept: where the next line goes. */
  goodEnd: number;
  /** `received_at` of the last good record (epoch ms), NaN when none. */
  lastReceivedAtMs: number;
  /** Bytes after `goodEnd`: a torn tail (a last line without its newline, or crash debris with NUL bytes) to drop. */
  tornBytes: number;
  /** Corrupt lines kept (each keeps its seq) and seqs missing between good records. */
  corrupt: CorruptSpan[];
}

/**
 * Scans a segment from `start` (a line boundary where `expectedSeq` begins) to `size`, telling a torn tail
 * from corruption. Only what a crash can leave is torn: a last line without its newline, and, from the first
 * complete line holding a NUL byte on, the zeros some file systems leave in space a crash allocated but never
 * wrote. A complete line that fails its check anywhere else is corruption of written data: it is kept and
 * keeps its seq (a record may have been acknowledged with it), and is reported. `legacy`: a format-1 segment.
 *
 * `zerosEnd`: the first NUL byte ends the scan, even with good lines after it: the active segment's zeros ahead
 * (writer.ts), over which a batch in flight at a crash may have reached the disk in any order of its pages, so
 * that zeros can lie between its lines. Whoever asks for it checks that nothing lies further past them than a
 * crash can leave (TORN_SPAN_MAX).
 */
export async function scanSegment(
  handle: JournalFileHandle,
  init: { path: string; start: number; expectedSeq: number; size: number; lastReceivedAtMs?: number; legacy: boolean; zerosEnd?: boolean },
): Promise<SegmentScan> {
  let expected = init.expectedSeq;
  let goodEnd = init.start;
  let lastReceivedAtMs = init.lastReceivedAtMs ?? Number.NaN;
  const corrupt: CorruptSpan[] = [];
  /** Bad complete lines since the last good one: corrupt if a good line follows, else decided at the end. */
  let pending: Array<{ offset: number; end: number; text: string }> = [];
  const span = (offset: number, text: string, from: number, to: number): CorruptSpan => ({ path: init.path, offset, text, seqs: { from, to } });

  await scanLines(handle, { start: init.start, end: init.size }, (text, lineStart, lineEnd) => {
    const record = decodeLine(text, init.legacy);
    if (record === undefined || record.seq < expected) {
      pending.push({ offset: lineStart, end: lineEnd, text });
      return !(init.zerosEnd === true && record === undefined && text.includes('\0'));
    }
    // The bad lines before this good one stand for the seqs up to it (one each, as far as their count allows).
    for (const [i, bad] of pending.entries()) {
      const seq = Math.min(expected + i, record.seq - 1);
      corrupt.push(span(bad.offset, bad.text, seq, i === pending.length - 1 ? record.seq - 1 : seq));
    }
    if (pending.length === 0 && record.seq > expected) corrupt.push(span(lineStart, '', expected, record.seq - 1));
    pending = [];
    expected = record.seq + 1;
    goodEnd = lineEnd;
    lastReceivedAtMs = receivedAtMs(record);
  }, init.zerosEnd);
  for (const bad of pending) {
    if (bad.text.includes('\0')) break; // crash debris: this and what follows is torn
    corrupt.push(span(bad.offset, bad.text, expected, expected));
    expected += 1;
    goodEnd = bad.end;
  }
  return { lastSeq: expected - 1, goodEnd, lastReceivedAtMs, tornBytes: init.size - goodEnd, corrupt };
}

/** The offset of the last byte in `[from, size)` that is not zero, or -1 when they all are. */
export async function lastNonZero(handle: JournalFileHandle, from: number, size: number): Promise<number> {
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let end = size; end > from; ) {
    const start = Math.max(from, end - CHUNK);
    const { bytesRead } = await handle.read(buf, 0, end - start, start);
    // The zeros ahead are read at every poll of a read-only follower: compared whole (memcmp) before byte by byte.
    if (buf.compare(ZEROS, 0, bytesRead, 0, bytesRead) !== 0) {
      for (let i = bytesRead - 1; i >= 0; i--) if (buf[i] !== 0) return start + i;
    }
    end = start;
  }
  return -1;
}

/** The first run of zero bytes at or after `from`: `[start, end)`, `end` the next byte that is not zero (or `size`). */
export async function firstZeroRun(handle: JournalFileHandle, from: number, size: number): Promise<{ start: number; end: number } | undefined> {
  const buf = Buffer.allocUnsafe(CHUNK);
  let start = -1;
  for (let pos = from; pos < size; ) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(CHUNK, size - pos), pos);
    if (bytesRead === 0) break;
    for (let i = 0; i < bytesRead; i++) {
      if (start === -1 ? buf[i] === 0 : buf[i] !== 0) {
        if (start !== -1) return { start, end: pos + i };
        start = pos + i;
      }
    }
    pos += bytesRead;
  }
  return start === -1 ? undefined : { start, end: size };
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

/** Writes all of `buf` at `position`, however many writes it takes. @throws on a write error or a zero-byte write. */
export async function writeAll(handle: JournalFileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`Short write: ${done} of ${buf.length} bytes`);
    done += bytesWritten;
  }
}
