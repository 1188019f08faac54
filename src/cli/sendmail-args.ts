// The command line of `smarthost sendmail`, read the way cron, s-nail/mailx, PHP mail(),
// git send-email, mutt and logwatch write it. Hand-written because sendmail's syntax is getopt's
// (clustered flags `-ti`, glued values `-fbob@x`, `-oi`, `-bs`, `-q30m`), which node:util parseArgs
// does not speak. Pure: no I/O, no defaults from the environment; every mistake is a UsageError
// that names the option.
import { UsageError } from './common.js';

export type SendmailMode = 'deliver' | 'smtp' | 'list' | 'newaliases' | 'flush';
export type NotifyWhen = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

export interface SendmailOptions {
  /** -bm (default) | -bs | -bp | -bi or -I | -q */
  readonly mode: SendmailMode;
  /** -t: take recipients from To/Cc/Bcc as well. */
  readonly extractRecipients: boolean;
  /** -i, -oi: a line holding only "." does not end the message. */
  readonly ignoreDots: boolean;
  /** -f / -r, surrounding <> stripped; '' is the null sender (written "" or "<>"). */
  readonly from?: string;
  /** -F: the display name for a From: header we add. */
  readonly fullName?: string;
  /** Arguments split at commas, trimmed, <> stripped, empty ones dropped. */
  readonly recipients: readonly string[];
  /** -N, RFC 3461 NOTIFY: NEVER alone, or some of SUCCESS, FAILURE, DELAY. */
  readonly notify?: readonly NotifyWhen[];
  /** -R, RFC 3461 RET. */
  readonly ret?: 'FULL' | 'HDRS';
  /** -V, RFC 3461 ENVID. */
  readonly envid?: string;
  /** -B, RFC 6152 BODY. */
  readonly body?: '7BIT' | '8BITMIME';
  /** -C FILE: the smarthost.toml to use. */
  readonly config?: string;
  /** -v */
  readonly verbose: boolean;
  /** Options accepted for compatibility and ignored, as written: "-odi", "-L label", "-m". */
  readonly ignored: readonly string[];
}

// getopt's view of sendmail (sendmail 8 main.c, Postfix sendmail.c): letters that stand alone,
// and letters that take a value glued or as the next argument. -q takes an optional glued value.
const FLAGS = new Set(['t', 'i', 'v', 'I', 'm', 'n', 'U', 'G']);
const VALUES = new Set(['f', 'r', 'F', 'N', 'R', 'V', 'B', 'C', 'b', 'o', 'L', 'h', 'X', 'O', 'e']);
const IGNORED_FLAGS = new Set(['m', 'n', 'U', 'G']);
const IGNORED_VALUES = new Set(['L', 'h', 'X', 'O', 'e']);

const MODES: Readonly<Record<string, SendmailMode>> = { m: 'deliver', s: 'smtp', p: 'list', i: 'newaliases' };
const NOTIFY_WHEN: readonly NotifyWhen[] = ['SUCCESS', 'FAILURE', 'DELAY'];
const ENVID_MAX = 100; // RFC 3461 §4.4

/** The options as they are collected; frozen into SendmailOptions at the end. */
interface Draft {
  mode: SendmailMode;
  modeSetBy?: string; // the option that chose the mode, for the "conflicting" message
  extractRecipients: boolean;
  ignoreDots: boolean;
  verbose: boolean;
  recipients: string[];
  ignored: string[];
  from?: string;
  fullName?: string;
  notify?: NotifyWhen[];
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  body?: '7BIT' | '8BITMIME';
  config?: string;
}

/** argv: the arguments after `smarthost sendmail` (or after the program name when run as sendmail). */
export function parseSendmailArgs(argv: readonly string[]): SendmailOptions {
  const d: Draft = { mode: 'deliver', extractRecipients: false, ignoreDots: false, verbose: false, recipients: [], ignored: [] };
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg === '--') { i++; break; }
    // The first recipient ends the options, as getopt does with POSIXLY_CORRECT: an address
    // that happens to follow is never read as an option.
    if (!arg.startsWith('-') || arg === '-') break;
    i = parseCluster(argv, i, d);
  }
  for (const arg of argv.slice(i)) d.recipients.push(...splitRecipients(arg));
  return finish(d);
}

/** Reads one argument of clustered letters (`-ti`, `-tfbob@x`); returns the index of the next argument. */
function parseCluster(argv: readonly string[], i: number, d: Draft): number {
  const arg = argv[i]!;
  for (let k = 1; k < arg.length; k++) {
    const letter = arg[k]!;
    if (letter === 'q') { setMode(d, 'flush', arg); return i + 1; } // the rest is an interval (-q30m): run once now
    if (FLAGS.has(letter)) { applyFlag(d, letter); continue; }
    if (!VALUES.has(letter)) throw new UsageError(`unknown option -${letter}${letter === 'c' ? ' (the configuration file is -C FILE)' : ''}`);
    const glued = arg.slice(k + 1);
    if (glued !== '') { applyValue(d, letter, glued, `-${letter}${glued}`); return i + 1; }
    const next = argv[i + 1];
    if (next === undefined) throw new UsageError(`option -${letter} needs a value`);
    applyValue(d, letter, next, `-${letter} ${next}`);
    return i + 2;
  }
  return i + 1;
}

function applyFlag(d: Draft, letter: string): void {
  if (letter === 't') d.extractRecipients = true;
  else if (letter === 'i') d.ignoreDots = true;
  else if (letter === 'v') d.verbose = true;
  else if (letter === 'I') setMode(d, 'newaliases', '-I'); // sendmail's old spelling of -bi
  else if (IGNORED_FLAGS.has(letter)) d.ignored.push(`-${letter}`);
  else throw new Error(`flag -${letter} has no handler`);
}

/** written: the option as the user wrote it, for messages and for `ignored`. */
function applyValue(d: Draft, letter: string, value: string, written: string): void {
  switch (letter) {
    case 'f': case 'r': d.from = parseFrom(value); return;
    case 'F': d.fullName = value; return;
    case 'N': d.notify = parseNotify(value); return;
    case 'R': d.ret = oneOf(value, ['FULL', 'HDRS'] as const, '-R', 'full or hdrs'); return;
    case 'V': d.envid = parseEnvid(value); return;
    case 'B': d.body = oneOf(value, ['7BIT', '8BITMIME'] as const, '-B', '7bit or 8bitmime'); return;
    case 'C':
      if (value === '') throw new UsageError('option -C needs a file name');
      d.config = value;
      return;
    case 'b': setMode(d, parseMode(value), written); return;
    case 'o':
      if (value === 'i') d.ignoreDots = true; // -oi is the old spelling of -i; every other -oX is a sendmail.cf option
      else d.ignored.push(written);
      return;
  }
  if (IGNORED_VALUES.has(letter)) { d.ignored.push(written); return; }
  throw new Error(`option -${letter} has no handler`);
}

function setMode(d: Draft, mode: SendmailMode, written: string): void {
  if (d.modeSetBy !== undefined && d.mode !== mode) throw new UsageError(`conflicting options ${d.modeSetBy} and ${written}`);
  d.mode = mode;
  d.modeSetBy = written;
}

function parseMode(value: string): SendmailMode {
  const mode = MODES[value];
  if (mode !== undefined) return mode;
  if (value === 'd' || value === 'D') throw new UsageError(`-b${value} runs a daemon: use "smarthost start" instead`);
  throw new UsageError(`unsupported mode -b${value}: smarthost sendmail supports -bm, -bs, -bp and -bi`);
}

/** "" and "<>" are the null sender (RFC 5321 §4.5.5); "<bob@x>" is bob@x. */
function parseFrom(value: string): string {
  const v = value.trim();
  return v.startsWith('<') && v.endsWith('>') ? v.slice(1, -1).trim() : v;
}

function parseNotify(value: string): NotifyWhen[] {
  const words = value.split(',').map((w) => w.trim().toUpperCase());
  if (words.length === 1 && words[0] === 'NEVER') return ['NEVER'];
  // RFC 3461 §4.1: NEVER "MUST appear by itself".
  if (words.includes('NEVER')) throw new UsageError(`option -N: never cannot be combined with success, failure or delay (got "${value}")`);
  const out: NotifyWhen[] = [];
  for (const w of words) {
    const when = NOTIFY_WHEN.find((n) => n === w);
    if (when === undefined) throw new UsageError(`option -N takes never, or a comma-separated list of success, failure and delay (got "${value}")`);
    if (!out.includes(when)) out.push(when);
  }
  return out;
}

function parseEnvid(value: string): string {
  // RFC 3461 §4.4: printable US-ASCII, at most 100 characters (xtext-encoded on the wire).
  if (value.length === 0 || value.length > ENVID_MAX || !/^[\x20-\x7e]+$/.test(value)) {
    throw new UsageError(`option -V takes 1 to ${ENVID_MAX} printable ASCII characters`);
  }
  return value;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], option: string, words: string): T {
  const found = allowed.find((a) => a === value.toUpperCase());
  if (found === undefined) throw new UsageError(`option ${option} takes ${words} (got "${value}")`);
  return found;
}

/**
 * One recipient argument may hold several addresses ("a@b, c@d"), as mailx passes them. Commas
 * inside a quoted local part or a <...> do not split. "Bob <bob@x>" and "<bob@x>" give bob@x.
 */
function splitRecipients(arg: string): string[] {
  return splitOutsideQuotes(arg).map(addressOf).filter((a) => a !== '');
}

function splitOutsideQuotes(s: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let angle = false;
  let start = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s[k];
    if (c === '\\' && quoted) k++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === '<') angle = true;
    else if (!quoted && c === '>') angle = false;
    else if (!quoted && !angle && c === ',') { parts.push(s.slice(start, k)); start = k + 1; }
  }
  parts.push(s.slice(start));
  return parts;
}

function addressOf(part: string): string {
  const p = part.trim();
  const open = p.lastIndexOf('<');
  return p.endsWith('>') && open >= 0 ? p.slice(open + 1, -1).trim() : p;
}

function finish(d: Draft): SendmailOptions {
  // sendmail: "Recipient names must be specified". Checked here so that no message is read
  // from stdin only to be thrown away.
  if (d.mode === 'deliver' && !d.extractRecipients && d.recipients.length === 0) {
    throw new UsageError('no recipients: name them as arguments, or use -t to read them from the message');
  }
  return {
    mode: d.mode,
    extractRecipients: d.extractRecipients,
    ignoreDots: d.ignoreDots,
    recipients: d.recipients,
    verbose: d.verbose,
    ignored: d.ignored,
    ...(d.from !== undefined ? { from: d.from } : {}),
    ...(d.fullName !== undefined ? { fullName: d.fullName } : {}),
    ...(d.notify !== undefined ? { notify: d.notify } : {}),
    ...(d.ret !== undefined ? { ret: d.ret } : {}),
    ...(d.envid !== undefined ? { envid: d.envid } : {}),
    ...(d.body !== undefined ? { body: d.body } : {}),
    ...(d.config !== undefined ? { config: d.config } : {}),
  };
}
