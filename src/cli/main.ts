#!/usr/bin/env -S node --single-threaded-gc
// --single-threaded-gc: V8's helper threads for marking and sweeping compete
// with the event loop and the delivery thread for 2 cores (figures in
// bench/NOTES.md). package.json's start script and the bench pass the same
// option; it cannot be set once node runs.
// smarthost's command line: one file per verb under cli/; this file only
// parses the common options and dispatches.
import path from 'node:path';
import { parseVerbArgs, splitLeading, usageOf, type Leading, type Values } from './args.js';
import { EXIT, UsageError } from './common.js';
import * as auth from './auth.js';
import * as completion from './completion.js';
import * as configCmd from './config-cmd.js';
import * as dkim from './dkim.js';
import * as man from './man.js';
import { OPTIONS } from './verbs.js';
import * as check from './check.js';
import * as importCmd from './import.js';
import * as oauth from './oauth.js';
import * as probe from './probe.js';
import * as queue from './queue.js';
import * as route from './route.js';
import * as sendmail from './sendmail.js';
import * as start from './start.js';
import * as token from './token.js';
import * as suppression from './suppression.js';
import * as user from './user.js';

const HELP = `usage: smarthost <command> [-c FILE] [options]
commands:
  start              run the relay in the foreground
  check              validate the configuration and environment
  probe              walk an upstream step by step (DNS, TLS, AUTH, MAIL FROM) and explain failures
  route test         show the route table and where mail --from A --to B would go
  user               add/del/list/passwd the users of inbound AUTH
  token              add/del/list the bearer tokens of the HTTP API ([http])
  suppression        list/del recipients that bounce at once (refused as nonexistent)
  auth unblock ADDR  lift the failed-AUTH block of a client address, --user NAME of an account (or all)
  oauth login ROUTE  sign in an upstream mailbox with OAuth2 (auth = "oauth2")
  dkim keygen DOMAIN make a DKIM key and print the DNS record to publish
  queue              list/show/delete/hold/release queued mail (mailq)
  sendmail           sendmail-compatible submission from stdin (link as /usr/sbin/sendmail)
  newaliases         check the aliases file (smarthost reads it directly)
  import postfix|sendmail  write smarthost.toml from a Postfix or Sendmail set-up
  config default     print the embedded default configuration as TOML
  completion SHELL   print a bash or zsh completion script
  man [PAGE]         print the manual page smarthost(8) or smarthost.toml(5) (roff)
Every command takes -c FILE, before or after the command; without it
$SMARTHOST_CONFIG, ./smarthost.toml, /etc/smarthost/smarthost.toml, then the
embedded default is used (sendmail, mailq, queue and user refuse the embedded
default where no daemon keeps a queue). --version prints the version.
'smarthost <command> --help' shows each command's options.`;

const HELPS: Record<string, string> = { auth: auth.help, start: start.help, check: check.help, probe: probe.help, user: user.help, queue: queue.help, mailq: queue.help, route: route.help, oauth: oauth.help, import: importCmd.help, token: token.help, suppression: suppression.help };
Object.assign(HELPS, { completion: completion.help, man: man.help, config: configCmd.help, dkim: dkim.help });

export async function main(argv: string[]): Promise<number> {
  const invokedAs = path.basename(argv[1] ?? 'smarthost');
  // linked as /usr/sbin/sendmail, mailq or newaliases, the name is the verb
  const linked = ['mailq', 'sendmail', 'newaliases'].includes(invokedAs);
  const leading = readLeading(argv, invokedAs, linked);
  if (typeof leading === 'number') return leading;
  const { verb, rest } = leading;
  if (leading.version) { process.stdout.write(`smarthost ${start.VERSION}\n`); return EXIT.OK; }
  // sendmail has its own option syntax (-oi, -fuser@x, -bs): not parseArgs'
  if (verb === 'sendmail' || verb === 'newaliases') return runSendmail(verb, leading, linked);
  const helped = generalHelp(verb, rest, leading.help);
  if (helped !== undefined || verb === undefined) return helped ?? EXIT.USAGE;
  return runVerb(verb, rest, leading.config);
}

/** The options before the verb, and the verb (a linked mailq, sendmail or newaliases is its own verb); a usage error's exit code. */
function readLeading(argv: string[], invokedAs: string, linked: boolean): Leading | number {
  try {
    // a linked mailq takes sendmail's -C FILE (Postfix: mailq is sendmail -bp)
    const own = invokedAs === 'mailq' ? argv.slice(2).map((a) => (a === '-C' ? '-c' : a)) : argv.slice(2);
    return linked ? { version: false, help: false, verb: invokedAs, rest: own } : splitLeading(argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`smarthost: ${e.message}\n${usageOf(HELP)}\n`);
    return EXIT.USAGE;
  }
}

function runSendmail(verb: 'sendmail' | 'newaliases', leading: Leading, linked: boolean): Promise<number> | number {
  const { rest, config: given } = leading;
  if (leading.help || rest[0] === '--help' || rest[0] === '-h') {
    process.stdout.write((verb === 'newaliases' ? sendmail.newaliasesHelp : sendmail.help) + '\n');
    return EXIT.OK;
  }
  if (rest[0] === '--version') { process.stdout.write(`smarthost ${start.VERSION}\n`); return EXIT.OK; }
  // `smarthost sendmail -c FILE`: smarthost's spelling of sendmail's -C (not when linked as sendmail, where -c is sendmail's)
  const args = [...(given !== undefined ? ['-C', given] : []), ...(linked && verb === 'sendmail' ? rest : rest.map((a) => a === '-c' ? '-C' : a))];
  return sendmail.run(verb === 'newaliases' ? ['-bi', ...args] : args, linked ? verb : `smarthost ${verb}`);
}

/** `smarthost`, `smarthost help [VERB]`, `smarthost -h VERB` and an unknown verb: the exit code once the help is out; undefined: run the verb. */
function generalHelp(verb: string | undefined, rest: readonly string[], help: boolean): number | undefined {
  // `smarthost -h queue` and `smarthost help queue` show the verb's help
  const helpFor = verb === 'help' ? rest[0] : help ? verb : undefined;
  if (helpFor !== undefined && helpFor in HELPS) { process.stdout.write(HELPS[helpFor] + '\n'); return EXIT.OK; }
  if (!verb || verb === 'help' || help) { process.stdout.write(HELP + '\n'); return verb || help ? EXIT.OK : EXIT.USAGE; }
  if (!(verb in HELPS)) { process.stderr.write(`smarthost: unknown command "${verb}"\n${HELP}\n`); return EXIT.USAGE; }
  return undefined;
}

/** A verb's own options, then the verb; a UsageError from either is exit 64 with its message. */
async function runVerb(verb: string, rest: string[], given: string | undefined): Promise<number> {
  let parsed;
  try {
    parsed = parseVerbArgs(verb, rest, OPTIONS[verb] ?? {}, HELPS[verb]!);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`smarthost ${verb}: ${e.message}\n`);
    return EXIT.USAGE;
  }
  const { values: v, positionals } = parsed;
  if (v.help) { process.stdout.write(HELPS[verb] + '\n'); return EXIT.OK; }
  if (v.version) { process.stdout.write(`smarthost ${start.VERSION}\n`); return EXIT.OK; }
  try {
    return await dispatch(verb, v, positionals, given);
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`smarthost ${verb}: ${e.message}\n`); return EXIT.USAGE; }
    throw e;
  }
}

/** The verb's module with its options as the module's own arguments. */
async function dispatch(verb: string, v: Values, positionals: string[], given: string | undefined): Promise<number> {
  const str = (k: string) => { const x = v[k]; return typeof x === 'string' ? x : undefined; };
  const strs = (k: string) => { const x = v[k]; return Array.isArray(x) ? x : []; };
  // -c after the verb wins over -c before it
  const file = str('config') ?? given;
  const config = file !== undefined ? { config: file } : {};
  switch (verb) {
    case 'start': {
      const format = str('log-format');
      if (format !== undefined && !['postfix', 'json'].includes(format)) throw new UsageError('--log-format must be postfix or json');
      return await start.run({ ...config, ...(format !== undefined ? { logFormat: format } : {}), listen: strs('listen') });
    }
    case 'check': return await check.run(config);
    case 'probe': return await probe.run({
      ...config, json: !!v.json,
      ...(str('url') !== undefined ? { url: str('url')! } : {}), ...(str('from') !== undefined ? { from: str('from')! } : {}),
      ...(str('send-test') !== undefined ? { sendTest: str('send-test')! } : {}), ...(str('timeout') !== undefined ? { timeout: str('timeout')! } : {}),
    }, positionals);
    case 'oauth': return await oauth.run(config, positionals);
    case 'auth': return await auth.run({ ...config, users: strs('user') }, positionals);
    case 'user': return await user.run({ ...config, passwordStdin: !!v['password-stdin'] }, positionals);
    case 'token': return await token.run({ ...config, readOnly: !!v['read-only'] }, positionals);
    case 'suppression': return await suppression.run({ ...config, json: !!v.json }, positionals);
    case 'queue': case 'mailq': {
      const show = { headers: !!v.headers, body: !!v.body, raw: !!v.raw };
      const filter = { from: strs('from'), to: strs('to'), state: strs('state'), ...(str('older-than') !== undefined ? { olderThan: str('older-than')! } : {}) };
      return await queue.run({ ...config, json: !!v.json, filter, show }, verb === 'mailq' ? ['list', ...positionals] : positionals);
    }
    case 'route': return route.run({ ...config, ...(str('from') !== undefined ? { from: str('from')! } : {}), to: strs('to') }, positionals);
    case 'completion': return completion.run(positionals, { helps: HELPS, options: OPTIONS });
    case 'man': return man.run(positionals, { help: HELP, helps: HELPS, options: OPTIONS });
    case 'config': return configCmd.run(positionals);
    case 'dkim': return dkim.run({
      ...config, force: !!v.force, ...(str('selector') !== undefined ? { selector: str('selector')! } : {}),
      ...(str('type') !== undefined ? { type: str('type')! } : {}), ...(str('output') !== undefined ? { output: str('output')! } : {}),
    }, positionals);
    case 'import': return await importCmd.run(positionals, {
      ...(str('output') !== undefined ? { output: str('output')! } : {}), force: !!v.force,
      ...(str('data-dir') !== undefined ? { dataDir: str('data-dir')! } : {}),
    });
  }
  return EXIT.USAGE;
}

main(process.argv).then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`smarthost: internal error: ${(e as Error).stack ?? e}\n`);
  process.exitCode = EXIT.SOFTWARE;
});
