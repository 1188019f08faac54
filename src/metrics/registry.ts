// A minimal metrics registry: counters, gauges and fixed-bucket histograms with
// labels, rendered in the Prometheus text exposition format 0.0.4.
// Hand-written on purpose: the format is a few dozen lines, while prom-client
// brings default process collectors, a global registry and more surface than
// a mail relay needs. Samples render in registration and first-use order.

export type Labels = Readonly<Record<string, string>>;
type Kind = 'counter' | 'gauge' | 'histogram';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** HELP text escapes only backslash and newline (exposition format 0.0.4). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Label values also escape the double quote that delimits them. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Go's ParseFloat spellings, which Prometheus expects for the special values. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function labelText(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (!pairs.length) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** What every metric shares: name, help, label names, and one series per label set. */
abstract class Metric<S> {
  abstract readonly kind: Kind;
  private readonly series = new Map<string, { values: readonly string[]; state: S }>();

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`bad label name ${JSON.stringify(l)} on ${name}`);
    }
  }

  protected abstract initial(): S;
  protected abstract lines(labels: ReadonlyArray<readonly [string, string]>, state: S): string[];

  /** The series for these labels, created on first use; wrong label names are a bug. */
  protected state(labels: Labels): S {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((l) => typeof labels[l] === 'string')) {
      throw new Error(`${this.name} takes labels {${this.labelNames.join(',')}}, got {${keys.join(',')}}`);
    }
    const values = this.labelNames.map((l) => labels[l]!);
    const key = JSON.stringify(values);
    let s = this.series.get(key);
    if (!s) this.series.set(key, s = { values, state: this.initial() });
    return s.state;
  }

  /** Called just before rendering; gauges computed at scrape time override it. */
  collect(): void {}

  render(): string {
    this.collect();
    // a metric without labels always has its one series, so a scrape shows 0 rather than nothing
    if (!this.labelNames.length) this.state({});
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.kind}`];
    for (const { values, state } of this.series.values()) {
      out.push(...this.lines(this.labelNames.map((l, i) => [l, values[i]!] as const), state));
    }
    return out.join('\n') + '\n';
  }
}

export class Counter extends Metric<{ value: number }> {
  readonly kind = 'counter';
  protected initial() { return { value: 0 }; }
  protected lines(pairs: ReadonlyArray<readonly [string, string]>, s: { value: number }) {
    return [`${this.name}${labelText(pairs)} ${formatValue(s.value)}`];
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up, not by ${by}`);
    this.state(labels).value += by;
  }
}

export class Gauge extends Metric<{ value: number }> {
  readonly kind = 'gauge';
  constructor(name: string, help: string, labelNames: readonly string[], private readonly compute?: (g: Gauge) => void) {
    super(name, help, labelNames);
  }
  protected initial() { return { value: 0 }; }
  protected lines(pairs: ReadonlyArray<readonly [string, string]>, s: { value: number }) {
    return [`${this.name}${labelText(pairs)} ${formatValue(s.value)}`];
  }

  override collect(): void { this.compute?.(this); }
  set(labels: Labels, value: number): void { this.state(labels).value = value; }
  inc(labels: Labels = {}, by = 1): void { this.state(labels).value += by; }
  dec(labels: Labels = {}, by = 1): void { this.state(labels).value -= by; }
}

interface HistogramState { counts: number[]; sum: number; count: number }

export class Histogram extends Metric<HistogramState> {
  readonly kind = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    if (labelNames.includes('le')) throw new Error(`${name}: "le" is the bucket label of a histogram`);
    super(name, help, labelNames);
    const ok = buckets.length > 0 && buckets.every((b, i) => Number.isFinite(b) && (i === 0 || b > buckets[i - 1]!));
    if (!ok) throw new Error(`${name}: buckets must be finite and strictly increasing`);
    this.buckets = Object.freeze([...buckets]);
  }

  protected initial(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  protected lines(pairs: ReadonlyArray<readonly [string, string]>, s: HistogramState) {
    const out: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((le, i) => {
      cumulative += s.counts[i]!;
      out.push(`${this.name}_bucket${labelText([...pairs, ['le', formatValue(le)]])} ${cumulative}`);
    });
    out.push(`${this.name}_bucket${labelText([...pairs, ['le', '+Inf']])} ${s.count}`);
    out.push(`${this.name}_sum${labelText(pairs)} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${labelText(pairs)} ${s.count}`);
    return out;
  }

  /** Counts the value in the first bucket it fits (le = "less than or equal"); +Inf takes the rest. */
  observe(labels: Labels, value: number): void {
    const s = this.state(labels);
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }
}

export class Registry {
  private readonly metrics: Array<{ readonly name: string; render(): string }> = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  /** `compute`, if given, runs at every scrape and sets the current values. */
  gauge(name: string, help: string, labelNames: readonly string[] = [], compute?: (g: Gauge) => void): Gauge {
    return this.add(new Gauge(name, help, labelNames, compute));
  }

  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** Every metric in the text format 0.0.4, each family once, ending in a newline. */
  render(): string {
    return this.metrics.map((m) => m.render()).join('');
  }

  private add<M extends { readonly name: string; render(): string }>(m: M): M {
    if (this.metrics.some((o) => o.name === m.name)) throw new Error(`metric ${m.name} is registered twice`);
    this.metrics.push(m);
    return m;
  }
}
