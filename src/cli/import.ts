// `smarthost import postfix [DIR]` / `smarthost import sendmail [FILE.mc]`:
// reads an old set-up (src/import/), writes smarthost.toml and one 0600
// password file per credential, prints the report, then runs `check` on the
// result. The TOML is parsed back through config/load.ts before anything is
// written, so a file the daemon would refuse is never left behind.
import fs from 'node:fs';
import path from 'node:path';
import { formatProblems, parseConfig } from '../config/load.js';
import { ImportInputError, systemFacts, type ImportOptions } from '../import/context.js';
import { importPostfix, POSTFIX_DIR } from '../import/postfix-import.js';
import { formatReport } from '../import/import-report.js';
import { importSendmail, SENDMAIL_MC } from '../import/sendmail-import.js';
import { secretFiles, writeToml } from '../import/toml-writer.js';
import * as check from './check.js';
import { EXIT } from './common.js';

export const DEFAULT_DATA_DIR = '/var/lib/smarthost';

export const help = `usage: smarthost import postfix [DIR] [-o FILE] [--force] [--data-dir DIR]
       smarthost import sendmail [FILE.mc] [-o FILE] [--force] [--data-dir DIR]
Reads an existing Postfix set-up (DIR, default ${POSTFIX_DIR}: main.cf, master.cf
and the maps they name, from their text sources, never the .db files) or
Sendmail set-up (default ${SENDMAIL_MC}, with its authinfo map and a
stunnel.conf beside it), and writes an equivalent smarthost.toml plus one
password file per credential, mode 0600, beside it. Paths under /etc/postfix
(or /etc/mail) are read from DIR, so a copied set-up can be imported.
Prints every setting carried over (old -> new), every one not carried over
and why, then the result of \`smarthost check\` on the new file.
  -o, --output FILE  where to write (default ./smarthost.toml)
  --force            overwrite FILE and its password files if they exist
  --data-dir DIR     data_dir of the new set-up (default ${DEFAULT_DATA_DIR})
Exit 0 when written, even with settings not carried over; 66 when the set-up
cannot be read; 73 when a file exists and --force is not given.`;

interface Parsed { kind: 'postfix' | 'sendmail'; source: string; output: string; force: boolean; dataDir: string }

/** The verb's positionals and options (parsed by main.ts from verbs.ts) -> what to do, or a usage error. */
function parse(positionals: readonly string[], o: ImportArgs): Parsed | string {
  const [kind, source, ...extra] = positionals;
  if (kind !== 'postfix' && kind !== 'sendmail') return kind === undefined ? 'name what to import: postfix or sendmail' : `cannot import "${kind}": postfix or sendmail`;
  if (extra.length) return `unexpected argument "${extra[0]}"`;
  return {
    kind, source: path.resolve(source ?? (kind === 'postfix' ? POSTFIX_DIR : SENDMAIL_MC)),
    output: path.resolve(o.output ?? 'smarthost.toml'), force: o.force,
    dataDir: path.resolve(o.dataDir ?? DEFAULT_DATA_DIR),
  };
}

export interface ImportArgs { readonly output?: string; readonly force: boolean; readonly dataDir?: string }

/** Writes the password files (0600, also when overwriting one with a wider mode), then the TOML by rename. */
function writeAll(output: string, toml: string, secrets: Map<string, string>): string[] {
  const dir = path.dirname(output);
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, password] of secrets) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, password, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    written.push(file);
  }
  const tmp = `${output}.import-${process.pid}`;
  fs.writeFileSync(tmp, toml);
  fs.renameSync(tmp, output);
  return written;
}

export async function run(positionals: readonly string[], args: ImportArgs): Promise<number> {
  const a = parse(positionals, args);
  if (typeof a === 'string') { process.stderr.write(`smarthost import: ${a}\n${help}\n`); return EXIT.USAGE; }
  const opts: ImportOptions = { dataDir: a.dataDir, host: systemFacts() };
  let result: ReturnType<typeof importPostfix>;
  try {
    result = a.kind === 'postfix' ? importPostfix(a.source, opts) : importSendmail(a.source, opts);
  } catch (e) {
    if (!(e instanceof ImportInputError)) throw e;
    process.stderr.write(`smarthost import: ${e.message}\n`);
    return EXIT.NOINPUT;
  }
  const toml = writeToml(result.config, `smarthost.toml written by \`smarthost import ${a.kind} ${a.source}\`.\nEach section names the setting it came from; passwords are in the .secret files beside this file.`);
  const secrets = secretFiles(result.config);
  const { problems } = parseConfig(toml, a.output);
  if (problems.length) {
    // a bug in the mapping: never leave a file the daemon would refuse
    process.stderr.write(`smarthost import: internal error, the generated configuration is not valid:\n${formatProblems(problems)}\n--- generated text ---\n${toml}`);
    return EXIT.SOFTWARE;
  }
  const targets = [a.output, ...[...secrets.keys()].map((n) => path.join(path.dirname(a.output), n))];
  const existing = targets.filter((t) => fs.existsSync(t));
  if (existing.length && !a.force) {
    process.stderr.write(`smarthost import: ${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; nothing was written (use --force to overwrite, or -o to write elsewhere)\n`);
    return EXIT.CANTCREAT;
  }
  const written = writeAll(a.output, toml, secrets);
  process.stdout.write(formatReport(result.report, a.source, a.output));
  process.stdout.write(`\nwritten: ${a.output}${written.map((w) => `\nwritten: ${w} (mode 0600)`).join('')}\n`);
  process.stdout.write(`\nsmarthost check -c ${a.output}:\n`);
  await check.run({ config: a.output });
  return EXIT.OK;
}
