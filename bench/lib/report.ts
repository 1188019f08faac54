// Plain-text tables for the benchmark reports.

export const f = (n: number | undefined, digits = 1): string => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits));
export const kb = (bytes: number): string => `${Math.round(bytes / 1024)} KB`;

/** Columns padded to their widest cell; the first two left-aligned, the rest right-aligned (numbers). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** One line of the report, on stdout (progress goes to stderr). */
export const say = (s: string): void => { process.stdout.write(`${s}\n`); };
