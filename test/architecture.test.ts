// The import direction that docs/ARCHITECTURE.md documents, checked against the code.
// The document's "Dependency direction" block is the one source: every import between
// two folders of src/ must be listed there, and every edge listed must still exist, so
// the test fails on a new edge against the direction and on a stale line in the document.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = join(ROOT, 'src');

/** `FROM → TO TO …` lines of the fenced block under "## Dependency direction". */
export function documentedEdges(markdown: string): Map<string, Set<string>> {
  const section = markdown.split(/^## Dependency direction$/m)[1];
  if (section === undefined) throw new Error('docs/ARCHITECTURE.md has no "## Dependency direction" section');
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('"## Dependency direction" has no fenced block');
  const edges = new Map<string, Set<string>>();
  for (const line of block.split('\n')) {
    const m = /^([\w.-]+)\s+→\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    edges.set(m[1]!, new Set(m[2]!.split(/\s+/).filter((t) => t !== '' && t !== '-')));
  }
  return edges;
}

/** The stage a source file belongs to: its top folder under src/, or the file's own name for src/X.ts. */
function stageOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? parts[0]!.replace(/\.[jt]s$/, '') : parts[0]!;
}

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g;

/** stage → stages it imports (type-only imports count: they tie the code together too). */
export function actualEdges(): Map<string, Map<string, string[]>> {
  const edges = new Map<string, Map<string, string[]>>();
  const visit = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) visit(path);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(IMPORT)) {
          const from = stageOf(path);
          const to = stageOf(join(dirname(path), m[1]!));
          if (from === to) continue;
          const targets = edges.get(from) ?? new Map<string, string[]>();
          targets.set(to, [...(targets.get(to) ?? []), relative(SRC, path)]);
          edges.set(from, targets);
        }
      }
    }
  };
  visit(SRC);
  return edges;
}

describe('import direction (docs/ARCHITECTURE.md "Dependency direction")', () => {
  const documented = documentedEdges(readFileSync(join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8'));
  const actual = actualEdges();

  it('has no import between folders that the document does not allow', () => {
    const wrong: string[] = [];
    for (const [from, targets] of actual) {
      for (const [to, files] of targets) {
        if (!documented.get(from)?.has(to)) wrong.push(`${from} → ${to} (${[...new Set(files)].join(', ')})`);
      }
    }
    assert.deepEqual(wrong, [], 'imports against the documented direction; fix the import, or the document if the design changed');
  });

  it('lists no edge that the code no longer has', () => {
    const stale: string[] = [];
    for (const [from, targets] of documented) {
      for (const to of targets) if (!actual.get(from)?.has(to)) stale.push(`${from} → ${to}`);
    }
    assert.deepEqual(stale, [], 'edges in docs/ARCHITECTURE.md that no import uses any more');
  });

  it('has no cycle between folders', () => {
    const seen = new Set<string>();
    const path: string[] = [];
    const cycles: string[] = [];
    const visit = (stage: string): void => {
      if (path.includes(stage)) { cycles.push([...path.slice(path.indexOf(stage)), stage].join(' → ')); return; }
      if (seen.has(stage)) return;
      path.push(stage);
      for (const to of actual.get(stage)?.keys() ?? []) visit(to);
      path.pop();
      seen.add(stage);
    };
    for (const stage of actual.keys()) visit(stage);
    assert.deepEqual(cycles, []);
  });

  it('lets only cli/ import cli/, and only cli/start.ts import daemon.ts', () => {
    const offenders: string[] = [];
    for (const [from, targets] of actual) {
      if (from !== 'cli' && targets.has('cli')) offenders.push(`${from} → cli`);
      const daemon = targets.get('daemon');
      if (daemon && daemon.some((f) => f !== join('cli', 'start.ts'))) offenders.push(`${daemon.join(', ')} → daemon.ts`);
    }
    assert.deepEqual(offenders, []);
  });

  it('loads the PostgreSQL driver only for a PostgreSQL store: the CLI (sendmail, mailq, --version) does not', () => {
    const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
    const probe = `process.argv = ['node', 'smarthost', '--version'];
      import(${JSON.stringify(main)}).then(() => setTimeout(() => console.log(Object.keys(require.cache).filter((k) => k.includes('/node_modules/pg/')).length), 200));`;
    const out = execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(out.at(-1), '0', `pg modules loaded: ${out.join(' ')}`);
  });
});
