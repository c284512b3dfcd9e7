/**
 * The journal's segments as known in memory, oldest first, and the head. The writer appends to the last
 * segment (the active one); readers only read a segment up to its `size`, which grows together with `head`
 * only after an fdatasync, so they never see a line that is not durable.
 */

/** One segment file. */
export interface Segment {
  firstSeq: number;
  path: string;
  /** Committed (fsynced) bytes. */
  size: number;
  /** Last committed seq in this segment; `firstSeq - 1` while it is empty. */
  lastSeq: number;
  /** `received_at` of its last record (epoch ms); NaN when empty or unknown. */
  lastReceivedAtMs: number;
}

export interface RetentionLimits {
  maxBytes?: number | undefined;
  maxAgeMs?: number | undefined;
}

/** Segments in memory and the head, shared by the writer and the readers of one Journal. */
export class SegmentSet {
  /** Oldest first; the last one is the active segment. */
  readonly list: Segment[] = [];
  /** Last committed seq; 0 when nothing was ever written. */
  head = 0;
  /** A format-1 journal (no checksums): only a reader of a journal no writer has migrated yet sees one. */
  legacy = false;

  get firstSeq(): number {
    return this.list[0]?.firstSeq ?? this.head + 1;
  }

  get bytes(): number {
    let total = 0;
    for (const s of this.list) total += s.size;
    return total;
  }

  /** The segment that holds `seq`, or the oldest one when `seq` is older than everything retained. */
  locate(seq: number): Segment | undefined {
    let lo = 0;
    let hi = this.list.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.firstSeq <= seq) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return this.list[found];
  }

  /**
   * Removes from the list the oldest sealed segments past the limits and returns them (the caller deletes
   * the files). The active (last) segment is never removed. Age is that of a segment's newest record.
   */
  takeExpired(limits: RetentionLimits, now: number): Segment[] {
    let total = this.bytes;
    let count = 0;
    while (count < this.list.length - 1) {
      const seg = this.list[count]!;
      const tooBig = limits.maxBytes !== undefined && total > limits.maxBytes;
      const tooOld = limits.maxAgeMs !== undefined && now - seg.lastReceivedAtMs > limits.maxAgeMs;
      if (!tooBig && !tooOld) break;
      total -= seg.size;
      count += 1;
    }
    return this.list.splice(0, count);
  }
}
