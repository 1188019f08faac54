// Finds, reads and validates smarthost.toml: -c FILE, else $SMARTHOST_CONFIG,
// else ./smarthost.toml, else /etc/smarthost/smarthost.toml, else the embedded
// default. Environment overrides (environment.ts) are applied over the file.
import fs from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { applyOverrides, attributeProblems, environmentOverrides, type Override } from './environment.js';
import { isTable, Problems } from './reader.js';
import { indexLines } from './toml-lines.js';
import type { Config, Problem } from './types.js';
import { validate } from './validate.js';

export const EMBEDDED_DEFAULT = '(embedded default)';
export const SEARCH_PATH = ['./smarthost.toml', '/etc/smarthost/smarthost.toml'];
/** The variable that names the config file when no -c is given. */
export const CONFIG_VARIABLE = 'SMARTHOST_CONFIG';

export class ConfigError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} in ${problems[0]?.file ?? 'config'}`);
    this.name = 'ConfigError';
  }
}

/** Which file a verb uses, how it was chosen, and (when searched) every path looked at. */
export interface ConfigSearch {
  readonly file?: string;
  readonly how: '-c' | typeof CONFIG_VARIABLE | 'search';
  readonly looked: readonly string[];
}

export function searchConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): ConfigSearch {
  if (explicit) return { file: path.resolve(explicit), how: '-c', looked: [] };
  const named = env[CONFIG_VARIABLE];
  if (named) return { file: path.resolve(named), how: CONFIG_VARIABLE, looked: [] };
  const looked = SEARCH_PATH.map((p) => path.resolve(p));
  const file = looked.find((p) => fs.existsSync(p));
  return { ...(file !== undefined ? { file } : {}), how: 'search', looked };
}

export function findConfigFile(explicit?: string): string | undefined {
  return searchConfig(explicit).file;
}

/**
 * Validates TOML text; `file` names it in problems and anchors relative paths. `overrides`
 * (environment variables, `start --listen`) are written over the file's values first.
 */
export function parseConfig(text: string, file: string, baseDir = path.dirname(file), overrides: readonly Override[] = []): { config?: Config; problems: readonly Problem[] } {
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
  if (!overrides.length) return validate(raw, new Problems(file, indexLines(text)), { source: file, baseDir });
  const { config, problems } = validate(applyOverrides(raw, overrides), new Problems(file, indexLines(text)), { source: file, baseDir });
  if (!config) return { problems: attributeProblems(problems, overrides, !isTable(raw.relay)) };
  return { config: Object.freeze({ ...config, overrides: Object.freeze(overrides.map((o) => Object.freeze({ ...o }))) }), problems };
}

/**
 * Loads the config or throws ConfigError with every problem. The environment's overrides
 * apply, then `extra` ones (`start --listen`).
 */
export function loadConfig(explicit?: string, extra: readonly Override[] = []): Config {
  const search = searchConfig(explicit);
  const file = search.file;
  const overrides = [...environmentOverrides(), ...extra];
  if (file === undefined) {
    const { config, problems } = parseConfig('', EMBEDDED_DEFAULT, process.cwd(), overrides);
    if (!config) throw new ConfigError(problems);
    return config;
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const named = search.how === '-c' ? 'the path given with -c' : `${CONFIG_VARIABLE} (it is set to ${process.env[CONFIG_VARIABLE]})`;
    throw new ConfigError([{ file, path: '', message: `cannot read the config file: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, fix: err.code === 'ENOENT' ? `check ${named}` : 'check its permissions' }]);
  }
  const { config, problems } = parseConfig(text, file, path.dirname(file), overrides);
  if (!config) throw new ConfigError(problems);
  return config;
}

/** "file:12: listen[0].tls = ... \n    fix: ..." lines, as `check` and `start` print them. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.message}\n    fix: ${p.fix}`).join('\n');
}
