// Finds, reads and validates smarthost.toml: -c FILE, else ./smarthost.toml,
// else /etc/smarthost/smarthost.toml, else the embedded default.
import fs from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { Problems } from './reader.js';
import { indexLines } from './toml-lines.js';
import type { Config, Problem } from './types.js';
import { validate } from './validate.js';

export const EMBEDDED_DEFAULT = '(embedded default)';
export const SEARCH_PATH = ['./smarthost.toml', '/etc/smarthost/smarthost.toml'];

export class ConfigError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} in ${problems[0]?.file ?? 'config'}`);
    this.name = 'ConfigError';
  }
}

export function findConfigFile(explicit?: string): string | undefined {
  if (explicit) return path.resolve(explicit);
  return SEARCH_PATH.map((p) => path.resolve(p)).find((p) => fs.existsSync(p));
}

/** Validates TOML text; `file` names it in problems and anchors relative paths. */
export function parseConfig(text: string, file: string, baseDir = path.dirname(file)): { config?: Config; problems: readonly Problem[] } {
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split('\n')[0] ?? e.message;
      return { problems: [{ file, line: e.line, path: '', message: `not valid TOML: ${first}`, fix: 'check quotes, brackets and "key = value" syntax on that line' }] };
    }
    throw e;
  }
  return validate(raw, new Problems(file, indexLines(text)), { source: file, baseDir });
}

/** Loads the config or throws ConfigError with every problem. */
export function loadConfig(explicit?: string): Config {
  const file = findConfigFile(explicit);
  if (file === undefined) {
    const { config, problems } = parseConfig('', EMBEDDED_DEFAULT, process.cwd());
    if (!config) throw new ConfigError(problems);
    return config;
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError([{ file, path: '', message: `cannot read the config file: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, fix: err.code === 'ENOENT' ? 'check the path given with -c' : 'check its permissions' }]);
  }
  const { config, problems } = parseConfig(text, file);
  if (!config) throw new ConfigError(problems);
  return config;
}

/** "file:12: listen[0].tls = ... \n    fix: ..." lines, as `check` and `start` print them. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.message}\n    fix: ${p.fix}`).join('\n');
}
