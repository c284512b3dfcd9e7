/**
 * Opening the journal directory: migrate a format-1 journal to format 2 (migrate.ts), list the segments,
 * check that they chain (each sealed segment ends with the seq before the next one's name), scan the last
 * segment line by line to find the head, and drop a torn tail left by a crash (segment-io.ts says what is
 * torn). Nothing acknowledged can be in a torn tail: an append resolves only after the fdatasync that covers
 * its whole line. Corruption (a complete line that fails its check, seqs missing between segments) is not
 * dropped: it is reported through `onCorrupt` and the journal keeps going, its seqs never reused.
 */
import { dirname, join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { decodeLine, parseSegmentName, receivedAtMs } from './format.js';
import { migrateToFormat2, readFormat } from './migrate.js';
import { firstZeroRun, lastNonZero, readLastLine, scanSegment, syncDir, TORN_SPAN_MAX, type SegmentScan } from './segment-io.js';
import type { Segment, SegmentSet } from './segment-set.js';
import { errMessage, JournalError, OPEN_READ, OPEN_WRITE, type CorruptSpan, type JournalFileHandle, type JournalFs } from './types.js';

export interface RecoverOptions {
  fs: JournalFs;
  dir: string;
  logger: Logger;
  /** Read-only: never create, truncate, migrate or delete; a torn tail is only skipped. */
  readOnly: boolean;
  /** Told of every corruption found (it is kept, not dropped). */
  onCorrupt: (span: CorruptSpan) => void;
}

/** Fills `set` from the files in `dir`. @throws JournalError (JOURNAL_UNWRITABLE) when unusable or corrupt. */
export async function recoverSegments(set: SegmentSet, options: RecoverOptions): Promise<void> {
  const { fs, dir, readOnly } = options;
  let names: string[];
  try {
    if (!readOnly) await createDir(fs, dir);
    names = await fs.readdir(dir);
  } catch (err) {
    if (readOnly && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new JournalError(`Cannot open the journal directory ${dir}: ${errMessage(err)}`, { cause: err, path: dir });
  }
  const files = segmentFiles(dir, names);
  let format = await readFormat(fs, dir);
  if (format === 1 && !readOnly) {
    try {
      await migrateToFormat2(fs, dir, files.map((f) => f.path), options.logger);
      format = 2;
    } catch (err) {
      // A full disk, say: keep going in format 1 (readers still check every checksum a line has); the next
      // start migrates, and a line already migrated is kept as it is.
      options.logger.warn('Cannot migrate the journal to format 2 now: read as format 1 until a later start', { dir, err });
    }
  }
  set.legacy = format === 1;
  for (let i = 0; i < files.length; i++) {
    const { firstSeq, path } = files[i]!;
    const next = files[i + 1]?.firstSeq;
    const seg =
      next === undefined ? await recoverLast(path, firstSeq, options, set.legacy) : await inspectSealed(path, firstSeq, next, options, set.legacy);
    if (seg) set.list.push(seg);
  }
  const last = set.list.at(-1);
  set.head = last ? last.lastSeq : 0;
}

/** mkdir -p with mode 0700; the parents of what it created are fsynced so that the new entries persist. */
async function createDir(fs: JournalFs, dir: string): Promise<void> {
  const created = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (typeof created !== 'string') return;
  for (let d = dir; ; d = dirname(d)) {
    await syncDir(fs, dirname(d));
    if (d === created || dirname(d) === d) break;
  }
}

/**
 * A sealed segment: its last line should be the seq just before the next segment's first. When it is not
 * (a corrupt last line, records or a whole segment missing), the segment still ends there: the missing seqs
 * are reported, and a corrupt line is reported by whoever reads it.
 */
async function inspectSealed(path: string, firstSeq: number, nextFirst: number, options: RecoverOptions, legacy: boolean): Promise<Segment | undefined> {
  const handle = await openOrThrow(options, path);
  try {
    const { size, mtimeMs } = await handle.stat();
    if (size === 0 && nextFirst === firstSeq) {
      // An empty file left by a roll that a crash interrupted, superseded since: it holds nothing.
      if (!options.readOnly) await options.fs.unlink(path).catch(() => undefined);
      return undefined;
    }
    const line = await readLastLine(handle, size);
    const record = line === undefined ? undefined : decodeLine(line, legacy);
    const lastSeq = nextFirst - 1;
    if (record?.seq !== lastSeq) {
      const found = record ? `seq ${record.seq}` : 'a last line that fails its check';
      options.logger.warn('A journal segment does not end with the seq before the next one', { path, expected: lastSeq, found });
      if (record && record.seq < lastSeq) options.onCorrupt({ path, offset: size, text: '', seqs: { from: record.seq + 1, to: lastSeq } });
    }
    // Age for retention: its last record's time, else the file's.
    const lastReceivedAtMs = record ? receivedAtMs(record) : mtimeMs;
    return { firstSeq, path, size, lastSeq, lastReceivedAtMs };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * The last (active) segment: full scan; a torn tail is truncated away (and fsynced); corruption is reported and
 * kept. The tail may be the writer's zeros ahead, and what a batch in flight at a crash left in them (any of its
 * pages, in any order): from the first NUL byte on, it is all torn, unless data lies further past it than the
 * batches in flight can reach (TORN_SPAN_MAX), which only corruption of committed data explains: then the
 * classic rules apply (scanSegment without `zerosEnd`), and that data is kept.
 */
async function recoverLast(path: string, firstSeq: number, options: RecoverOptions, legacy: boolean): Promise<Segment> {
  const handle = await openOrThrow(options, path);
  try {
    const { size } = await handle.stat();
    const { scan, lastData } = await scanActive(handle, { path, start: 0, expectedSeq: firstSeq, size, legacy });
    for (const span of scan.corrupt) options.onCorrupt(span);
    if (scan.tornBytes > 0 && !options.readOnly) {
      try {
        await handle.truncate(scan.goodEnd);
        await handle.datasync();
      } catch (err) {
        throw new JournalError(`Cannot truncate the torn tail of ${path}: ${errMessage(err)}`, { cause: err, path });
      }
      if (lastData === -1) {
        options.logger.info('Cut the zeros written ahead of the journal\'s last record (the last stop was not clean)', { path, bytes: scan.tornBytes });
      } else {
        // Never acknowledged: an append resolves only once its whole batch is on disk.
        options.logger.warn('Dropped a torn tail from the journal (a write cut short by a crash)', { path, bytes: scan.tornBytes, head: scan.lastSeq });
      }
    }
    return { firstSeq, path, size: scan.goodEnd, lastSeq: scan.lastSeq, lastReceivedAtMs: scan.lastReceivedAtMs };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Scans the active segment, stopping at the writer's zeros ahead (scanSegment `zerosEnd`), unless what lies past
 * them is not what a crash leaves there; then the classic rules apply (scanSegment without `zerosEnd`: a NUL
 * byte followed by a good record is corruption, kept). A crash leaves zeros where pages of the batches in flight
 * did not reach the disk: the first zeros start where the batch did (the good end) or at a sector boundary, end
 * at a sector boundary or at the end of the file, and nothing but zeros lies further than TORN_SPAN_MAX past the
 * good end. A byte of a committed record damaged into a NUL is not that. `lastData`: the last byte past the good
 * end that is not zero (-1: only zeros are left over).
 */
async function scanActive(handle: JournalFileHandle, at: Parameters<typeof scanSegment>[1]): Promise<{ scan: SegmentScan; lastData: number }> {
  let scan = await scanSegment(handle, { ...at, zerosEnd: true });
  let lastData = scan.tornBytes > 0 ? await lastNonZero(handle, scan.goodEnd, at.size) : -1;
  if (lastData >= scan.goodEnd && !(await crashLeftOver(handle, scan.goodEnd, lastData, at.size))) {
    scan = await scanSegment(handle, at);
    lastData = scan.tornBytes > 0 ? await lastNonZero(handle, scan.goodEnd, at.size) : -1;
  }
  return { scan, lastData };
}

/** Sectors: the smallest unit a disk writes whole (https://www.kernel.org/doc/html/latest/block/queue-sysfs.html). */
const SECTOR = 512;

/** True when `[goodEnd, size)`, holding data up to `lastData`, can be what a crash left of batches in flight. */
async function crashLeftOver(handle: JournalFileHandle, goodEnd: number, lastData: number, size: number): Promise<boolean> {
  if (lastData >= goodEnd + TORN_SPAN_MAX) return false;
  const run = await firstZeroRun(handle, goodEnd, size);
  if (!run) return true; // no zeros: a last line cut short, as an append leaves it
  return (run.start === goodEnd || run.start % SECTOR === 0) && (run.end === size || run.end % SECTOR === 0);
}

async function openOrThrow(options: RecoverOptions, path: string): ReturnType<JournalFs['open']> {
  try {
    return await options.fs.open(path, options.readOnly ? OPEN_READ : OPEN_WRITE);
  } catch (err) {
    throw new JournalError(`Cannot open journal segment ${path}: ${errMessage(err)}`, { cause: err, path });
  }
}

/** The segment files among `names`, oldest first. */
function segmentFiles(dir: string, names: readonly string[]): { firstSeq: number; path: string }[] {
  const out: { firstSeq: number; path: string }[] = [];
  for (const name of names) {
    const firstSeq = parseSegmentName(name);
    if (firstSeq !== undefined) out.push({ firstSeq, path: join(dir, name) });
  }
  return out.sort((a, b) => a.firstSeq - b.firstSeq);
}

/**
 * Read-only mode: picks up what another process appended since the last look (new lines, new segments,
 * segments removed by its retention). Sealed segments already known are not read again; a partial last
 * line is left for a later look.
 */
export async function refreshSegments(set: SegmentSet, options: RecoverOptions): Promise<void> {
  let names: string[];
  try {
    names = await options.fs.readdir(options.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new JournalError(`Cannot read the journal directory ${options.dir}: ${errMessage(err)}`, { cause: err, path: options.dir });
  }
  const files = segmentFiles(options.dir, names);
  const legacy = (await readFormat(options.fs, options.dir)) === 1;
  // The writer migrated the journal meanwhile: every segment was rewritten, so none is known any more.
  const previous = legacy === set.legacy ? set.list : [];
  set.legacy = legacy;
  const lastKnown = previous.at(-1)?.firstSeq ?? 0;
  const list: Segment[] = [];
  for (const { firstSeq, path } of files) {
    const known = previous.find((s) => s.firstSeq === firstSeq);
    if (known && firstSeq < lastKnown) {
      list.push(known);
      continue;
    }
    const from = known ?? { size: 0, lastSeq: firstSeq - 1, lastReceivedAtMs: Number.NaN };
    const seg = await rescan(path, firstSeq, from, options, legacy);
    if (seg) list.push(seg);
  }
  set.list.splice(0, set.list.length, ...list);
  set.head = list.at(-1)?.lastSeq ?? set.head;
}

async function rescan(
  path: string,
  firstSeq: number,
  from: Pick<Segment, 'size' | 'lastSeq' | 'lastReceivedAtMs'>,
  options: RecoverOptions,
  legacy: boolean,
): Promise<Segment | undefined> {
  let handle;
  try {
    handle = await options.fs.open(path, OPEN_READ);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // removed by retention meanwhile
    throw new JournalError(`Cannot open journal segment ${path}: ${errMessage(err)}`, { cause: err, path });
  }
  try {
    const { size } = await handle.stat();
    if (size === from.size) return { firstSeq, path, ...from };
    // Shorter than last seen: the writer truncated a failed batch; read the segment again from the start.
    const start = size < from.size ? { start: 0, expectedSeq: firstSeq } : { start: from.size, expectedSeq: from.lastSeq + 1, lastReceivedAtMs: from.lastReceivedAtMs };
    // Stops at the writer's zeros ahead: what lies in them is not committed yet (or torn, for the writer's recovery).
    const { scan } = await scanActive(handle, { path, size, legacy, ...start });
    for (const span of scan.corrupt) options.onCorrupt(span);
    return { firstSeq, path, size: scan.goodEnd, lastSeq: scan.lastSeq, lastReceivedAtMs: scan.lastReceivedAtMs };
  } finally {
    await handle.close().catch(() => undefined);
  }
}
