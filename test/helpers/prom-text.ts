/**
 * A strict parser of the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), for tests of `/metrics`: it throws on
 * anything a scraper could reject or misread, and on names that break Prometheus' naming rules
 * (https://prometheus.io/docs/practices/naming/): a counter's samples end in `_total`, a gauge's do not,
 * a histogram has cumulative `_bucket{le}` series ending at `+Inf` = `_count`, and `_sum`.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | undefined;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`Not a number: '${text}' in: ${line}`);
  return Number(text);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`Bad labels in: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name) || name in labels) throw new Error(`Bad or repeated label '${name}' in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`Unquoted label value in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`Bad escape in: ${line}`);
      } else value += text[j];
    }
    if (text[j] !== '"') throw new Error(`Unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ',') throw new Error(`Expected ',' between labels in: ${line}`);
      i += 1;
    }
  }
  return labels;
}

function familyOf(sampleName: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  const direct = families.get(sampleName);
  if (direct) return direct;
  const base = sampleName.replace(/_(bucket|sum|count)$/, '');
  const f = families.get(base);
  return f && f.type === 'histogram' ? f : undefined;
}

/** Parses `text`. @throws Error naming the offending line or family. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (!text.endsWith('\n')) throw new Error('The exposition must end with a newline');
  const families = new Map<string, MetricFamily>();
  const seen = new Set<string>();
  let current: MetricFamily | undefined;
  const closed = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a comment
      const [, kind, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string];
      if (!NAME.test(name)) throw new Error(`Bad metric name in: ${line}`);
      let f = families.get(name);
      if (f && f.samples.length > 0 && kind === 'TYPE') throw new Error(`TYPE of ${name} after its samples`);
      if (!f) {
        f = { name, type: 'untyped', help: undefined, samples: [] };
        families.set(name, f);
      }
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`Unknown type in: ${line}`);
        if (f.type !== 'untyped') throw new Error(`Two TYPE lines for ${name}`);
        f.type = rest as MetricFamily['type'];
      } else {
        if (f.help !== undefined) throw new Error(`Two HELP lines for ${name}`);
        f.help = rest;
      }
      continue;
    }
    if (line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`Not a sample: ${line}`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string];
    const family = familyOf(name, families) ?? { name, type: 'untyped' as const, help: undefined, samples: [] };
    if (!families.has(family.name)) families.set(family.name, family);
    if (current !== family) {
      if (closed.has(family.name)) throw new Error(`The samples of ${family.name} are not grouped together`);
      if (current) closed.add(current.name);
      current = family;
    }
    const labels = labelText === undefined ? {} : parseLabels(labelText, line);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`Repeated series: ${line}`);
    seen.add(key);
    family.samples.push({ name, labels, value: parseValue(valueText, line) });
  }
  for (const f of families.values()) checkFamily(f);
  return families;
}

function checkFamily(f: MetricFamily): void {
  if (f.type === 'untyped') throw new Error(`${f.name} has no TYPE line`);
  if (f.help === undefined) throw new Error(`${f.name} has no HELP line`);
  if (f.type === 'counter') {
    if (!f.name.endsWith('_total')) throw new Error(`Counter ${f.name} does not end in _total`);
    for (const s of f.samples) if (s.value < 0 || Number.isNaN(s.value)) throw new Error(`Counter ${f.name} has value ${s.value}`);
  } else if (f.name.endsWith('_total')) {
    throw new Error(`${f.name} ends in _total but is a ${f.type}`);
  }
  if (f.type !== 'histogram') return;
  const byLabels = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = byLabels.get(key) ?? { buckets: [] };
    byLabels.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}_bucket without le`);
      g.buckets.push([parseValue(le, `le="${le}"`), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`Histogram ${f.name} has a sample ${s.name}`);
  }
  for (const g of byLabels.values()) {
    if (g.sum === undefined || g.count === undefined) throw new Error(`Histogram ${f.name} lacks _sum or _count`);
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`Histogram ${f.name} does not end with le="+Inf"`);
    if (last[1] !== g.count) throw new Error(`Histogram ${f.name}: +Inf bucket ${last[1]} is not _count ${g.count}`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0]) || g.buckets[i]![1] < g.buckets[i - 1]![1]) {
        throw new Error(`Histogram ${f.name}: buckets are not increasing and cumulative`);
      }
    }
  }
}

/** The value of the one sample of `name` with exactly `labels`, or undefined. */
export function sampleValue(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort())) return s.value;
    }
  }
  return undefined;
}
