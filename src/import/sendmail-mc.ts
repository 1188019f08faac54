// sendmail.mc, read as m4 would for the macros an import needs: `dnl`
// discards to the end of the line, `#` starts a comment, quotes are
// `like this' (nested), and each NAME(arg, ...) call is collected with its
// unquoted arguments. We do not run m4: the .mc is a list of macro calls, and
// the generated sendmail.cf (which m4 writes) is not what users edit.

export interface McCall { readonly name: string; readonly args: readonly string[]; readonly line: number }

export interface McFile {
  readonly calls: readonly McCall[];
  /** define(`NAME', `value'): the last definition wins, as in m4. */
  readonly defines: ReadonlyMap<string, string>;
  readonly features: ReadonlyMap<string, readonly string[]>;
}

/** Drops `dnl ...` and `# ...` comments outside quotes; keeps newlines so line numbers stay right. */
export function stripComments(text: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '`') depth++;
    else if (c === '\'' && depth > 0) depth--;
    const comment = depth === 0 && (c === '#' || (text.startsWith('dnl', i) && !/[A-Za-z0-9_]/.test(text[i - 1] ?? ' ') && !/[A-Za-z0-9_]/.test(text[i + 3] ?? ' ')));
    if (!comment) { out += c; continue; }
    const nl = text.indexOf('\n', i);
    // dnl also eats the newline; keep it for line numbers (harmless between macro calls)
    if (nl < 0) break;
    out += '\n';
    i = nl;
  }
  return out;
}

/** Removes one level of `...' quoting and trims: "`hash -o /etc/mail/x'" -> "hash -o /etc/mail/x". */
export function unquote(arg: string): string {
  const t = arg.trim();
  return t.startsWith('`') && t.endsWith('\'') ? t.slice(1, -1) : t;
}

/** The arguments of a call starting after "(" at `start`; returns them and the index after ")". */
export function readArgs(text: string, start: number): { args: string[]; end: number } | undefined {
  const args: string[] = [];
  let cur = '';
  let quote = 0;
  let paren = 0;
  for (let i = start; i < text.length; i++) {
    const c = text[i]!;
    if (c === '`') quote++;
    else if (c === '\'' && quote > 0) quote--;
    else if (quote === 0 && c === '(') paren++;
    else if (quote === 0 && c === ')' && paren > 0) paren--;
    else if (quote === 0 && c === ')') { args.push(unquote(cur)); return { args, end: i + 1 }; }
    else if (quote === 0 && paren === 0 && c === ',') { args.push(unquote(cur)); cur = ''; continue; }
    cur += c;
  }
  return undefined;
}

export function parseMc(text: string): McFile {
  const src = stripComments(text);
  const calls: McCall[] = [];
  const re = /\b([A-Za-z_][A-Za-z0-9_]*)\(/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src))) {
    const r = readArgs(src, m.index + m[0].length);
    if (!r) break;
    calls.push({ name: m[1]!, args: r.args, line: src.slice(0, m.index).split('\n').length });
    re.lastIndex = r.end;
  }
  const defines = new Map<string, string>();
  const features = new Map<string, string[]>();
  for (const c of calls) {
    if (c.name === 'define' && c.args[0]) defines.set(c.args[0], c.args[1] ?? '');
    if (c.name === 'undefine' && c.args[0]) defines.delete(c.args[0]);
    if (c.name === 'FEATURE' && c.args[0]) features.set(c.args[0], c.args.slice(1));
  }
  return { calls, defines, features };
}

/** One AuthInfo line: `AuthInfo:host "U:user" "I:id" "P:pass" "M:PLAIN LOGIN"`; P= is base64. */
export interface AuthInfo { readonly host: string; readonly fields: ReadonlyMap<string, string>; readonly line: number }

export function parseAuthInfo(text: string): AuthInfo[] {
  const out: AuthInfo[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const m = /^AuthInfo:(\S*)\s+(.*)$/i.exec(raw.trim());
    if (!m) return;
    const fields = new Map<string, string>();
    for (const f of m[2]!.matchAll(/"([A-Za-z])([:=])([^"]*)"/g)) {
      const value = f[2] === '=' ? Buffer.from(f[3]!, 'base64').toString('utf8') : f[3]!;
      fields.set(f[1]!.toUpperCase(), value);
    }
    out.push({ host: m[1]!.toLowerCase(), fields, line: i + 1 });
  });
  return out;
}

/**
 * The AuthInfo entry Sendmail uses for a connection: AuthInfo:<server name>,
 * then AuthInfo:<server address>, then the line without a host.
 */
export function authInfoFor(entries: readonly AuthInfo[], names: readonly string[]): AuthInfo | undefined {
  for (const n of [...names.map((x) => x.toLowerCase()), '']) {
    const hit = entries.find((e) => e.host === n);
    if (hit) return hit;
  }
  return undefined;
}

/** DAEMON_OPTIONS(`Port=smtp, Name=MTA, Family=inet6, Modifiers=O'): key -> value (keys lower-cased, M= is Modifiers). */
export function daemonOptions(arg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of arg.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim().toLowerCase();
    out.set(k === 'm' ? 'modifiers' : k, part.slice(eq + 1).trim());
  }
  return out;
}
