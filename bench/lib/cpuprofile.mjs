/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by area (our modules by
 * folder, node internals, dependencies, garbage collection, idle), so BENCHMARKS.md can say what bounds a
 * figure from a measurement rather than a guess.
 */
import { readFileSync } from 'node:fs';

/** Which part of the process a frame belongs to. */
export function areaOf(frame) {
  const url = frame.url ?? '';
  const fn = frame.functionName;
  if (fn === '(idle)') return 'idle (waiting for I/O)';
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8/native (program)';
  const ours = /\/dist\/([a-z]+)\//.exec(url);
  if (ours) return `eventsubd ${ours[1]}/`;
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return `dependency ${dep[1]}`;
  if (url.startsWith('node:internal/') || url.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
    return `node ${m ? m[1] : url}`;
  }
  if (url === '') {
    if (/^write(Latin1String|Utf8String|Buffer|Buffers|v)$|^writev$/.test(fn)) return 'native writes (sockets, files)';
    if (/^(fdatasync|fsync|open|openFileHandle|close|read|fstat|lstat|stat|ftruncate)$/.test(fn)) return 'native file-system calls';
    return `native ${fn || '(anonymous)'}`;
  }
  return url;
}

/**
 * `{totalMs, idleShare, byArea: [{name, ms, share, busy}], byFunction: [{name, area, ms, share, busy}]}`,
 * largest first (`share` of all samples, `busy` of the samples that were not idle), of a
 * profile (a path or the object). `lastMs` keeps only the samples of the profile's last `lastMs`,
 * `firstMs` only those of its first `firstMs`.
 */
export function summarizeProfile(source, { top = 15, lastMs = Infinity, firstMs = Infinity } = {}) {
  const profile = typeof source === 'string' ? JSON.parse(readFileSync(source, 'utf8')) : source;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const from = profile.endTime - lastMs * 1000;
  const until = profile.startTime + firstMs * 1000;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < from || t > until) continue;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const areas = new Map();
  const fns = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id).callFrame;
    const area = areaOf(frame);
    total += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const file = (frame.url ?? '').replace(/^.*\/(dist|node_modules)\//, '$1/');
    const key = `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim();
    const f = fns.get(key) ?? { name: key, area, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const pct = (us) => us / total;
  const idleUs = [...areas].filter(([name]) => name.startsWith('idle')).reduce((sum, [, us]) => sum + us, 0);
  // Share of the time the thread was not idle (NaN for idle itself).
  const busy = (name, us) => (name.startsWith('idle') ? Number.NaN : us / (total - idleUs));
  return {
    totalMs: total / 1000,
    idleShare: idleUs / total,
    byArea: [...areas].map(([name, us]) => ({ name, ms: us / 1000, share: pct(us), busy: busy(name, us) })).sort((a, b) => b.ms - a.ms),
    byFunction: [...fns.values()]
      .map((f) => ({ name: f.name, area: f.area, ms: f.us / 1000, share: pct(f.us), busy: busy(f.area, f.us) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
  };
}
