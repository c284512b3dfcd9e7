/**
 * The dedup window saved at a graceful stop (`STATE_DIR/dedup.snapshot`), so that the next start takes it back
 * in milliseconds instead of reading every record of the last 21 minutes from the journal (a million records
 * took 6 s). Only a cache: a missing, torn, corrupt or foreign snapshot is ignored (with a warning for the
 * broken ones) and the window is rebuilt from the journal as before; nothing is lost either way.
 *
 * It is tied to the journal it was taken from by the seq and message id of the journal's last record then:
 * the next start uses it only when the journal still holds that record, and reads the records after it (a
 * later run that was killed before its own stop left them) from the journal as usual.
 *
 * Layout: one line of JSON (the header below), then the set's arrays as `Dedup` holds them (times as float64,
 * digest words as uint32, the table as int32, in the machine's byte order, named in the header); the header's
 * `crc32` covers those bytes. Loading is a read, a checksum and a copy: no key is hashed or inserted again.
 */
import { Buffer } from 'node:buffer';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from '../lib/atomic-file.js';
import type { Dedup, DedupState } from './dedup.js';

export const DEDUP_SNAPSHOT_FILE = 'dedup.snapshot';
const FORMAT = 'eventsubd-dedup';
const VERSION = 1;
/** The key digest `Dedup` uses by default; a snapshot made with another is not comparable. */
const DIGEST = 'murmur3-x86-128/96';
const MAX_HEADER = 4096;
/** Bytes per ring slot (a float64 time, three uint32 words) and, at most, per key in the table (two int32). */
const MAX_BYTES_PER_KEY = 8 + 12 + 8;
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

export interface SnapshotMark {
  /** The journal's last seq when the snapshot was taken. */
  seq: number;
  /** The message id of the record at `seq`. */
  messageId: string;
}

export interface DedupSnapshot extends SnapshotMark {
  state: DedupState;
}

interface Header {
  format: string;
  version: number;
  digest: string;
  endianness: string;
  seq: number;
  message_id: string;
  max_entries: number;
  head: number;
  count: number;
  live: number;
  capacity: number;
  table: number;
  crc32: string;
}

const bytesOf = (a: Uint32Array | Float64Array | Int32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Writes `dedup`, marked with the journal's last record, atomically (mode 0600); returns the keys written. @throws the file system's error. */
export async function saveDedupSnapshot(path: string, dedup: Dedup, mark: SnapshotMark): Promise<number> {
  const s = dedup.state();
  const chunks = [bytesOf(s.times), bytesOf(s.words), bytesOf(s.table)];
  let crc = 0;
  for (const c of chunks) crc = crc32(c, crc);
  const header: Header = {
    format: FORMAT,
    version: VERSION,
    digest: DIGEST,
    endianness: endianness(),
    seq: mark.seq,
    message_id: mark.messageId,
    max_entries: s.maxEntries,
    head: s.head,
    count: s.count,
    live: s.live,
    capacity: s.times.length,
    table: s.table.length,
    crc32: hex(crc),
  };
  await writeFileAtomic(path, [Buffer.from(`${JSON.stringify(header)}\n`), ...chunks]);
  return s.live;
}

/**
 * The snapshot at `path`: undefined when there is none, `{ problem }` when it cannot be used (the caller warns and
 * rebuilds from the journal). Holds at most `maxEntries` keys (its size is bounded by that). Reading does not
 * follow a symbolic link.
 */
export async function loadDedupSnapshot(path: string, maxEntries: number): Promise<DedupSnapshot | { problem: string } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    return { problem: code === 'ELOOP' ? 'it is a symbolic link' : `it cannot be read (${code ?? String(err)})` };
  }
  try {
    return await readSnapshot(handle, maxEntries);
  } catch (err) {
    return { problem: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function readSnapshot(handle: FileHandle, maxEntries: number): Promise<DedupSnapshot | { problem: string }> {
  const st = await handle.stat();
  if (!st.isFile()) return { problem: 'it is not a regular file' };
  // The ring may grow to twice the cap before it is compacted; the table is at most four int32 per key.
  if (st.size > MAX_HEADER + 2 * maxEntries * MAX_BYTES_PER_KEY + 1024 * MAX_BYTES_PER_KEY) {
    return { problem: `it is larger (${st.size} bytes) than a snapshot of at most ${maxEntries} keys can be` };
  }
  const head = Buffer.alloc(Math.min(MAX_HEADER, st.size));
  await readFully(handle, head, 0);
  const eol = head.indexOf(0x0a);
  if (eol < 0) return { problem: 'its header is missing (a torn write?)' };
  let h: Partial<Header>;
  try {
    h = JSON.parse(head.toString('utf8', 0, eol)) as Partial<Header>;
  } catch {
    return { problem: 'its header is not JSON' };
  }
  if (h.format !== FORMAT || h.version !== VERSION || h.digest !== DIGEST || h.endianness !== endianness()) {
    return { problem: `its format (${[h.format, h.version, h.digest, h.endianness].map(String).join(', ')}) is not this version's (${FORMAT}, ${VERSION}, ${DIGEST}, ${endianness()})` };
  }
  const counts = [h.seq, h.max_entries, h.head, h.count, h.live, h.capacity, h.table];
  if (!counts.every((n) => Number.isSafeInteger(n) && n! >= 0) || h.seq! < 1 || typeof h.message_id !== 'string' || typeof h.crc32 !== 'string') {
    return { problem: 'its header is not valid' };
  }
  if (h.max_entries !== maxEntries) return { problem: `it was taken with a cap of ${h.max_entries} keys, not ${maxEntries}` };
  const cap = h.capacity!;
  const size = cap * 20 + h.table! * 4;
  if (st.size - eol - 1 !== size) return { problem: `it holds ${st.size - eol - 1} bytes of keys where its header says ${size} (a torn write?)` };
  // Read straight into the arrays' own memory (times first: 8-aligned); no copy.
  const memory = new ArrayBuffer(size);
  const body = Buffer.from(memory);
  if ((await readFully(handle, body, eol + 1)) !== size) return { problem: 'it ended early (a torn write?)' };
  if (hex(crc32(body)) !== h.crc32) return { problem: 'its checksum does not match' };
  const state: DedupState = {
    maxEntries,
    head: h.head!,
    count: h.count!,
    live: h.live!,
    times: new Float64Array(memory, 0, cap),
    words: new Uint32Array(memory, cap * 8, cap * 3),
    table: new Int32Array(memory, cap * 20, h.table),
  };
  return { seq: h.seq!, messageId: h.message_id, state };
}

/** Fills `into` from `position` on, or until the file ends; returns the bytes read. */
async function readFully(handle: FileHandle, into: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
