/**
 * Helpers for the disk fault tests (disk-full.test.ts): a tmpfs mounted on a daemon's state directory,
 * filled up, remounted read-only and back (all of it needs root: `mount`), and a ledger of what the daemon
 * answered, to check the journal files against.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statfsSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { JournalRecord } from '../../src/journal/types.js';

/** Why a disk test cannot run: said in the failure, never a quiet skip. */
export const NEEDS_ROOT =
  'The disk fault tests need root (CAP_SYS_ADMIN) to mount a tmpfs on the state directory: run them as root, as .ci/run does';

/** Runs `mount ARGS`. @throws Error naming `what` with mount's own message. */
function mount(args: readonly string[], what: string): void {
  try {
    execFileSync('mount', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8').trim();
    throw new Error(`Cannot ${what} (mount ${args.join(' ')}): ${stderr || (err as Error).message}`, { cause: err });
  }
}

/** Creates `dir` and mounts a tmpfs of `sizeBytes` on it (mode 0700). @throws Error with NEEDS_ROOT when impossible. */
export function mountTmpfs(dir: string, sizeBytes: number): void {
  const uid = process.getuid?.();
  if (uid !== 0) throw new Error(`${NEEDS_ROOT} (running as uid ${uid})`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    mount(['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], `mount a tmpfs on ${dir}`);
  } catch (err) {
    throw new Error(`${NEEDS_ROOT}: ${(err as Error).message}`, { cause: err });
  }
}

/** `mount -o remount,OPTIONS DIR`, e.g. `ro`, `rw`, `size=4m`. @throws Error with mount's message (EBUSY...). */
export function remount(dir: string, options: string): void {
  mount(['-o', `remount,${options}`, dir], `remount ${dir} with ${options}`);
}

/** Unmounts `dir` (lazily when busy); never throws, for `t.after`. */
export function unmount(dir: string): void {
  for (const args of [[dir], ['-l', dir]]) {
    try {
      execFileSync('umount', args, { stdio: 'ignore' });
      return;
    } catch {
      // not mounted, or busy: try the lazy unmount, then give up
    }
  }
}

/** Bytes an unprivileged writer could still allocate on the file system of `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * Appends zeros to `path` (created if needed) until at most `leaveBytes` are free on its file system, or until
 * ENOSPC. Returns the bytes written.
 */
export function fill(path: string, leaveBytes = 0): number {
  const fd = openSync(path, 'a', 0o600);
  const chunk = Buffer.alloc(4096);
  let written = 0;
  try {
    for (;;) {
      const room = freeBytes(dirname(path)) - leaveBytes;
      if (room <= 0) break;
      try {
        written += writeSync(fd, chunk, 0, Math.min(chunk.length, room));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/**
 * The segment files of `STATE_DIR/journal` that do not end with a newline: bytes of a failed append left
 * behind (readJournal skips such a tail as a crash's torn line, so it must be looked for on its own).
 */
export function tornSegments(stateDir: string): string[] {
  const dir = join(stateDir, 'journal');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .filter((n) => {
      const bytes = readFileSync(join(dir, n));
      return bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a;
    });
}

/** What the daemon answered, per request and per message id. */
export class Ledger {
  tried = 0;
  /** Requests answered 2xx (a retry of a stored message counts again). */
  acknowledged = 0;
  /** Requests answered 503 `journal unavailable`. */
  refused = 0;
  /** Message ids answered 2xx at least once. */
  readonly ackedIds = new Set<string>();
  /** Every status other than 2xx and 503, with its message id: must stay empty. */
  readonly other: Array<{ id: string; status: number; body: string }> = [];

  /** Records one answer; returns its status. */
  record(id: string, answer: { status: number; body: string }): number {
    this.tried += 1;
    if (answer.status >= 200 && answer.status <= 299) {
      this.acknowledged += 1;
      this.ackedIds.add(id);
    } else if (answer.status === 503 && answer.body === 'journal unavailable') {
      this.refused += 1;
    } else {
      this.other.push({ id, status: answer.status, body: answer.body });
    }
    return answer.status;
  }
}

/** How a journal compares with the ids that were acknowledged. */
export interface JournalCheck {
  records: JournalRecord[];
  /** Extra copies of an id (0 when each id is there once). */
  duplicates: number;
  /** Acknowledged ids that are not in the journal. */
  lost: string[];
  /** Ids in the journal that were never acknowledged. */
  unacknowledged: string[];
  /** True when seq is 1..n without a gap. */
  dense: boolean;
}

/** Compares `records` (read straight from the segment files) with the acknowledged ids. */
export function checkJournal(records: JournalRecord[], ackedIds: ReadonlySet<string>): JournalCheck {
  const count = new Map<string, number>();
  for (const r of records) count.set(r.message_id, (count.get(r.message_id) ?? 0) + 1);
  return {
    records,
    duplicates: [...count.values()].reduce((sum, c) => sum + c - 1, 0),
    lost: [...ackedIds].filter((id) => !count.has(id)),
    unacknowledged: [...count.keys()].filter((id) => !ackedIds.has(id)),
    dense: records.every((r, i) => r.seq === i + 1),
  };
}
