/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text exposition
 * format (version 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/). Names follow
 * Prometheus' conventions (https://prometheus.io/docs/practices/naming/): a counter's name ends in `_total`,
 * nothing else's does; the registry refuses a family that breaks them. No secret is ever a label value:
 * callers pass codes and statuses only.
 */

type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return '{' + keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',') + '}';
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

/** Labelled values of one family, filled by callers or, on each scrape, by a collector. */
abstract class Series {
  abstract readonly type: 'counter' | 'gauge';
  protected readonly values = new Map<string, number>();
  protected collector: (() => void) | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  get(labels: Labels = {}): number | undefined {
    return this.values.get(labelKey(labels));
  }

  render(): string[] {
    this.collector?.();
    return [...this.values].map(([k, v]) => `${this.name}${k} ${formatValue(v)}`);
  }
}

/** Only goes up. A collector may `set` it from a total another component keeps (it must not go down). */
export class Counter extends Series {
  readonly type = 'counter' as const;
  constructor(name: string, help: string, collect?: (c: Counter) => void) {
    super(name, help);
    this.collector = collect && (() => collect(this));
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  /** For collectors: the total as another component counts it. */
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
}

export class Gauge extends Series {
  readonly type = 'gauge' as const;
  constructor(name: string, help: string, collect?: (g: Gauge) => void) {
    super(name, help);
    this.collector = collect && (() => collect(this));
  }
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
  /** Drops every labelled value (before a collector sets the current ones). */
  reset(): void {
    this.values.clear();
  }
}

/** Cumulative counts by upper bound, as Prometheus renders them: `counts[i]` observations were ≤ `bounds[i]`. */
export interface HistogramSnapshot {
  bounds: readonly number[];
  counts: readonly number[];
  count: number;
  sum: number;
}

/** A latency (or size) histogram with fixed upper bounds, kept by the component that observes. */
export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #count = 0;
  #sum = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.#count += 1;
    this.#sum += value;
    for (let i = 0; i < this.#bounds.length; i++) if (value <= this.#bounds[i]!) this.#counts[i]! += 1;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.#bounds, counts: [...this.#counts], count: this.#count, sum: this.#sum };
  }
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

class HistogramFamily implements Family {
  readonly type = 'histogram' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly collect: () => HistogramSnapshot,
  ) {}
  render(): string[] {
    const h = this.collect();
    return [
      ...h.bounds.map((b, i) => `${this.name}_bucket{le="${formatValue(b)}"} ${h.counts[i] ?? 0}`),
      `${this.name}_bucket{le="+Inf"} ${h.count}`,
      `${this.name}_sum ${formatValue(h.sum)}`,
      `${this.name}_count ${h.count}`,
    ];
  }
}

export class Registry {
  readonly #families: Family[] = [];

  /** @throws Error when `name` does not end in `_total`, or is taken or malformed. */
  counter(name: string, help: string, collect?: (c: Counter) => void): Counter {
    return this.#add(new Counter(name, help, collect));
  }

  /** @throws Error when `name` ends in `_total`, or is taken or malformed. */
  gauge(name: string, help: string, collect?: (g: Gauge) => void): Gauge {
    return this.#add(new Gauge(name, help, collect));
  }

  /** A histogram read at scrape time from the component that keeps it. @throws Error as `gauge`. */
  histogram(name: string, help: string, collect: () => HistogramSnapshot): void {
    this.#add(new HistogramFamily(name, help, collect));
  }

  /** The text exposition format. */
  render(): string {
    const lines: string[] = [];
    for (const f of this.#families) {
      lines.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.type}`, ...f.render());
    }
    return lines.join('\n') + '\n';
  }

  #add<T extends Family>(f: T): T {
    if (!NAME.test(f.name)) throw new Error(`Metric name '${f.name}' is not a Prometheus name`);
    if (this.#families.some((g) => g.name === f.name)) throw new Error(`Metric '${f.name}' is registered twice`);
    if ((f.type === 'counter') !== f.name.endsWith('_total')) {
      throw new Error(`Metric '${f.name}' is a ${f.type}: only a counter's name ends in _total`);
    }
    this.#families.push(f);
    return f;
  }
}
