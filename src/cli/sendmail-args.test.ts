import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from './common.js';
import { parseSendmailArgs, type SendmailOptions } from './sendmail-args.js';

const DEFAULTS: SendmailOptions = { mode: 'deliver', extractRecipients: false, ignoreDots: false, recipients: [], verbose: false, ignored: [] };

// The command lines real programs write, and what each must mean. Every case is compared with
// the whole result, so an option that sets a field it should not also fails.
const CASES: readonly { name: string; argv: string[]; want: Partial<SendmailOptions> }[] = [
  { name: 'cron (cronie)', argv: ['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root'],
    want: { fullName: 'CronDaemon', ignoreDots: true, body: '8BITMIME', ignored: ['-oem'], recipients: ['root'] } },
  { name: 'PHP mail() default', argv: ['-t', '-i'], want: { extractRecipients: true, ignoreDots: true } },
  { name: 'PHP mail() with a sender', argv: ['-t', '-i', '-f', 'www@example.com'],
    want: { extractRecipients: true, ignoreDots: true, from: 'www@example.com' } },
  { name: 'PHP sendmail_path "-ti" clustered', argv: ['-ti', '-fwww@example.com'],
    want: { extractRecipients: true, ignoreDots: true, from: 'www@example.com' } },
  { name: 's-nail', argv: ['-i', '--', 'bob@example.com'], want: { ignoreDots: true, recipients: ['bob@example.com'] } },
  { name: 'git send-email', argv: ['-i', 'bob@example.com', 'alice@example.com'],
    want: { ignoreDots: true, recipients: ['bob@example.com', 'alice@example.com'] } },
  { name: 'logwatch', argv: ['-t'], want: { extractRecipients: true } },
  { name: 'mutt', argv: ['-oem', '-oi', '--', 'a@b'], want: { ignored: ['-oem'], ignoreDots: true, recipients: ['a@b'] } },
  { name: '-bs', argv: ['-bs'], want: { mode: 'smtp' } },
  { name: '-bp', argv: ['-bp'], want: { mode: 'list' } },
  { name: '-bi', argv: ['-bi'], want: { mode: 'newaliases' } },
  { name: '-I is -bi', argv: ['-I'], want: { mode: 'newaliases' } },
  { name: '-bm explicitly', argv: ['-bm', 'a@b'], want: { recipients: ['a@b'] } },
  { name: '-b s, value as next argument', argv: ['-b', 's'], want: { mode: 'smtp' } },
  { name: '-q', argv: ['-q'], want: { mode: 'flush' } },
  { name: '-q30m runs the queue once', argv: ['-q30m'], want: { mode: 'flush' } },
  { name: '-q does not take the next argument', argv: ['-q', '-v'], want: { mode: 'flush', verbose: true } },
  { name: 'same mode twice is fine', argv: ['-bs', '-bs'], want: { mode: 'smtp' } },
  { name: '-o i as two arguments', argv: ['-o', 'i', 'a@b'], want: { ignoreDots: true, recipients: ['a@b'] } },
  { name: 'sendmail.cf options ignored as written', argv: ['-odi', '-oep', '-oeq', '-odb', '-odq', '-om', '-oQ/var/spool', '-o', 'em', 'a@b'],
    want: { ignored: ['-odi', '-oep', '-oeq', '-odb', '-odq', '-om', '-oQ/var/spool', '-o em'], recipients: ['a@b'] } },
  { name: 'ignored flags and value options', argv: ['-m', '-n', '-U', '-G', '-em', '-L', 'label', '-h3', '-X', '/tmp/log', '-OTimeout=5', 'a@b'],
    want: { ignored: ['-m', '-n', '-U', '-G', '-em', '-L label', '-h3', '-X /tmp/log', '-OTimeout=5'], recipients: ['a@b'] } },
  { name: 'clustered ignored flags', argv: ['-Um', 'a@b'], want: { ignored: ['-U', '-m'], recipients: ['a@b'] } },
  { name: '-f glued', argv: ['-fbob@x', 'a@b'], want: { from: 'bob@x', recipients: ['a@b'] } },
  { name: '-r is -f', argv: ['-r', 'bob@x', 'a@b'], want: { from: 'bob@x', recipients: ['a@b'] } },
  { name: '-f <bob@x> strips <>', argv: ['-f', '<bob@x>', 'a@b'], want: { from: 'bob@x', recipients: ['a@b'] } },
  { name: '-f "" is the null sender', argv: ['-f', '', 'a@b'], want: { from: '', recipients: ['a@b'] } },
  { name: '-f<> is the null sender', argv: ['-f<>', 'a@b'], want: { from: '', recipients: ['a@b'] } },
  { name: 'the last -f wins (Postfix)', argv: ['-f', 'one@x', '-f', 'two@x', 'a@b'], want: { from: 'two@x', recipients: ['a@b'] } },
  { name: '-F as next argument keeps spaces', argv: ['-F', 'Jane Doe', 'a@b'], want: { fullName: 'Jane Doe', recipients: ['a@b'] } },
  { name: 'DSN options', argv: ['-N', 'success,Failure,DELAY', '-Rhdrs', '-V', 'env-1', '-B', '7bit', 'a@b'],
    want: { notify: ['SUCCESS', 'FAILURE', 'DELAY'], ret: 'HDRS', envid: 'env-1', body: '7BIT', recipients: ['a@b'] } },
  { name: '-N never', argv: ['-Nnever', '-R', 'FULL', 'a@b'], want: { notify: ['NEVER'], ret: 'FULL', recipients: ['a@b'] } },
  { name: '-N duplicates collapse', argv: ['-N', 'failure, failure', 'a@b'], want: { notify: ['FAILURE'], recipients: ['a@b'] } },
  { name: '-C and -v', argv: ['-C', '/etc/smarthost/other.toml', '-v', 'a@b'],
    want: { config: '/etc/smarthost/other.toml', verbose: true, recipients: ['a@b'] } },
  { name: 'comma-separated recipients', argv: ['a@b, c@d', ' ,e@f,'], want: { recipients: ['a@b', 'c@d', 'e@f'] } },
  { name: 'recipients lose their <>', argv: ['<a@b>', 'Bob <bob@x>, <c@d>'], want: { recipients: ['a@b', 'bob@x', 'c@d'] } },
  { name: 'a comma inside quotes does not split', argv: ['"Doe, J" <j@x>, "a,b"@c'], want: { recipients: ['j@x', '"a,b"@c'] } },
  { name: 'the first recipient ends the options', argv: ['a@b', '-f', 'x@y'], want: { recipients: ['a@b', '-f', 'x@y'] } },
  { name: 'after -- a dash is a recipient', argv: ['--', '-weird@x'], want: { recipients: ['-weird@x'] } },
  { name: 'a value may start with a dash (getopt)', argv: ['-F', '-bob-', 'a@b'], want: { fullName: '-bob-', recipients: ['a@b'] } },
];

describe('parseSendmailArgs: real command lines', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.argv.join(' ')}`, () => {
      assert.deepEqual(parseSendmailArgs(c.argv), { ...DEFAULTS, ...c.want });
    });
  }
});

const ERRORS: readonly { argv: string[]; message: RegExp }[] = [
  { argv: ['-x', 'a@b'], message: /^unknown option -x$/ },
  { argv: ['-tx'], message: /^unknown option -x$/ },
  { argv: ['-c', 'smarthost.toml', 'a@b'], message: /^unknown option -c \(the configuration file is -C FILE\)$/ },
  { argv: ['-f'], message: /^option -f needs a value$/ },
  { argv: ['-t', '-F'], message: /^option -F needs a value$/ },
  { argv: ['-b'], message: /^option -b needs a value$/ },
  { argv: ['-o'], message: /^option -o needs a value$/ },
  { argv: ['-bd'], message: /-bd runs a daemon: use "smarthost start"/ },
  { argv: ['-bD'], message: /-bD runs a daemon: use "smarthost start"/ },
  { argv: ['-bv', 'a@b'], message: /^unsupported mode -bv/ },
  { argv: ['-bt'], message: /^unsupported mode -bt/ },
  { argv: ['-bsx'], message: /^unsupported mode -bsx/ },
  { argv: ['-bs', '-bp'], message: /^conflicting options -bs and -bp$/ },
  { argv: ['-bp', '-q'], message: /^conflicting options -bp and -q$/ },
  { argv: ['-N', 'sometimes', 'a@b'], message: /-N takes never, or a comma-separated list of success, failure and delay/ },
  { argv: ['-N', 'never,success', 'a@b'], message: /-N: never cannot be combined/ },
  { argv: ['-N', 'success,', 'a@b'], message: /-N takes never/ },
  { argv: ['-R', 'body', 'a@b'], message: /-R takes full or hdrs \(got "body"\)/ },
  { argv: ['-B', 'binarymime', 'a@b'], message: /-B takes 7bit or 8bitmime/ },
  { argv: ['-V', 'x'.repeat(101), 'a@b'], message: /-V takes 1 to 100 printable ASCII/ },
  { argv: ['-V', 'caf\u00e9', 'a@b'], message: /-V takes 1 to 100 printable ASCII/ },
  { argv: ['-C', '', 'a@b'], message: /-C needs a file name/ },
  { argv: [], message: /^no recipients/ },
  { argv: ['-i', '-f', 'bob@x'], message: /^no recipients/ },
  { argv: ['-i', '--', ' , '], message: /^no recipients/ },
];

describe('parseSendmailArgs: usage errors', () => {
  for (const e of ERRORS) {
    it(`rejects ${JSON.stringify(e.argv)}`, () => {
      assert.throws(() => parseSendmailArgs(e.argv), (err: unknown) => {
        assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
        assert.match(err.message, e.message);
        return true;
      });
    });
  }
});
