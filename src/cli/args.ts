// smarthost's own command line (sendmail's getopt syntax is sendmail-args.ts):
// the options that may stand before the verb (-c FILE, --version, --help), one
// option table per verb, and mistakes told in plain words with the verb's usage
// lines, never node:util's raw text.
import { editDistance } from '../config/reader.js';
import { parseArgs } from 'node:util';
import { UsageError } from './common.js';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's name in help, completion and man pages ("FILE"); a list of words completes them. */
  readonly value?: string | readonly string[];
  readonly help?: string;
}
export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** Every verb takes these. */
export const COMMON_OPTIONS: OptionTable = {
  config: { type: 'string', short: 'c', value: 'FILE', help: 'the smarthost.toml to use' },
  help: { type: 'boolean', short: 'h', help: 'show the command\'s help' },
  version: { type: 'boolean', short: 'V', help: 'print the version' },
};

export interface Leading {
  readonly config?: string;
  readonly version: boolean;
  readonly help: boolean;
  readonly verb?: string;
  readonly rest: string[];
}

/** The options before the verb: `smarthost -c FILE check`, `smarthost --version`. */
export function splitLeading(argv: readonly string[]): Leading {
  let config: string | undefined;
  let version = false;
  let help = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') break;
    if (a === '--') { i++; break; }
    if (a === '-c' || a === '--config') {
      const v = argv[i + 1];
      if (v === undefined || v === '') throw new UsageError(`option ${a} needs a value: ${a} FILE`);
      config = v;
      i++;
    } else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else if (/^-c./.test(a)) config = a.slice(2);
    else if (a === '-V' || a === '--version') version = true;
    else if (a === '-h' || a === '--help') help = true;
    else throw new UsageError(`unknown option ${a} (before the command only -c FILE, --version and --help are allowed)`);
  }
  const verb = argv[i];
  return { ...(config !== undefined ? { config } : {}), version, help, ...(verb !== undefined ? { verb } : {}), rest: argv.slice(i + 1) };
}

export type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * The verb's options and positionals. Options may come anywhere (also after positionals) and
 * `--` ends them. Unknown options, a missing value or a value given to a switch are UsageErrors
 * worded for a person, with the verb's usage lines.
 */
export function parseVerbArgs(verb: string, args: readonly string[], options: OptionTable, usage: string): { values: Values; positionals: string[] } {
  const table = { ...COMMON_OPTIONS, ...options };
  const config = Object.fromEntries(Object.entries(table).map(([name, o]) => [name, {
    type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}),
  }]));
  // strict: false, then our own checks on the tokens: parseArgs' strict errors are written for
  // programmers ("Unknown option '--frm'. To specify a positional argument starting with a '-', …")
  const { values, positionals, tokens } = parseArgs({ args: [...args], options: config, strict: false, allowPositionals: true, tokens: true });
  const usageLines = `${usageOf(usage)}\n(smarthost ${verb} --help for more)`;
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const spec = table[t.name];
    if (!spec) throw new UsageError(`unknown option ${t.rawName}${suggest(t.rawName, table)}\n${usageLines}`);
    if (spec.type === 'string' && t.value === undefined) {
      throw new UsageError(`option ${t.rawName} needs a value: ${t.rawName} ${typeof spec.value === 'string' ? spec.value : spec.value?.join('|') ?? 'VALUE'}\n${usageLines}`);
    }
    if (spec.type === 'boolean' && t.inlineValue) throw new UsageError(`option ${t.rawName} takes no value (remove "=${t.value ?? ''}")\n${usageLines}`);
  }
  return { values: values as unknown as Values, positionals };
}

/** The "usage:" line of a help text and the lines indented under it. */
export function usageOf(help: string): string {
  const lines = help.split('\n');
  const end = lines.findIndex((l, i) => i > 0 && !/^\s+\S/.test(l));
  return lines.slice(0, end < 0 ? lines.length : end).join('\n');
}

function suggest(raw: string, table: OptionTable): string {
  const name = raw.replace(/^-+/, '').split('=')[0]!;
  const best = Object.keys(table).map((k) => [k, editDistance(k, name)] as const).sort((a, b) => a[1] - b[1])[0];
  return best && best[1] <= 2 && name.length > 1 ? ` (did you mean --${best[0]}?)` : '';
}

