// `smarthost man [smarthost | smarthost.toml]`: the manual pages smarthost(8) and
// smarthost.toml(5) in roff, written from the same texts as --help (each verb's
// help, the option tables), the environment variables' table and the embedded
// default, so a page cannot say something the program does not do.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultToml } from '../config/default-toml.js';
import { VARIABLES } from '../config/environment.js';
import { CONFIG_VARIABLE, SEARCH_PATH } from '../config/load.js';
import { COMMON_OPTIONS, type OptionTable } from './args.js';
import { EXIT, UsageError } from './common.js';
import { newaliasesHelp, help as sendmailHelp } from './sendmail.js';
import { VERSION } from './start.js';

export const help = `usage: smarthost man [smarthost | smarthost.toml]
Prints a manual page in roff: smarthost(8), the commands (the default), or
smarthost.toml(5), the configuration file. To install them:
  smarthost man smarthost > /usr/local/share/man/man8/smarthost.8
  smarthost man smarthost.toml > /usr/local/share/man/man5/smarthost.toml.5
To read one without installing it: smarthost man | man -l -`;

export interface Sources {
  readonly help: string;
  readonly helps: Readonly<Record<string, string>>;
  readonly options: Readonly<Record<string, OptionTable>>;
}

/** Text for roff: backslashes escaped, other than ASCII as \[uXXXX], a line that starts with . or ' kept as text. */
export function roffEscape(text: string): string {
  return text.replace(/\\/g, '\\e')
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`) // groff reads Latin-1 otherwise
    .split('\n').map((l) => /^[.']/.test(l) ? `\\&${l}` : l).join('\n');
}

const verbatim = (text: string) => `.nf\n${roffEscape(text)}\n.fi`;
const para = (text: string) => `.PP\n${roffEscape(text)}`;

export function smarthostPage(s: Sources): string {
  const verbs = Object.keys(s.helps).filter((v) => v !== 'mailq');
  const commands = verbs.flatMap((v) => [`.SS ${v}`, verbatim(s.helps[v]!)]);
  return [
    `.TH SMARTHOST 8 "" "smarthost ${VERSION}" "System Manager's Manual"`,
    '.SH NAME',
    'smarthost \\- mail relay (smart host): accept mail safely, deliver it through your provider with TLS and SASL',
    '.SH SYNOPSIS',
    '.B smarthost',
    '[\\fB\\-c\\fR \\fIFILE\\fR] \\fIcommand\\fR [\\fIoptions\\fR]',
    '.br',
    '.B sendmail', '[\\fIoptions\\fR] [\\fIrecipient\\fR ...]',
    '.br',
    '.B mailq', '|', '.B newaliases',
    '.SH DESCRIPTION',
    para('smarthost accepts mail over SMTP (and from sendmail(8)-style programs), writes it to disk and fsyncs it before it answers 250, and delivers it through an upstream provider, per-domain routes, the recipients\' MX hosts or local Maildirs, with retries, bounces and Postfix-style logs. Linked as sendmail, mailq or newaliases it acts as that command.'),
    '.PP',
    verbatim(s.help),
    '.SH OPTIONS',
    ...Object.entries(COMMON_OPTIONS).flatMap(([name, o]) => ['.TP', `\\fB\\-${o.short}\\fR, \\fB\\-\\-${name}\\fR${typeof o.value === 'string' ? ` \\fI${o.value}\\fR` : ''}`, roffEscape(o.help ?? '')]),
    '.SH COMMANDS',
    ...commands,
    '.SS sendmail',
    verbatim(sendmailHelp),
    '.SS newaliases',
    verbatim(newaliasesHelp),
    '.SH ENVIRONMENT',
    '.TP', `.B ${CONFIG_VARIABLE}`, 'the configuration file, when no \\fB\\-c\\fR is given',
    ...VARIABLES.flatMap((v) => ['.TP', `.B ${v.name}`, roffEscape(v.help)]),
    para('See smarthost.toml(5).'),
    '.SH FILES',
    ...SEARCH_PATH.flatMap((p) => ['.TP', `.I ${p}`, 'searched for the configuration, in this order, after \\fB\\-c\\fR and $SMARTHOST_CONFIG']),
    '.SH EXIT STATUS',
    para('0 success; 1 errors found (check, probe); 64 usage; 65 bad data; 67 unknown user or message; 73 cannot create; 75 temporary failure (try again); 77 no permission; 78 configuration problem, or no configuration where one is needed.'),
    '.SH SEE ALSO',
    'smarthost.toml(5), sendmail(8), mailq(1), postqueue(1), postcat(1)',
    '',
  ].join('\n');
}

function exampleFile(): string | undefined {
  try {
    return fs.readFileSync(fileURLToPath(new URL('../../../contrib/smarthost.example.toml', import.meta.url)), 'utf8');
  } catch { return undefined; }
}

export function configPage(): string {
  const example = exampleFile();
  return [
    `.TH SMARTHOST.TOML 5 "" "smarthost ${VERSION}" "File Formats Manual"`,
    '.SH NAME',
    'smarthost.toml \\- configuration of the smarthost mail relay',
    '.SH DESCRIPTION',
    para(`One TOML file. Every command finds it the same way: -c FILE (before or after the command), else $${CONFIG_VARIABLE}, else ${SEARCH_PATH.join(', else ')}, else the embedded default shown below. Relative paths in the file (data_dir, certificate, password_file, ...) are relative to the file's folder; for the embedded default, to the current folder. Every key has a default; unknown keys and bad values are errors that name the file, the line and the fix (smarthost check). Sizes are written "25MB" (decimal) or "25MiB" (binary), durations "30s", "5m", "4h", "5d".`),
    '.SH ENVIRONMENT',
    para('These variables override the file (after it is read; they are checked like the file, a problem names the variable, and smarthost check lists them under "from the environment"). An empty value counts as unset. Paths are relative to the current folder.'),
    ...VARIABLES.flatMap((v) => ['.TP', `.B ${v.name}`, roffEscape(v.help)]),
    '.SH DEFAULTS',
    para('The embedded default, as smarthost config default prints it:'),
    verbatim(defaultToml()),
    ...(example ? ['.SH EXAMPLE', para('contrib/smarthost.example.toml:'), verbatim(example)] : []),
    '.SH SEE ALSO',
    'smarthost(8)',
    '',
  ].join('\n');
}

export function run(args: readonly string[], sources: Sources): number {
  const [page = 'smarthost', ...extra] = args;
  if (extra.length) throw new UsageError(help);
  if (page === 'smarthost' || page === '8') process.stdout.write(smarthostPage(sources));
  else if (page === 'smarthost.toml' || page === '5') process.stdout.write(configPage());
  else throw new UsageError(`no manual page "${page}": smarthost or smarthost.toml\n${help}`);
  return EXIT.OK;
}
