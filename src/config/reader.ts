// A typed reader over one TOML table: each getter returns the value in the
// type the code wants or the default, and records a Problem instead of
// throwing, so `smarthost check` can list every mistake at once (zod-style).
import type { LineIndex } from './toml-lines.js';
import type { Problem } from './types.js';
import { parseDuration, parseSize } from './units.js';

export type Table = Record<string, unknown>;

export function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export class Problems {
  readonly list: Problem[] = [];
  constructor(readonly file: string, private readonly lineOf: LineIndex) {}
  add(path: string, message: string, fix: string): void {
    const line = this.lineOf(path);
    this.list.push(Object.freeze({ file: this.file, ...(line !== undefined ? { line } : {}), path, message, fix }));
  }
}

/** Levenshtein distance: the "did you mean" of config keys and values, and of CLI options. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/**
 * The allowed value a mistyped one most likely meant, or undefined when none is close. `allowed`
 * lists the weakest value first where security is concerned (tls none < starttls <
 * starttls-required, auth none < optional < required): among equally close values the stronger
 * wins, so a typo is never "fixed" into a weaker setting ("starttls-requird" -> "starttls-required",
 * not "starttls"), and the weakest is suggested only one letter away ("dane" is not "none"). A
 * value that one allowed value begins with, or that begins one, counts as close.
 */
export function suggestValue(value: string, allowed: readonly string[]): string | undefined {
  const v = value.trim().toLowerCase();
  return allowed
    .map((a, i) => {
      const x = a.toLowerCase();
      const prefix = v.length >= 3 && (x.startsWith(v) || v.startsWith(x));
      return { a, i, d: prefix ? Math.min(1, editDistance(v, x)) : editDistance(v, x) };
    })
    // the weakest value only for a plain slip of one letter: "dane" or "on" must not become "none"
    .filter(({ a, i, d }) => d <= (i === 0 ? 1 : Math.max(2, Math.floor(a.length / 3))))
    .sort((p, q) => p.d - q.d || q.i - p.i)[0]?.a;
}

export class Section {
  private readonly used = new Set<string>();
  private readonly bad = new Set<string>();
  constructor(readonly table: Table, readonly path: string, readonly problems: Problems) {}

  at(key: string): string { return this.path ? `${this.path}.${key}` : key; }
  has(key: string): boolean { this.used.add(key); return this.table[key] !== undefined; }
  raw(key: string): unknown { this.used.add(key); return this.table[key]; }

  problem(key: string, message: string, fix: string): void {
    this.bad.add(key);
    this.problems.add(this.at(key), message, fix);
  }

  /** An unknown key here that finish() will report as a misspelling of `key` ("adress"): then "no key" would only repeat it. */
  misspells(key: string): boolean {
    return Object.keys(this.table).some((k) => k !== key && editDistance(k, key) <= 3 && !this.used.has(k));
  }

  /** Was a problem reported for this key? Then checks built on its value would only repeat it. */
  isBad(key: string): boolean { return this.bad.has(key); }

  string(key: string, def: string): string;
  string(key: string, def?: undefined): string | undefined;
  string(key: string, def?: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v === 'string' && v.length > 0) return v;
    this.problem(key, `${this.at(key)} must be a non-empty string`, `write ${key} = "..."`);
    return def;
  }

  /**
   * `allowed` lists the weakest value first wherever security is concerned (see suggestValue).
   * A bad value is reported once; checks that depend on it ask `isBad` and stay quiet.
   */
  oneOf<T extends string>(key: string, allowed: readonly T[], def: T): T {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
    // with nothing close, every choice is listed: guessing could pick a weaker setting than meant
    const near = typeof v === 'string' ? suggestValue(v, allowed) : undefined;
    this.problem(key, `${this.at(key)} = ${JSON.stringify(v)} is not one of ${allowed.join(' | ')}`,
      near !== undefined ? `write ${key} = "${near}"` : `write ${key} = ${allowed.map((a) => `"${a}"`).join(' or ')}`);
    return def;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v === 'boolean') return v;
    this.problem(key, `${this.at(key)} must be true or false, not ${JSON.stringify(v)}`, `write ${key} = ${def}`);
    return def;
  }

  int(key: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.problem(key, `${this.at(key)} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`,
      `write ${key} = ${def}`);
    return def;
  }

  size(key: string, def: number): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    const n = parseSize(v);
    if (typeof n === 'number') return n;
    this.problem(key, `${this.at(key)}: ${n}`, `write ${key} = "25MB"`);
    return def;
  }

  duration(key: string, def: number, example: string): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    const n = parseDuration(v);
    if (typeof n === 'number') return n;
    this.problem(key, `${this.at(key)}: ${n}`, `write ${key} = "${example}"`);
    return def;
  }

  strings(key: string, def: readonly string[]): readonly string[] {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return Object.freeze([...v] as string[]);
    if (typeof v === 'string') {
      this.problem(key, `${this.at(key)} must be a list`, `write ${key} = [${JSON.stringify(v)}]`);
    } else {
      this.problem(key, `${this.at(key)} must be a list of strings`, `write ${key} = ["..."]`);
    }
    return def;
  }

  table_(key: string): Section | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (isTable(v)) return new Section(v, this.at(key), this.problems);
    this.problem(key, `${this.at(key)} must be a table`, `write it as [${this.at(key)}] with keys under it`);
    return undefined;
  }

  /** Reports every key nobody asked for, with the closest known key as the fix. */
  finish(known: readonly string[] = [...this.used]): void {
    for (const key of Object.keys(this.table)) {
      if (this.used.has(key)) continue;
      const near = known
        .map((k) => [k, editDistance(k, key)] as const)
        .sort((a, b) => a[1] - b[1])[0];
      const fix = near && near[1] <= 3
        ? `did you mean "${near[0]}"?`
        : `remove it; known keys here: ${known.join(', ')}`;
      this.problem(key, `unknown key "${this.at(key)}"`, fix);
    }
  }
}
