#!/usr/bin/env node
// smarthost's command line: one file per verb under cli/; this file only
// parses the common options and dispatches.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, UsageError } from './common.js';
import * as check from './check.js';
import * as queue from './queue.js';
import * as start from './start.js';
import * as user from './user.js';

const HELP = `usage: smarthost <command> [-c FILE] [options]
commands:
  start              run the relay in the foreground
  check              validate the configuration and environment
  user               add/del/list/passwd the users of inbound AUTH
  queue              list/show/delete/hold/release queued mail (mailq)
Every command takes -c FILE; without it ./smarthost.toml, then
/etc/smarthost/smarthost.toml, then the embedded default is used.
'smarthost <command> --help' shows each command's options.`;

const HELPS: Record<string, string> = { start: start.help, check: check.help, user: user.help, queue: queue.help, mailq: queue.help };

export async function main(argv: string[]): Promise<number> {
  const invokedAs = path.basename(argv[1] ?? 'smarthost');
  const rest = argv.slice(2);
  const verb = invokedAs === 'mailq' ? 'mailq' : rest.shift();
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') { process.stdout.write(HELP + '\n'); return verb ? EXIT.OK : EXIT.USAGE; }
  if (!(verb in HELPS)) { process.stderr.write(`smarthost: unknown command "${verb}"\n${HELP}\n`); return EXIT.USAGE; }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest, allowPositionals: true, strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        'log-format': { type: 'string' },
        json: { type: 'boolean' },
        'password-stdin': { type: 'boolean' },
      },
    });
  } catch (e) {
    process.stderr.write(`smarthost ${verb}: ${(e as Error).message}\n${HELPS[verb]}\n`);
    return EXIT.USAGE;
  }
  const { values: v, positionals } = parsed;
  if (v.help) { process.stdout.write(HELPS[verb] + '\n'); return EXIT.OK; }
  const config = v.config !== undefined ? { config: v.config } : {};
  try {
    switch (verb) {
      case 'start':
        if (v['log-format'] !== undefined && !['postfix', 'json'].includes(v['log-format'])) throw new UsageError('--log-format must be postfix or json');
        return await start.run({ ...config, ...(v['log-format'] !== undefined ? { logFormat: v['log-format'] } : {}) });
      case 'check': return await check.run(config);
      case 'user': return await user.run({ ...config, passwordStdin: !!v['password-stdin'] }, positionals);
      case 'queue': return await queue.run({ ...config, json: !!v.json }, positionals);
      case 'mailq': return await queue.run({ ...config, json: !!v.json }, ['list']);
    }
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`smarthost ${verb}: ${e.message}\n`); return EXIT.USAGE; }
    throw e;
  }
  return EXIT.USAGE;
}

main(process.argv).then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`smarthost: internal error: ${(e as Error).stack ?? e}\n`);
  process.exitCode = EXIT.SOFTWARE;
});
