// Size limits the team keeps (issue 16): no source file over 400 lines, no function over 60,
// so that each file does one job and each function can be read at once. Data is exempt: a
// template string is one expression, however long.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAX_FILE = 400;
const MAX_FUNCTION = 60;
/** Functions that are data: `smarthost config default`'s commented TOML. */
const EXEMPT = new Set(['src/config/default-toml.ts:defaultToml']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

function longFunctions(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const name = relative(ROOT, file);
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const lines = src.getLineAndCharacterOfPosition(n.getEnd()).line - src.getLineAndCharacterOfPosition(n.getStart()).line + 1;
      const label = `${name}:${n.name?.getText(src) ?? `(anonymous at line ${src.getLineAndCharacterOfPosition(n.getStart()).line + 1})`}`;
      if (lines > MAX_FUNCTION && !EXEMPT.has(label)) found.push(`${label} (${lines} lines)`);
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return found;
}

describe('sizes (src/ and bench/)', () => {
  const files = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'bench'))];

  it('finds the sources', () => assert.ok(files.length > 100, `${files.length} files`));

  it(`has no file over ${MAX_FILE} lines`, () => {
    const long = files.map((f) => [relative(ROOT, f), readFileSync(f, 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > MAX_FILE);
    assert.deepEqual(long.map(([f, n]) => `${f} (${n} lines)`), []);
  });

  it(`has no function over ${MAX_FUNCTION} lines`, () => {
    assert.deepEqual(files.flatMap(longFunctions), []);
  });
});
