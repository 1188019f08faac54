// The parts of parse-prometheus-text-format (no bundled types) that server.test.ts uses.
// Values stay strings, as prom2json prints them; a histogram family is flattened
// into one entry with buckets keyed by "le".
declare module 'parse-prometheus-text-format' {
  interface PromSample {
    readonly value?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly buckets?: Readonly<Record<string, string>>;
    readonly count?: string;
    readonly sum?: string;
  }
  interface PromFamily {
    readonly name: string;
    readonly help: string;
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    readonly metrics: readonly PromSample[];
  }
  /** Throws on a line it cannot parse. */
  function parsePrometheusTextFormat(text: string): PromFamily[];
  export = parsePrometheusTextFormat;
}
