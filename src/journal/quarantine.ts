/**
 * What the journal does with corruption (recovery.ts and reader.ts find it): each place is reported once per
 * process with a log line at warn and counted (`/metrics`); the bad bytes of a line are copied to
 * `journal/quarantine/<segment>@<offset>.bad` (0600) when the journal is writable, so that they survive the
 * segment's retention and can be examined. The segment itself is never rewritten.
 */
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { writeAll } from './segment-io.js';
import type { CorruptSpan, JournalFs } from './types.js';

export const QUARANTINE_DIR = 'quarantine';

export class Quarantine {
  readonly #o: { fs: JournalFs; dir: string; logger: Logger; readOnly: boolean };
  readonly #seen = new Set<string>();
  #copies: Promise<unknown> = Promise.resolve();
  /** Corrupt lines and runs of missing seqs found since open. */
  count = 0;

  constructor(options: { fs: JournalFs; dir: string; logger: Logger; readOnly: boolean }) {
    this.#o = options;
  }

  /** Reports `span` unless this place was reported before. Never throws. */
  readonly report = (span: CorruptSpan): void => {
    const key = `${span.path}@${span.offset}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.count += 1;
    const seqs = span.seqs.from === span.seqs.to ? String(span.seqs.from) : `${span.seqs.from}-${span.seqs.to}`;
    if (span.text.length === 0) {
      this.#o.logger.warn('Journal records are missing; readers skip their seqs', { path: span.path, seqs });
      return;
    }
    const copy = this.#o.readOnly ? undefined : join(this.#o.dir, QUARANTINE_DIR, `${span.path.split('/').pop()}@${span.offset}.bad`);
    this.#o.logger.warn('A journal record failed its check: kept in place, its seq is not reused, readers skip it', {
      path: span.path,
      offset: span.offset,
      seqs,
      bytes: Buffer.byteLength(span.text),
      ...(copy ? { copy } : {}),
    });
    if (copy) this.#copies = this.#copies.then(() => this.#copy(copy, span.text));
  };

  /** Resolves once every copy started has been written (or has failed). */
  flush(): Promise<unknown> {
    return this.#copies;
  }

  async #copy(path: string, text: string): Promise<void> {
    const { fs, dir, logger } = this.#o;
    try {
      await fs.mkdir(join(dir, QUARANTINE_DIR), { recursive: true, mode: 0o700 });
      const handle = await fs.open(path, 'wx', 0o600);
      try {
        await writeAll(handle, Buffer.from(text, 'utf8'), 0);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') logger.warn('Cannot copy a corrupt journal record aside', { path, err });
    }
  }
}
