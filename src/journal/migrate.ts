/**
 * The journal's format version (`VERSION` in the journal directory) and the migration of format-1 journals
 * (no checksums) to format 2 (see format.ts). Each segment is rewritten to a temporary file, fdatasynced and
 * renamed over the old one, and `VERSION` is written last, so a crash at any point leaves segments that are
 * either wholly of one format or the other, and the next start finishes the job: a line that already carries
 * a valid checksum is kept as it is. Every byte of a record is kept; a line that is not a record (corrupt)
 * is copied unchanged and reported by the recovery that follows.
 */
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { checksummed, FORMAT_VERSION, parseLine, verifiedJson } from './format.js';
import { scanLines, syncDir, writeAll } from './segment-io.js';
import { errMessage, JournalError, OPEN_READ, type JournalFileHandle, type JournalFs } from './types.js';

export const VERSION_FILE = 'VERSION';
const MIGRATING = '.migrating';
const WRITE_CHUNK = 1024 * 1024;

/** The journal's format: 2 when `VERSION` says so, 1 when there is no `VERSION` file. @throws JournalError for another value. */
export async function readFormat(fs: JournalFs, dir: string): Promise<1 | 2> {
  let handle: JournalFileHandle;
  try {
    handle = await fs.open(join(dir, VERSION_FILE), OPEN_READ);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 1;
    throw new JournalError(`Cannot read ${join(dir, VERSION_FILE)}: ${errMessage(err)}`, { cause: err, path: dir });
  }
  try {
    const buf = Buffer.alloc(16);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8').trim();
    if (text === '2') return 2;
    throw new JournalError(`${join(dir, VERSION_FILE)} names journal format '${text}', which this eventsubd cannot read (it reads 1 and 2)`, { path: dir });
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Writes `VERSION` (format 2) atomically: temporary file, fdatasync, rename, directory fsync. */
export async function writeFormat(fs: JournalFs, dir: string): Promise<void> {
  const path = join(dir, VERSION_FILE);
  const temp = `${path}${MIGRATING}`;
  await fs.unlink(temp).catch(() => undefined);
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await writeAll(handle, Buffer.from(`${FORMAT_VERSION}\n`), 0);
    await handle.datasync();
  } finally {
    await handle.close().catch(() => undefined);
  }
  await fs.rename(temp, path);
  await syncDir(fs, dir);
}

/**
 * Rewrites the format-1 segments `paths` in format 2, then writes `VERSION`.
 * @throws JournalError (JOURNAL_UNWRITABLE) when a segment cannot be read or rewritten (the journal stays usable as it was).
 */
export async function migrateToFormat2(fs: JournalFs, dir: string, paths: readonly string[], logger: Logger): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith(MIGRATING)) await fs.unlink(join(dir, name)).catch(() => undefined); // left by a crash
  }
  for (const path of paths) {
    try {
      const records = await rewrite(fs, path);
      logger.info('Migrated a journal segment to format 2 (a checksum per record)', { path, records });
    } catch (err) {
      await fs.unlink(`${path}${MIGRATING}`).catch(() => undefined);
      throw new JournalError(`Cannot migrate journal segment ${path} to format 2: ${errMessage(err)}`, { cause: err, path });
    }
  }
  try {
    await writeFormat(fs, dir);
  } catch (err) {
    await fs.unlink(join(dir, `${VERSION_FILE}${MIGRATING}`)).catch(() => undefined);
    throw new JournalError(`Cannot write ${join(dir, VERSION_FILE)}: ${errMessage(err)}`, { cause: err, path: dir });
  }
}

/** One segment: each line gets its checksum (a line that has one keeps it); returns the records converted. */
async function rewrite(fs: JournalFs, path: string): Promise<number> {
  const source = await fs.open(path, OPEN_READ);
  const temp = `${path}${MIGRATING}`;
  let target: JournalFileHandle | undefined;
  let converted = 0;
  try {
    target = await fs.open(temp, 'wx', 0o600);
    const { size } = await source.stat();
    let position = 0;
    let start = 0;
    for (;;) {
      // A chunk of lines at a time, so that a 64 MiB segment is never held whole.
      const out: string[] = [];
      let outBytes = 0;
      let full = false;
      const scan = await scanLines(source, { start, end: size }, (text) => {
        const line = verifiedJson(text) === undefined && parseLine(text) !== undefined ? (converted++, checksummed(text)) : `${text}\n`;
        out.push(line);
        outBytes += line.length;
        full = outBytes >= WRITE_CHUNK;
        return !full;
      });
      const buf = Buffer.from(out.join(''), 'utf8');
      await writeAll(target, buf, position);
      position += buf.length;
      start = scan.next;
      if (full) continue;
      if (scan.fragmentBytes > 0) {
        // A torn last line is copied as it is, for the recovery that follows to drop.
        const tail = Buffer.alloc(scan.fragmentBytes);
        await source.read(tail, 0, tail.length, scan.next);
        await writeAll(target, tail, position);
      }
      break;
    }
    await target.datasync();
  } finally {
    await target?.close().catch(() => undefined);
    await source.close().catch(() => undefined);
  }
  await fs.rename(temp, path);
  return converted;
}
