// Parses the /etc/aliases format (aliases(5), as Postfix's postalias reads it)
// into a frozen table: lower-cased name -> targets. Pure: the caller reads the
// file. Every problem is collected with its line instead of stopping at the
// first, so `smarthost check` can list them all. smarthost only forwards to
// addresses, so |command, /file and :include: targets are reported and dropped.

export interface AliasProblem { readonly line: number; readonly message: string }

export interface AliasTable {
  /** Lower-cased alias name -> its address targets, in file order; `\name` targets kept as written. */
  readonly entries: ReadonlyMap<string, readonly string[]>;
  /** In file order; each names the alias or the line, and says what to do. */
  readonly problems: readonly AliasProblem[];
}

/** One entry after joining its continuation lines; `line` is where it starts. */
interface LogicalLine { readonly line: number; text: string }

type TargetKind = 'address' | 'command' | 'file' | 'include';

// How each unsupported kind is named in a problem, and what to do instead.
const UNSUPPORTED: Readonly<Record<Exclude<TargetKind, 'address'>, { what: string; fix: string }>> = {
  command: { what: 'delivery to a command', fix: 'forward to an address instead' },
  file: { what: 'delivery to a file', fix: 'forward to an address instead' },
  include: { what: 'an include file', fix: 'list its addresses in the alias itself' },
};

const SHOWN_CHARS = 60;

export function parseAliases(text: string): AliasTable {
  const entries = new Map<string, readonly string[]>();
  const definedAt = new Map<string, number>();
  const problems: AliasProblem[] = [];
  const report = (line: number, message: string): void => { problems.push(Object.freeze({ line, message })); };
  for (const logical of logicalLines(text, report)) addEntry(logical, entries, definedAt, report);
  return Object.freeze({ entries: frozenMap(entries), problems: Object.freeze(problems) });
}

/**
 * Joins continuation lines (starting with space or tab) onto the entry before
 * them. Blank and comment lines are skipped without ending an entry, as
 * Postfix's readllines() does, so a comment may sit inside a long alias.
 */
function logicalLines(text: string, report: (line: number, message: string) => void): LogicalLine[] {
  const out: LogicalLine[] = [];
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const last = out.at(-1);
    if (!/^[ \t]/.test(raw)) out.push({ line: i + 1, text: trimmed });
    else if (last) last.text += ' ' + trimmed;
    else report(i + 1, `line starts with whitespace, so it continues an entry, but no entry comes before it: "${shorten(trimmed)}"`);
  });
  return out;
}

function addEntry(
  logical: LogicalLine,
  entries: Map<string, readonly string[]>,
  definedAt: Map<string, number>,
  report: (line: number, message: string) => void,
): void {
  const { line, text } = logical;
  const colons = unquotedIndexes(text, ':');
  if (colons === undefined) return report(line, `a quote is not closed: "${shorten(text)}"`);
  const colon = colons[0];
  if (colon === undefined) return report(line, `expected "name: target, ...", found "${shorten(text)}"`);
  const name = unquote(text.slice(0, colon).trim()).toLowerCase();
  if (name === '') return report(line, `alias with an empty name: "${shorten(text)}"`);
  // Only a name that made it into the table counts as defined, so a broken
  // first definition does not hide a working second one.
  const first = definedAt.get(name);
  if (first !== undefined) return report(line, `alias "${name}" is defined twice (line ${first}); the first definition is used`);
  let dropped = 0;
  const targets = parseTargets(name, text.slice(colon + 1), (message) => { dropped++; report(line, message); });
  if (targets.length === 0) return dropped ? undefined : report(line, `alias "${name}" has no target`); // one problem per cause
  entries.set(name, Object.freeze(targets));
  definedAt.set(name, line);
}

/** Splits at commas outside quotes and keeps the address targets; reports the others. */
function parseTargets(name: string, list: string, report: (message: string) => void): string[] {
  const targets: string[] = [];
  for (const part of splitAt(list, unquotedIndexes(list, ',') ?? [])) {
    const target = stripAngles(part.trim());
    if (target === '') continue;
    const kind = targetKind(target);
    if (kind === 'address') targets.push(target);
    else report(unsupportedMessage(name, kind, unquote(target)));
  }
  return targets;
}

function unsupportedMessage(name: string, kind: Exclude<TargetKind, 'address'>, target: string): string {
  const { what, fix } = UNSUPPORTED[kind];
  return `alias "${name}": ${what} ("${shorten(target)}") is not supported by smarthost; ${fix}`;
}

// Postfix local(8) decides on the unquoted form, so "|/usr/bin/x" is a command too.
// A leading backslash (\root) means "this mailbox": never a command or file.
function targetKind(target: string): TargetKind {
  const bare = unquote(target);
  if (bare.startsWith('|')) return 'command';
  if (/^:include:/i.test(bare)) return 'include';
  if (bare.startsWith('/')) return 'file';
  return 'address';
}

function stripAngles(target: string): string {
  return target.startsWith('<') && target.endsWith('>') ? target.slice(1, -1).trim() : target;
}

/**
 * Indexes of `sep` outside "quotes", or undefined when a quote is left open.
 * A backslash escapes the next character, as in an RFC 5322 quoted-pair.
 */
function unquotedIndexes(text: string, sep: string): number[] | undefined {
  const at: number[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) at.push(i);
  }
  return quoted ? undefined : at;
}

function splitAt(text: string, indexes: readonly number[]): string[] {
  const parts: string[] = [];
  let start = 0;
  for (const i of indexes) { parts.push(text.slice(start, i)); start = i + 1; }
  parts.push(text.slice(start));
  return parts;
}

/** Drops the quotes and resolves escapes inside them; a backslash outside quotes stays (\root). */
function unquote(text: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted && i + 1 < text.length) out += text[++i];
    else out += c;
  }
  return out;
}

function shorten(text: string): string {
  return text.length <= SHOWN_CHARS ? text : text.slice(0, SHOWN_CHARS - 1) + '…';
}

// Object.freeze does not stop Map.prototype.set, so the mutators are shadowed too.
function frozenMap<K, V>(map: Map<K, V>): ReadonlyMap<K, V> {
  const refuse = (): never => { throw new TypeError('the alias table is read-only'); };
  Object.defineProperties(map, { set: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } });
  return Object.freeze(map);
}
