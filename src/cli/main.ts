#!/usr/bin/env -S node --single-threaded-gc
// --single-threaded-gc: V8's helper threads for marking and sweeping compete
// with the event loop and the delivery thread for 2 cores; without them the
// relay bench sent more messages a second in 7 of 8 A/B pairs (up to 29%), at
// less CPU each (1 KB and 100 KB, 10 and 50 sessions). package.json's start script and the
// bench pass the same option; it cannot be set once node runs.
// smarthost's command line: one file per verb under cli/; this file only
// parses the common options and dispatches.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, UsageError } from './common.js';
import * as auth from './auth.js';
import * as check from './check.js';
import * as oauth from './oauth.js';
import * as probe from './probe.js';
import * as queue from './queue.js';
import * as route from './route.js';
import * as sendmail from './sendmail.js';
import * as start from './start.js';
import * as user from './user.js';

const HELP = `usage: smarthost <command> [-c FILE] [options]
commands:
  start              run the relay in the foreground
  check              validate the configuration and environment
  probe              walk an upstream step by step (DNS, TLS, AUTH, MAIL FROM) and explain failures
  route test         show the route table and where mail --from A --to B would go
  user               add/del/list/passwd the users of inbound AUTH
  auth unblock ADDR  lift the failed-AUTH block of a client address (or all)
  oauth login ROUTE  sign in an upstream mailbox with OAuth2 (auth = "oauth2")
  queue              list/show/delete/hold/release queued mail (mailq)
  sendmail           sendmail-compatible submission from stdin (link as /usr/sbin/sendmail)
  newaliases         check the aliases file (smarthost reads it directly)
Every command takes -c FILE; without it ./smarthost.toml, then
/etc/smarthost/smarthost.toml, then the embedded default is used.
'smarthost <command> --help' shows each command's options.`;

const HELPS: Record<string, string> = { auth: auth.help, start: start.help, check: check.help, probe: probe.help, user: user.help, queue: queue.help, mailq: queue.help, route: route.help, oauth: oauth.help };

export async function main(argv: string[]): Promise<number> {
  const invokedAs = path.basename(argv[1] ?? 'smarthost');
  const rest = argv.slice(2);
  // linked as /usr/sbin/sendmail, mailq or newaliases, the name is the verb
  const verb = ['mailq', 'sendmail', 'newaliases'].includes(invokedAs) ? invokedAs : rest.shift();
  // sendmail has its own option syntax (-oi, -fuser@x, -bs): not parseArgs'
  if ((verb === 'sendmail' || verb === 'newaliases') && (rest[0] === '--help' || rest[0] === '-h')) { process.stdout.write(sendmail.help + '\n'); return EXIT.OK; }
  if (verb === 'sendmail') return sendmail.run(rest);
  if (verb === 'newaliases') return sendmail.run(['-bi', ...rest.map((a) => a === '-c' ? '-C' : a)]);
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
        url: { type: 'string' },
        from: { type: 'string' },
        'send-test': { type: 'string' },
        to: { type: 'string', multiple: true },
        timeout: { type: 'string' },
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
      case 'probe': return await probe.run({
        ...config, json: !!v.json,
        ...(v.url !== undefined ? { url: v.url } : {}), ...(v.from !== undefined ? { from: v.from } : {}),
        ...(v['send-test'] !== undefined ? { sendTest: v['send-test'] } : {}), ...(v.timeout !== undefined ? { timeout: v.timeout } : {}),
      }, positionals);
      case 'oauth': return await oauth.run(config, positionals);
      case 'auth': return await auth.run(config, positionals);
      case 'user': return await user.run({ ...config, passwordStdin: !!v['password-stdin'] }, positionals);
      case 'queue': return await queue.run({ ...config, json: !!v.json }, positionals);
      case 'mailq': return await queue.run({ ...config, json: !!v.json }, ['list']);
      case 'route': return route.run({ ...config, ...(v.from !== undefined ? { from: v.from } : {}), to: v.to ?? [] }, positionals);
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
