// main.cf as Postfix reads it (postconf(5)): "name = value" logical lines, a
// line that starts with whitespace continues the one before, a line whose first
// non-blank character is "#" is a comment, and the last definition wins. Values
// are expanded on use: $name, ${name}, $(name), ${name?text} and ${name:text}.
// Hand-written: no library reads main.cf, and the grammar is a few lines.

export interface Param { readonly value: string; readonly line: number }

/** Logical lines of a Postfix file: continuation lines joined with a space, comments and blank lines dropped. */
export function logicalLines(text: string): Array<{ text: string; line: number }> {
  const out: Array<{ text: string; line: number }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw)) return;
    const last = out[out.length - 1];
    if (/^\s/.test(raw) && last) last.text += ' ' + raw.trim();
    else out.push({ text: raw.trim(), line: i + 1 });
  });
  return out;
}

/** name -> its last definition (raw, unexpanded). Lines without "=" are returned as problems. */
export function parseMainCf(text: string): { params: Map<string, Param>; problems: string[] } {
  const params = new Map<string, Param>();
  const problems: string[] = [];
  for (const l of logicalLines(text)) {
    const m = /^([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(l.text);
    if (!m) { problems.push(`line ${l.line}: "${l.text.slice(0, 60)}" is not "name = value"`); continue; }
    params.set(m[1]!, { value: m[2]!.trim(), line: l.line });
  }
  return { params, problems };
}

const MAX_DEPTH = 20; // Postfix stops at 100; a loop ($a = $b, $b = $a) ends here

/**
 * Expands $name references with `lookup` (undefined = empty, as Postfix does for
 * an unknown name). ${name?text}: text when name is non-empty; ${name:text}: when empty.
 */
export function expand(value: string, lookup: (name: string) => string | undefined, depth = 0): string {
  if (depth > MAX_DEPTH) throw new Error(`main.cf: $name expansion loops (${value})`);
  const re = /\$(?:\{([A-Za-z0-9_.-]+)(?:([?:])([^}]*))?\}|\(([A-Za-z0-9_.-]+)\)|([A-Za-z0-9_]+)|\$)/g;
  return value.replace(re, (all, braced?: string, op?: string, text?: string, paren?: string, bare?: string) => {
    if (all === '$$') return '$';
    const name = braced ?? paren ?? bare ?? '';
    const inner = expand(lookup(name) ?? '', lookup, depth + 1);
    if (op === '?') return inner !== '' ? expand(text ?? '', lookup, depth + 1) : '';
    if (op === ':') return inner === '' ? expand(text ?? '', lookup, depth + 1) : '';
    return inner;
  });
}

/** A Postfix list value: items separated by commas and/or whitespace. */
export function splitList(value: string): string[] {
  return value.split(/[\s,]+/).filter(Boolean);
}

/**
 * One main.cf with Postfix's defaults for the parameters an import reads, and
 * the names read so far (the rest are reported as not carried over).
 */
export class MainCf {
  private readonly defaults: Map<string, string>;

  constructor(readonly params: Map<string, Param>, defaults: Record<string, string>,
    private readonly overrides = new Map<string, string>(), readonly used = new Set<string>()) {
    this.defaults = new Map(Object.entries(defaults));
  }

  /** A view that sees master.cf -o overrides for one service; names read through it count as read here too. */
  withOverrides(overrides: Map<string, string>): MainCf {
    return new MainCf(this.params, Object.fromEntries(this.defaults), overrides, this.used);
  }

  /** Whether the file (or an override) sets `name`, even to the empty string. */
  isSet(name: string): boolean { return this.overrides.has(name) || this.params.has(name); }

  /** The raw value: override, file, or default. */
  raw(name: string): string | undefined {
    return this.overrides.get(name) ?? this.params.get(name)?.value ?? this.defaults.get(name);
  }

  /** The expanded value, marking `name` as read. */
  get(name: string): string | undefined {
    this.used.add(name);
    const v = this.raw(name);
    return v === undefined ? undefined : expand(v, (n) => this.raw(n));
  }

  /** Postfix booleans: yes/no (case-insensitive); anything else is the default. */
  bool(name: string, fallback = false): boolean {
    const v = this.get(name)?.toLowerCase();
    return v === 'yes' ? true : v === 'no' ? false : fallback;
  }

  list(name: string): string[] { return splitList(this.get(name) ?? ''); }

  /** "name = value" as written, for the report. */
  shown(name: string): string {
    const v = this.overrides.get(name) ?? this.params.get(name)?.value;
    return v === undefined ? `${name} (default)` : `${name} = ${v}`;
  }
}
