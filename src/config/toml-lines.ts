// Maps key paths ("listen[1].tls", "limits.message_size") to the line they
// are written on. smol-toml returns plain values without positions, and every
// config problem must name its line, so this small scan of the source recovers
// them. It understands [table], [[array]] and key = value lines, which is all a
// smarthost.toml uses; anything it cannot place falls back to its table's line.

export type LineIndex = (path: string) => number | undefined;

const KEY = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const HEADER = new RegExp(String.raw`^\s*(\[\[?)\s*(${KEY}(?:\s*\.\s*${KEY})*)\s*\]\]?`);
const ASSIGN = new RegExp(String.raw`^\s*(${KEY}(?:\s*\.\s*${KEY})*)\s*=`);

function splitKey(dotted: string): string[] {
  const parts: string[] = [];
  const re = new RegExp(KEY, 'g');
  for (const m of dotted.matchAll(re)) {
    const k = m[0];
    parts.push(k.startsWith('"') ? JSON.parse(k) : k.startsWith("'") ? k.slice(1, -1) : k);
  }
  return parts;
}

/** Open minus closed brackets in a value, ignoring those inside strings and comments. */
function bracketBalance(value: string): number {
  const bare = value.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, '').replace(/#.*$/, '');
  return (bare.match(/\[/g)?.length ?? 0) - (bare.match(/\]/g)?.length ?? 0);
}

export function indexLines(source: string): LineIndex {
  const lines = new Map<string, number>();
  const arrayCounts = new Map<string, number>();
  let prefix = '';
  let depth = 0;                          // inside a multi-line array we skip key detection
  let inString: '"""' | "'''" | undefined; // inside a multi-line string, too
  source.split(/\r?\n/).forEach((text, i) => {
    const lineNo = i + 1;
    if (inString) {
      if (text.includes(inString)) inString = undefined;
      return;
    }
    if (depth > 0) {
      depth += bracketBalance(text);
      return;
    }
    const header = HEADER.exec(text);
    if (header) {
      const name = splitKey(header[2]!).join('.');
      if (header[1] === '[[') {
        const n = arrayCounts.get(name) ?? 0;
        arrayCounts.set(name, n + 1);
        prefix = `${name}[${n}]`;
      } else {
        prefix = name;
      }
      if (!lines.has(prefix)) lines.set(prefix, lineNo);
      return;
    }
    const assign = ASSIGN.exec(text);
    if (assign) {
      const path = [prefix, ...splitKey(assign[1]!)].filter(Boolean).join('.');
      if (!lines.has(path)) lines.set(path, lineNo);
      const rest = text.slice(assign[0].length).trim();
      const quote = rest.startsWith('"""') ? '"""' : rest.startsWith("'''") ? "'''" : undefined;
      if (quote) {
        if (!rest.slice(3).includes(quote)) inString = quote;
        return;
      }
      const open = bracketBalance(rest);
      if (open > 0) depth = open;
    }
  });
  return (path: string) => {
    // the key itself, else the closest enclosing table that has a line
    for (let p = path; p; p = p.replace(/(\.[^.[\]]+|\[\d+\])$/, '')) {
      const line = lines.get(p);
      if (line !== undefined) return line;
      if (!/[.[]/.test(p)) break;
    }
    return undefined;
  };
}
