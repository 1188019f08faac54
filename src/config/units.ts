// Sizes ("25MB", "25MiB"), durations ("30s", "5m", "4h", "5d") and rates
// ("5/10m") as they appear in smarthost.toml. Each parser returns a number or
// a sentence saying what is wrong, so the validator can report and go on.

const SIZE_UNITS: Record<string, number> = {
  '': 1, B: 1,
  KB: 1e3, MB: 1e6, GB: 1e9,
  KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3,
  K: 1e3, M: 1e6, G: 1e9,
};

/** Bytes, or an error sentence. Plain integers are bytes. */
export function parseSize(value: unknown): number | string {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  if (typeof value !== 'string') return 'must be a size such as "25MB" or "25MiB"';
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? SIZE_UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) return `"${value}" is not a size; write e.g. "25MB" (decimal) or "25MiB" (binary)`;
  return Math.round(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000,
};

/** Milliseconds, or an error sentence. "0" and 0 mean zero (off, where that applies). */
export function parseDuration(value: unknown): number | string {
  if (value === 0 || value === '0') return 0;
  if (typeof value !== 'string') return 'must be a duration such as "30s", "5m", "4h" or "5d"';
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(value);
  if (!m) return `"${value}" is not a duration; write e.g. "30s", "5m", "4h" or "5d"`;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

export interface Rate { readonly count: number; readonly windowMs: number }

/** "5/10m" -> 5 events per 10 minutes, or an error sentence. */
export function parseRate(value: unknown): Rate | string {
  const bad = `must be a rate such as "5/10m" (5 per 10 minutes)`;
  if (typeof value !== 'string') return bad;
  const m = /^\s*(\d+)\s*\/\s*(.+)$/.exec(value);
  if (!m) return `"${value}" ${bad}`;
  const windowMs = parseDuration(m[2]!.trim());
  if (typeof windowMs === 'string' || windowMs <= 0) return `"${value}" ${bad}`;
  const count = Number(m[1]);
  if (count < 1) return `"${value}": the count must be at least 1`;
  return { count, windowMs };
}

/** "5m" for 300000 and so on; used when printing the effective config and in logs. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
