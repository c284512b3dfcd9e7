import { constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { JournalEntry, JournalFileHandle, JournalFs } from '../../src/journal/types.js';

/** A fresh temporary directory, removed after the test; the journal goes in `<tmp>/journal`. */
export function tempJournalDir(t: TestContext): string {
  const root = mkdtempSync(join(tmpdir(), 'eventsubd-journal-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return join(root, 'journal');
}

/** A notification entry numbered `i`. */
export function entry(i: number, receivedAt = '2026-11-24T10:00:00.000Z'): JournalEntry {
  return {
    message_id: `msg-${i}`,
    message_type: 'notification',
    received_at: receivedAt,
    subscription: { id: 'sub-1', type: 'stream.online', version: '1', condition: { broadcaster_user_id: '1234' } },
    event: { id: `ev-${i}`, n: i, text: 'caf\u00e9 \u2603 "quoted"\nnewline' },
  };
}

/**
 * A segment's text without the zeros ahead that an open journal keeps after its last record (writer.ts); they
 * are cut when it closes, and by recovery after a crash.
 */
export function segmentText(path: string): string {
  return readFileSync(path, 'utf8').replace(/\0+$/, '');
}

/** Every line of every segment in `dir`, in file order. */
export function allLines(dir: string): string[] {
  const lines: string[] = [];
  for (const name of segmentNames(dir)) {
    const text = segmentText(join(dir, name));
    lines.push(...text.split('\n').filter((l) => l.length > 0));
  }
  return lines;
}

export function segmentNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort();
}

/** Switches that make the injected fs fail, and counters of what it did. */
export interface FaultSwitch {
  failWrite?: 'throw' | 'partial' | undefined;
  failDatasync?: boolean;
  failOpenWx?: boolean;
  failTruncate?: boolean;
  datasyncs: number;
}

function enospc(what: string): NodeJS.ErrnoException {
  const err = new Error(`ENOSPC: no space left on device, ${what}`) as NodeJS.ErrnoException;
  err.code = 'ENOSPC';
  return err;
}

/** True for the flags of a file the journal creates ('wx', or O_CREAT|O_EXCL with O_DSYNC for a new segment). */
export function isCreate(flags: string | number | undefined): boolean {
  return flags === 'wx' || (typeof flags === 'number' && (flags & constants.O_EXCL) !== 0);
}

/** True when a handle opened with these flags makes every write durable (O_DSYNC): its writes are the commits. */
export function isDsync(flags: string | number | undefined): boolean {
  return typeof flags === 'number' && (flags & constants.O_DSYNC) !== 0;
}

/**
 * A file system (the real one underneath) whose writes, fsyncs, truncates and segment creation can fail. On a
 * handle opened with O_DSYNC, `failDatasync` fails the durable part of each write: the bytes reach the file,
 * then the write reports the error, as a failed fdatasync after a write would.
 */
export async function faultyFs(faults: FaultSwitch): Promise<Partial<JournalFs>> {
  const fsp = await import('node:fs/promises');
  return {
    async open(path, flags, mode) {
      if (isCreate(flags) && faults.failOpenWx) throw enospc(`open '${path}'`);
      const real = await fsp.open(path, flags, mode);
      const dsync = isDsync(flags);
      const handle: JournalFileHandle = {
        read: (b, o, l, p) => real.read(b, o, l, p),
        async write(b, o, l, p) {
          if (faults.failWrite === 'throw') throw enospc('write');
          if (faults.failWrite === 'partial') {
            await real.write(b, o, Math.max(1, Math.floor(l / 2)), p);
            throw enospc('write');
          }
          if (dsync && faults.failDatasync) {
            await real.write(b, o, l, p);
            throw enospc('write (O_DSYNC)');
          }
          if (dsync) faults.datasyncs += 1;
          return real.write(b, o, l, p);
        },
        async datasync() {
          if (faults.failDatasync) throw enospc('fdatasync');
          faults.datasyncs += 1;
          return real.datasync();
        },
        sync: () => real.sync(),
        async truncate(len) {
          if (faults.failTruncate) throw enospc('ftruncate');
          return real.truncate(len);
        },
        stat: () => real.stat(),
        close: () => real.close(),
      };
      return handle;
    },
  };
}
