/**
 * The dedup window across a restart of a daemon with its journal on disk: restored at start from the snapshot
 * the last graceful stop saved (then only the records after it are read from the journal), else rebuilt from
 * every record of the retention; saved again at the next graceful stop. See src/receiver/dedup-snapshot.ts.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Dedup } from '../receiver/dedup.js';
import { DEDUP_SNAPSHOT_FILE, loadDedupSnapshot, saveDedupSnapshot } from '../receiver/dedup-snapshot.js';
import type { EventJournal } from '../storage/types.js';

export interface DedupWindowDeps {
  stateDir: string;
  journal: EventJournal;
  dedup: Dedup;
  clock: Clock;
  logger: Logger;
}

/** The record at `seq`, if the journal still holds it. */
async function recordAt(journal: EventJournal, seq: number): Promise<{ message_id: string } | undefined> {
  if (seq > journal.head) return undefined;
  for await (const record of journal.range(seq - 1, seq)) return record.seq === seq ? record : undefined;
  return undefined;
}

/** Fills `dedup` with the message ids of the retention: the snapshot's, then the journal's records after it. */
export async function restoreDedupWindow(d: DedupWindowDeps): Promise<void> {
  const path = join(d.stateDir, DEDUP_SNAPSHOT_FILE);
  const since = d.clock.now() - d.dedup.retentionMs;
  const snapshot = await loadDedupSnapshot(path, d.dedup.maxEntries);
  let after = 0;
  if (snapshot && 'problem' in snapshot) {
    d.logger.warn('Ignoring the dedup snapshot; rebuilding the dedup window from the journal', { path, problem: snapshot.problem });
  } else if (snapshot) {
    if ((await recordAt(d.journal, snapshot.seq))?.message_id !== snapshot.messageId) {
      d.logger.info('The dedup snapshot does not match the journal (the record it was taken at is gone); rebuilding from the journal', {
        path,
        seq: snapshot.seq,
      });
    } else if (d.dedup.adopt(snapshot.state)) {
      after = snapshot.seq;
    } else {
      d.logger.warn('Ignoring the dedup snapshot; rebuilding the dedup window from the journal', { path, problem: 'its arrays are not consistent' });
    }
  }
  let read = 0;
  for await (const rec of d.journal.recent(since, after)) {
    d.dedup.add(rec.message_id, Date.parse(rec.received_at));
    read += 1;
  }
  d.logger.debug('Dedup window ready', { keys: d.dedup.size, from_snapshot: after > 0, snapshot_seq: after || undefined, records_read: read });
}

/** At a graceful stop, once nothing more is journaled: saves the window for the next start. A failure is logged, never thrown. */
export async function saveDedupWindow(d: DedupWindowDeps): Promise<void> {
  const path = join(d.stateDir, DEDUP_SNAPSHOT_FILE);
  try {
    const head = await recordAt(d.journal, d.journal.head);
    if (!head) {
      // An empty journal: nothing to remember, and an older (perhaps broken) snapshot would only be warned about again.
      await rm(path, { force: true });
      return;
    }
    const keys = await saveDedupSnapshot(path, d.dedup, { seq: d.journal.head, messageId: head.message_id });
    d.logger.debug('Saved the dedup window for the next start', { path, keys, seq: d.journal.head });
  } catch (err) {
    d.logger.warn('Could not save the dedup window; the next start rebuilds it from the journal', { path, err });
  }
}
