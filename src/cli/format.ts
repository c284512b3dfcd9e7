/** Small formatting helpers shared by commands. */

import { isoTime } from '../lib/clock.js';
import { statusAction } from '../subscriptions/status.js';

/** Statuses that sync reports but does not recreate. */
export function isBlockedStatus(status: string): boolean {
  return statusAction(status) === 'blocked';
}

export function formatTime(epochMs: number | undefined): string {
  return isoTime(epochMs) ?? (epochMs === undefined ? '-' : 'never');
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (Math.abs(s) < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (Math.abs(m) < 120) return `${m}m`;
  const h = Math.round(m / 60);
  if (Math.abs(h) < 48) return `${h}h`;
  return `${Math.round(h / 24)}d`;
}
