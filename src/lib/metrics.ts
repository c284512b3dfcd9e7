/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). No secret is ever a label value: callers pass codes and statuses only.
 */

type Labels = Readonly<Record<string, string>>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return '{' + keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',') + '}';
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export class Counter implements Family {
  readonly type = 'counter' as const;
  readonly #values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    return [...this.#values].map(([k, v]) => `${this.name}${k} ${v}`);
  }
}

export class Gauge implements Family {
  readonly type = 'gauge' as const;
  readonly #values = new Map<string, number>();
  #collect: (() => void) | undefined;
  constructor(readonly name: string, readonly help: string, collect?: (g: Gauge) => void) {
    this.#collect = collect ? () => collect(this) : undefined;
  }
  set(value: number, labels: Labels = {}): void {
    this.#values.set(labelKey(labels), value);
  }
  /** Drops every labelled value (before a collector sets the current ones). */
  reset(): void {
    this.#values.clear();
  }
  get(labels: Labels = {}): number | undefined {
    return this.#values.get(labelKey(labels));
  }
  render(): string[] {
    this.#collect?.();
    return [...this.#values].map(([k, v]) => `${this.name}${k} ${Number.isFinite(v) ? v : 'NaN'}`);
  }
}

export class Histogram implements Family {
  readonly type = 'histogram' as const;
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.#counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.#sum += value;
    this.#count += 1;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.#counts[i]! += 1;
  }
  render(): string[] {
    return [
      ...this.buckets.map((b, i) => `${this.name}_bucket{le="${b}"} ${this.#counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.name}_sum ${this.#sum}`,
      `${this.name}_count ${this.#count}`,
    ];
  }
}

/** A histogram whose buckets are kept elsewhere (cumulative counts by upper bound), rendered on scrape. */
export interface HistogramSnapshot {
  bounds: readonly number[];
  /** Cumulative: counts[i] = observations <= bounds[i]. */
  counts: readonly number[];
  count: number;
  sum: number;
}

class CollectedHistogram implements Family {
  readonly type = 'histogram' as const;
  constructor(readonly name: string, readonly help: string, readonly collect: () => HistogramSnapshot) {}
  render(): string[] {
    const h = this.collect();
    return [
      ...h.bounds.map((b, i) => `${this.name}_bucket{le="${b}"} ${h.counts[i] ?? 0}`),
      `${this.name}_bucket{le="+Inf"} ${h.count}`,
      `${this.name}_sum ${h.sum}`,
      `${this.name}_count ${h.count}`,
    ];
  }
}

export class Registry {
  readonly #families: Family[] = [];

  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }
  gauge(name: string, help: string, collect?: (g: Gauge) => void): Gauge {
    return this.#add(new Gauge(name, help, collect));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, buckets));
  }

  /** A histogram read from another component's counters at scrape time. */
  collectedHistogram(name: string, help: string, collect: () => HistogramSnapshot): void {
    this.#add(new CollectedHistogram(name, help, collect));
  }

  /** The text exposition format. */
  render(): string {
    const lines: string[] = [];
    for (const f of this.#families) {
      lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.render());
    }
    return lines.join('\n') + '\n';
  }

  #add<T extends Family>(f: T): T {
    this.#families.push(f);
    return f;
  }
}
