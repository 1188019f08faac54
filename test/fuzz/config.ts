// The config reader on random TOML: the test configs, mutated (values swapped
// for random ones, lines dropped, doubled, cut, junk and typo'd keys added).
// Invariant: parseConfig() never throws; it returns a frozen Config, or
// problems that each name the file, a line inside it (when it names one), a
// message and a fix.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import { ROOT } from '../helpers/daemon.js';

const FILE = '/nonexistent/smarthost-fuzz/smarthost.toml';

function seeds(): string[] {
  const dir = path.join(ROOT, 'test/configs');
  const bad = path.join(dir, 'bad');
  return [path.join(dir, 'good.toml'), path.join(dir, 'spec-example.toml'), ...fs.readdirSync(bad).filter((f) => f.endsWith('.toml')).map((f) => path.join(bad, f))]
    .map((f) => fs.readFileSync(f, 'utf8'));
}

const SEEDS = seeds();
const KEYS = [...new Set(SEEDS.flatMap((t) => [...t.matchAll(/^\s*([a-z_]+)\s*=/gm)].map((m) => m[1]!)))];
const SECTIONS = ['[relay]', '[[listen]]', '[[route]]', '[local]', '[queue]', '[limits]', '[tls]', '[auth]', '[mx]', '[log]', '[rewrite]', '[metrics]', '[limits.x]', '[nope]', '[[relay]]', '[]'];

const tomlValue = fc.oneof(
  fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.constantFrom('"10MiB"', '"25MB"', '"0"', '"-1s"', '"5m"', '"1h"', '"3/5m"', '"0/0s"', '"127.0.0.1:0"', '"[::1]:0"', '"smtp://127.0.0.1:25"',
    '"smtps://x"', '"ftp://x"', '"none"', '"verify"', '"required"', '"999999999999999999999TB"', '"1e3"', '"../../etc/passwd"', '""'),
  fc.integer().map(String), fc.constantFrom('0', '-1', '1e400', 'nan', 'inf', '0x10', '1_000', '3.5', 'true', 'false', '1979-05-27T07:32:00Z'),
  fc.constantFrom('[]', '["127.0.0.0/8"]', '["a", 1]', '[[]]', '{}', '{ a = 1 }', '{ root = "x@example.com" }', '[1, 2, 3]'),
);

type Mutation = (lines: string[]) => void;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), tomlValue).map(([i, v]): Mutation => (ls) => { const k = i % ls.length; ls[k] = ls[k]!.replace(/=.*$/, `= ${v}`); }),
  fc.nat().map((i): Mutation => (ls) => { ls.splice(i % ls.length, 1); }),
  fc.nat().map((i): Mutation => (ls) => { const k = i % ls.length; ls.splice(k, 0, ls[k]!); }),
  fc.tuple(fc.nat(), fc.constantFrom(...KEYS), fc.constantFrom('', 's', '_', 'x'), tomlValue)
    .map(([i, k, typo, v]): Mutation => (ls) => { ls.splice(i % (ls.length + 1), 0, `${k}${typo} = ${v}`); }),
  fc.tuple(fc.nat(), fc.constantFrom(...SECTIONS)).map(([i, s]): Mutation => (ls) => { ls.splice(i % (ls.length + 1), 0, s); }),
  fc.tuple(fc.nat(), fc.nat(), fc.string({ maxLength: 8 })).map(([i, at, junk]): Mutation => (ls) => {
    const k = i % ls.length; const l = ls[k]!; const p = at % (l.length + 1); ls[k] = l.slice(0, p) + junk + l.slice(p);
  }),
  fc.nat().map((n): Mutation => (ls) => { ls.length = Math.max(1, n % (ls.length + 1)); }),
);

export const configInput = fc.tuple(fc.constantFrom(...SEEDS.keys()), fc.array(mutation, { minLength: 1, maxLength: 6 }))
  .map(([s, ms]) => { const ls = SEEDS[s]!.split('\n'); for (const m of ms) { m(ls); if (!ls.length) ls.push(''); } return ls.join('\n'); });

/** The invariant for one text; returns whether it was a valid config (for the counts). */
export function checkConfig(text: string): boolean {
  let r: ReturnType<typeof parseConfig>;
  try {
    r = parseConfig(text, FILE);
  } catch (e) {
    assert.fail(`parseConfig threw on:\n${text}\n---\n${(e as Error).stack}`);
  }
  const lines = text.split('\n').length;
  if (r.config) {
    assert.ok(Object.isFrozen(r.config), 'a Config is frozen');
    return true;
  }
  assert.ok(r.problems.length > 0, 'no Config and no problem');
  for (const p of r.problems) {
    assert.equal(p.file, FILE, `problem names the file: ${JSON.stringify(p)}`);
    assert.ok(p.message.trim().length > 0 && p.fix.trim().length > 0, `problem has a message and a fix: ${JSON.stringify(p)}`);
    if (p.line !== undefined) assert.ok(Number.isInteger(p.line) && p.line >= 1 && p.line <= lines, `problem line ${p.line} is in the file (1..${lines}): ${JSON.stringify(p)}`);
  }
  return false;
}
