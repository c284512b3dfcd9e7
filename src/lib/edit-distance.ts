/**
 * Edit distance between names, to suggest the nearest valid one after a typo (`channel.folow` → did you
 * mean `channel.follow`?). Pure; imports nothing.
 */

/**
 * The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two adjacent
 * characters each count 1 (`EVENTSUBD_LISTN` → `EVENTSUBD_LISTEN` is 1, `chanenl` → `channel` is 1).
 * O(a·b) time, O(b) memory; names are short.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      current[j] = d;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}

export interface NearestOptions {
  /**
   * The largest distance still worth suggesting. Default: a third of the longer name's length, at least 2,
   * so that a short name is not "corrected" into an unrelated one.
   */
  maxDistance?: number;
}

/**
 * The candidate nearest to `name` (the first one on a tie), or undefined when none is within reach.
 * Case is ignored when measuring (`EventSubD_Listen` → `EVENTSUBD_LISTEN`).
 */
export function nearestName(name: string, candidates: Iterable<string>, options: NearestOptions = {}): string | undefined {
  const wanted = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(wanted, candidate.toLowerCase());
    const limit = options.maxDistance ?? Math.max(2, Math.floor(Math.max(name.length, candidate.length) / 3));
    if (d <= limit && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
