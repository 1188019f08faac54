// Issue 20, problem 6: the operator habits a Postfix administrator brings.
// --version, -c before the verb, newaliases --help, clean messages for unknown
// options, queue filters, queue show --headers/--body/--raw (postcat -q),
// flush saying what it skipped and why, user add without a terminal,
// start --listen, shell completion and man pages.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLI, NO_DNS, ROOT, launch, removeDir, spoolMessages, tempDir } from '../helpers/daemon.js';
import { cli } from '../helpers/cli-env.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });
const fresh = () => { const d = tempDir('smarthost-habits-'); cleanups.push(() => removeDir(d)); return d; };
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function setup(extra = ''): { dir: string; file: string; run: (args: string[], input?: string) => ReturnType<typeof cli> } {
  const dir = fresh();
  const file = path.join(dir, 'smarthost.toml');
  fs.writeFileSync(file, `hostname = "relay.test"\ndata_dir = "data"\n[[listen]]\naddress = "127.0.0.1:0"\n${extra}\n${NO_DNS}`);
  return { dir, file, run: (args, input) => cli(['-c', file, ...args], { cwd: dir, ...(input !== undefined ? { input } : {}) }) };
}

describe('smarthost command-line habits', () => {
  it('--version and -V print the version, before a verb or after it', () => {
    const dir = fresh();
    for (const args of [['--version'], ['-V'], ['queue', '--version']]) {
      const r = cli(args, { cwd: dir });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, `smarthost ${VERSION}\n`);
    }
  });

  it('-c FILE before the verb, for every verb', () => {
    const { dir, file } = setup();
    const r = cli(['-c', file, 'check'], { cwd: fresh() });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`configuration ${file}: OK`));
    assert.equal(cli(['-c', file, 'sendmail', 'x@example.net'], { cwd: fresh(), input: 'Subject: s\n\nx\n' }).status, 0);
    assert.equal(spoolMessages(path.join(dir, 'data')).length, 1, 'smarthost -c FILE sendmail uses FILE');
  });

  it('newaliases --help shows newaliases\' own help, as a verb and when linked', () => {
    const dir = fresh();
    fs.symlinkSync(CLI, path.join(dir, 'newaliases'));
    for (const r of [cli(['newaliases', '--help'], { cwd: dir }), cli(['--help'], { cwd: dir, script: path.join(dir, 'newaliases') })]) {
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^usage: newaliases \[-C FILE\]\n/);
      assert.doesNotMatch(r.stdout, /sendmail \[-t\]/);
    }
  });

  it('a rejected option gets a plain message with the verb\'s usage, never Node\'s text', () => {
    const { run } = setup();
    const r = run(['queue', '--frm', 'x']);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /^smarthost queue: unknown option --frm \(did you mean --from\?\)\nusage: smarthost queue \[list\]/);
    assert.doesNotMatch(r.stderr, /positional|TypeError|ERR_PARSE_ARGS/);
    assert.equal((r.stderr.match(/'/g) ?? []).length % 2, 0, 'quotes come in pairs');
    const check = run(['check', '--json']);
    assert.equal(check.status, 64, 'check has no --json: before, it was silently accepted');
    assert.match(check.stderr, /^smarthost check: unknown option --json\nusage: smarthost check/);
    assert.match(run(['start', '--log-format']).stderr, /^smarthost start: option --log-format needs a value/);
    assert.match(cli(['--bogus', 'check'], { cwd: fresh() }).stderr, /^smarthost: unknown option --bogus \(before the command only -c FILE, --version and --help are allowed\)\nusage: smarthost <command>/);
  });

  it('queue filters --from, --to, --state, --older-than, in the list, in --json and to select messages', () => {
    const { run } = setup('[local]\ndomains = ["relay.test"]\nusers = ["root"]\n');
    const send = (from: string, to: string) => {
      const r = run(['sendmail', '-f', from, to], `Subject: from ${from}\n\nx\n`);
      assert.equal(r.status, 0, r.stderr);
    };
    send('alice@a.test', 'x@b.test');
    send('bob@c.test', 'y@d.test');
    send('<>', 'z@b.test');
    const all = JSON.parse(run(['queue', '--json']).stdout) as Array<{ id: string; from: string; recipients: Array<{ address: string }> }>;
    assert.equal(all.length, 3);
    const idOf = (from: string) => all.find((m) => m.from === from)!.id;
    const ids = (args: string[]) => {
      const r = run(['queue', '--json', ...args]);
      assert.equal(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout) as Array<{ id: string }>).map((m) => m.id).sort();
    };
    assert.deepEqual(ids(['--from', 'alice@a.test']), [idOf('alice@a.test')]);
    assert.deepEqual(ids(['--from', '@C.test']), [idOf('bob@c.test')]);
    assert.deepEqual(ids(['--from', '<>']), [idOf('')]);
    assert.deepEqual(ids(['--to', '@b.test']), [idOf('alice@a.test'), idOf('')].sort());
    assert.deepEqual(ids(['--to', '@b.test', '--from', 'alice']), [idOf('alice@a.test')]);
    assert.deepEqual(ids(['--older-than', '1h']), []);
    assert.equal(ids(['--older-than', '0']).length, 3);
    assert.deepEqual(ids(['--state', 'held']), []);
    assert.equal(run(['queue', 'hold', idOf('bob@c.test')]).status, 0);
    assert.deepEqual(ids(['--state', 'held']), [idOf('bob@c.test')]);
    assert.deepEqual(ids(['--state', 'queued,deferred']), [idOf('alice@a.test'), idOf('')].sort());
    const list = run(['queue', '--to', 'y@d.test']).stdout;
    assert.match(list, new RegExp(`^${idOf('bob@c.test')}!`, 'm'));
    assert.doesNotMatch(list, /alice/);
    assert.match(run(['mailq', '--from', 'alice@a.test']).stdout, /-- 1 Kbytes in 1 Request\./);
    assert.equal(run(['queue', '--older-than', '1h']).stdout, 'Mail queue: no message matches the filters\n', 'not "Mail queue is empty"');
    const bad = run(['queue', '--state', 'stuck']);
    assert.equal(bad.status, 64);
    assert.match(bad.stderr, /--state stuck: not a state; use queued, deferred, held/);
    // filters select the messages of delete (with the daemon stopped, on the files)
    const del = run(['queue', 'delete', '--from', '@b.test', '--to', '@b.test']);
    assert.equal(del.stdout, 'smarthost: no message matches\n');
    assert.match(run(['queue', 'delete', '--to', '@b.test']).stdout, /deleted 2 messages/);
    assert.deepEqual(ids([]), [idOf('bob@c.test')]);
  });

  it('queue show ID --headers, --body, --raw print the queued message (postcat -q)', () => {
    const { run } = setup();
    assert.equal(run(['sendmail', '-f', 'a@relay.test', 'b@example.net'], 'Subject: hello\n\nfirst line\nsecond line\n').status, 0);
    const [{ id }] = JSON.parse(run(['queue', '--json']).stdout) as Array<{ id: string }>;
    const headers = run(['queue', 'show', id!, '--headers']);
    assert.equal(headers.status, 0, headers.stderr);
    assert.match(headers.stdout, /^Received: by relay\.test[^]*\r\nSubject: hello\r\n/);
    assert.doesNotMatch(headers.stdout, /first line/);
    assert.ok(headers.stdout.endsWith('\r\n') && !headers.stdout.endsWith('\r\n\r\n'));
    assert.equal(run(['queue', 'show', id!, '--body']).stdout, 'first line\r\nsecond line\r\n');
    assert.equal(run(['queue', 'show', id!, '--raw']).stdout, `${headers.stdout}\r\nfirst line\r\nsecond line\r\n`);
    assert.match(run(['queue', 'show', id!]).stdout, /<b@example\.net> queued, attempts=0/);
    const both = run(['queue', 'show', id!, '--body', '--raw']);
    assert.equal(both.status, 64);
    assert.match(both.stderr, /choose one of --headers, --body and --raw/);
    assert.equal(run(['queue', '--raw']).status, 64);
  });

  it('queue flush says which messages it skipped and why: held, not found', async () => {
    const { dir, file, run } = setup('[queue]\ndefer_delivery = true\n');
    const d = await launch(dir, file);
    cleanups.push(async () => { await d.stop(); });
    assert.equal(run(['sendmail', 'one@example.net'], 'Subject: 1\n\nx\n').status, 0);
    assert.equal(run(['sendmail', 'two@example.net'], 'Subject: 2\n\nx\n').status, 0);
    const [a, b] = (JSON.parse(run(['queue', '--json']).stdout) as Array<{ id: string }>).map((m) => m.id);
    assert.match(run(['queue', 'hold', a!]).stdout, /held 1 message/);
    const one = run(['queue', 'flush', a!]);
    assert.equal(one.status, 0, one.stderr);
    assert.equal(one.stdout, 'smarthost: flushed 0 messages, skipped 1 (see above)\n');
    assert.equal(one.stderr, `smarthost: skipped ${a}: held (release it first: smarthost queue release ${a})\n`);
    const mixed = run(['queue', 'flush', a!, b!, 'FFFFFFFFFFFFFFFFFF']);
    assert.equal(mixed.status, 67);
    assert.equal(mixed.stdout, 'smarthost: flushed 1 message, skipped 2 (see above)\n');
    assert.match(mixed.stderr, new RegExp(`skipped ${a}: held`));
    assert.match(mixed.stderr, /skipped FFFFFFFFFFFFFFFFFF: not found \(no message FFFFFFFFFFFFFFFFFF in the queue\)/);
    const all = run(['queue', 'flush']);
    assert.match(all.stderr, new RegExp(`skipped ${a}: held`));
  });

  it('user add without a terminal and without --password-stdin points to --password-stdin', () => {
    const { run } = setup();
    const r = run(['user', 'add', 'alice'], '');
    assert.equal(r.status, 64);
    assert.match(r.stderr, /no terminal to ask for the password on; give it on standard input with --password-stdin/);
    assert.match(r.stderr, /\| smarthost user add alice --password-stdin/);
    assert.doesNotMatch(r.stderr, /too short|at least 8/);
    assert.equal(run(['user', 'add', 'alice', '--password-stdin'], 'a long password\n').status, 0);
  });

  it('user add on a terminal asks twice without echoing the password (a real pty through script(1))', async () => {
    const { dir, file } = setup();
    const cmd = `${process.execPath} ${CLI} -c ${file} user add alice`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    const answered = new Set<string>();
    child.stdout.on('data', (c: Buffer) => {
      seen += c.toString('utf8');
      for (const prompt of ['Password: ', 'Again: ']) {
        if (seen.includes(prompt) && !answered.has(prompt)) { answered.add(prompt); child.stdin.write('typed-secret-1\r'); }
      }
    });
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(status, 0, seen);
    assert.deepEqual([...answered], ['Password: ', 'Again: ']);
    assert.match(seen, /added alice/);
    assert.doesNotMatch(seen, /typed-secret/, 'the password is never echoed');
    assert.match(fs.readFileSync(path.join(dir, 'data', 'users'), 'utf8'), /^alice:/m);
  });

  it('start --listen replaces the [[listen]] addresses and keeps the first listener\'s settings', async () => {
    const taken = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => taken.once('listening', resolve));
    cleanups.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as net.AddressInfo).port;
    const dir = fresh();
    const file = path.join(dir, 'smarthost.toml');
    fs.writeFileSync(file, `hostname = "relay.test"\ndata_dir = "data"\n[[listen]]\naddress = "127.0.0.1:${port}"\ntls = "starttls"\n${NO_DNS}`);
    const d = await launch(dir, file, { args: ['--listen', '127.0.0.1:0'] });
    cleanups.push(async () => { await d.stop(); });
    assert.notEqual(d.ports[0], port);
    assert.match(d.logs(), /listening on 127\.0\.0\.1:\d+ \(tls=starttls, auth=none\)/);
  });

  it('completion scripts for bash and zsh, from the same option tables', () => {
    const dir = fresh();
    const bash = cli(['completion', 'bash'], { cwd: dir });
    assert.equal(bash.status, 0, bash.stderr);
    const file = path.join(dir, 'smarthost.bash');
    fs.writeFileSync(file, bash.stdout);
    assert.equal(spawnSync('bash', ['-n', file]).status, 0, 'valid bash');
    const complete = (words: string[]) => spawnSync('bash', ['-c', `source "${file}"; COMP_WORDS=(${words.map((w) => `"${w}"`).join(' ')}); COMP_CWORD=${words.length - 1}; _smarthost; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).stdout.trim();
    assert.equal(complete(['smarthost', 'queue', '--ol']), '--older-than');
    assert.equal(complete(['smarthost', 'queue', '--state', 'he']), 'held');
    assert.equal(complete(['smarthost', '-c', 'x.toml', 'user', 'pa']), 'passwd');
    assert.match(complete(['smarthost', 'qu']), /^queue$/);
    const zsh = cli(['completion', 'zsh'], { cwd: dir });
    assert.match(zsh.stdout, /bashcompinit[^]*complete -F _smarthost smarthost/);
    assert.equal(cli(['completion', 'fish'], { cwd: dir }).status, 64);
  });

  it('man pages smarthost(8) and smarthost.toml(5) carry the --help texts', () => {
    const dir = fresh();
    const page = cli(['man'], { cwd: dir });
    assert.equal(page.status, 0, page.stderr);
    assert.match(page.stdout, /^\.TH SMARTHOST 8 /);
    const queueHelp = cli(['queue', '--help'], { cwd: dir }).stdout.trim();
    assert.ok(page.stdout.includes(queueHelp.replace(/\\/g, '\\e')), 'queue --help appears as it is');
    for (const verb of ['start', 'check', 'queue', 'user', 'sendmail', 'newaliases', 'completion']) assert.match(page.stdout, new RegExp(`^\\.SS ${verb}$`, 'm'));
    const toml = cli(['man', 'smarthost.toml'], { cwd: dir });
    assert.match(toml.stdout, /^\.TH SMARTHOST\.TOML 5 /);
    assert.match(toml.stdout, /^\.B SMARTHOST_RELAY_URL$/m);
    assert.ok(toml.stdout.includes('[[listen]]\naddress = "127.0.0.1:2525"'), 'the embedded default');
    assert.ok(toml.stdout.includes('hostname = "relay.example.com"'), 'the example file');
    for (const text of [page.stdout, toml.stdout]) {
      const r = spawnSync('groff', ['-man', '-Tutf8', '-ww'], { input: text, encoding: 'utf8' });
      if (r.error) continue; // no groff here
      assert.equal(r.status, 0);
      assert.equal(r.stderr, '', 'groff has no warnings');
    }
  });
});
