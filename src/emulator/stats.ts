/** The live counters behind `Emulator.stats`: one object, updated and reset in place. */
import type { EmulatorStats, RequestRecord } from './types.js';

/** A fresh set of zeroed counters. */
export function emptyStats(): EmulatorStats {
  return {
    mints: 0,
    validations: 0,
    revocations: 0,
    helix: { total: 0, byStatus: {}, byMethod: {}, rateLimited: 0 },
    verificationsSent: 0,
    conduitDropped: 0,
    conduitSent: 0,
    requests: [],
  };
}

/** Zeroes every counter without replacing the object, so references held by tests stay live. */
export function resetStats(stats: EmulatorStats): void {
  Object.assign(stats, emptyStats());
}

/** Records one answered (or dropped, status 0) request. */
export function recordRequest(stats: EmulatorStats, record: RequestRecord, isHelix: boolean): void {
  stats.requests.push(record);
  if (!isHelix) return;
  const { helix } = stats;
  helix.total += 1;
  helix.byStatus[String(record.status)] = (helix.byStatus[String(record.status)] ?? 0) + 1;
  helix.byMethod[record.method] = (helix.byMethod[record.method] ?? 0) + 1;
}
