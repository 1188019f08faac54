// End to end: `smarthost sendmail` as cron, PHP, logwatch and s-nail call it
// (issue 4). It writes into the spool with the daemon down; the daemon
// delivers on start; with the daemon up it picks the message up at once.
// Errors exit with sendmail's sysexits and say what went wrong.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, launch, removeDir, spoolMessages, tempDir, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';
import { freePort } from '../helpers/ports.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function setup(): Promise<{ up: Upstream; dir: string; config: string; bin: string }> {
  const up = await startUpstream({});
  cleanups.push(() => up.close());
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  const config = writeConfig(dir, [
    '[[listen]]', 'address = "127.0.0.1:0"',
    '[relay]', `url = "${up.url}"`, 'tls = "none"',
    '[local]', 'domains = ["localhost", "relay.test"]', 'users = ["alice"]', 'aliases = { root = "alice" }',
    '[rewrite]', 'senders = { "@relay.test" = "alerts@example.com" }',
  ].join('\n'));
  // /usr/sbin/sendmail as the README says: a symlink named sendmail; the config via -C
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.mkdirSync(path.join(bin, 'link'));
  fs.symlinkSync(CLI, path.join(bin, 'link', 'sendmail'));
  fs.writeFileSync(path.join(bin, 'sendmail'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(bin, 'link', 'sendmail')}" -C "${config}" "$@"\n`, { mode: 0o755 });
  return { up, dir, config, bin };
}


function sendmail(bin: string, args: string[], input: string) {
  const r = spawnSync(path.join(bin, 'sendmail'), args, { input, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function start(dir: string, config: string): Promise<RunningDaemon> {
  const d = await launch(dir, config);
  cleanups.push(async () => { await d.stop(); });
  return d;
}

describe('smarthost sendmail', () => {
  it('cron with the daemon down: queued in the spool, delivered when the daemon starts, sender rewritten on the way out', async () => {
    const { up, dir, config, bin } = await setup();
    // a cron-style job script: sendmail -t from PATH, headers written by the script, the daemon is not running
    const job = path.join(dir, 'backup-job.sh');
    fs.writeFileSync(job, [
      '#!/bin/sh', `PATH="${bin}:$PATH"`, 'sendmail -t -i -FCronDaemon -B8BITMIME -oem <<EOF',
      'From: root (Cron Daemon)', 'To: ops@example.net', 'Subject: Cron <root@relay> /usr/local/bin/backup',
      'Content-Type: text/plain; charset=UTF-8', '', 'backup done: 3 files, café', 'EOF', '',
    ].join('\n'), { mode: 0o755 });
    const r = spawnSync(job, [], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, '', 'nothing printed on success (cron would mail it)');
    const [stored] = spoolMessages(path.join(dir, 'data'));
    assert.ok(stored, 'the message waits in the spool');
    assert.equal(stored.envelope.sender, 'root@relay.test', 'the login name is qualified with the hostname');
    const body = stored.body.toString('latin1');
    assert.match(body, new RegExp(`^Received: by relay\\.test \\(smarthost, from userid ${process.getuid!()}\\)\\r\\n\\tid ${stored.id}; `));
    assert.match(body, /\r\nDate: .+\r\nMessage-ID: <\d{14}\.[0-9a-f]+@relay\.test>\r\n\r\nbackup done/, 'Date and Message-ID added');
    assert.ok(!/\n(?<!\r\n)/.test(body.replace(/\r\n/g, '')), 'only CRLF line ends in the spool');

    const d = await start(dir, config);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.from, 'alerts@example.com', 'envelope sender rewritten by [rewrite] senders');
    assert.deepEqual(m!.to, ['ops@example.net']);
    const text = m!.data.toString('latin1');
    assert.match(text, /\r\nFrom: alerts@example\.com \(Cron Daemon\)\r\n/, 'From header rewritten, comment kept');
    assert.ok(m!.data.includes(Buffer.from('café', 'utf8')), '8-bit body intact');
    assert.equal(m!.mailParams.BODY, '8BITMIME');
    await d.waitForLog(new RegExp(`${stored.id}: to=<ops@example\\.net>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${up.port}, .*status=sent`));
  });

  it('-t with the daemon running (PHP, logwatch): recipients from To/Cc/Bcc, Bcc removed, picked up at once', async () => {
    const { up, dir, config, bin } = await setup();
    const d = await start(dir, config);
    const r = sendmail(bin, ['-t', '-i', '-f', 'www@example.com'],
      'To: a@example.net\nCc: "B, Person" <b@example.net>\nBcc: hidden@example.net,\n  also-hidden@example.net\nSubject: php\n\n.\nline after a lone dot\n');
    assert.equal(r.status, 0, r.stderr);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.from, 'www@example.com');
    assert.deepEqual([...m!.to].sort(), ['a@example.net', 'also-hidden@example.net', 'b@example.net', 'hidden@example.net']);
    const text = m!.data.toString('latin1');
    // Line-anchored: a queue ID in Received can spell "BCC" by chance.
    assert.doesNotMatch(text, /^Bcc:|hidden@/im);
    assert.match(text, /\r\n\r\n\.\r\nline after a lone dot\r\n$/, 'with -i a lone dot is just a line');
    assert.match(d.logs(), /smarthost\/pickup\[\d+\]: \w+: uid=\d+ from=<www@example\.com>/);
  });

  it('mail queued while the control socket was unreachable is found by the periodic rescan, once', async () => {
    const { up, dir, config, bin } = await setup();
    const d = await launch(dir, config, { wrap: ['env', 'SMARTHOST_RESCAN_MS=300'] });
    cleanups.push(async () => { await d.stop(); });
    const sock = path.join(d.dataDir, 'control.sock');
    /** Queued with no daemon to poke (the control socket moved away); its file, made `old` if asked. */
    const unannounced = (from: string, old: boolean): string => {
      const before = new Set(spoolMessages(d.dataDir).map((m) => m.id));
      fs.renameSync(sock, `${sock}.away`);
      const r = sendmail(bin, ['-f', from, 'ops@example.net'], 'Subject: unannounced\n\nbody\n');
      fs.renameSync(`${sock}.away`, sock);
      assert.equal(r.status, 0, r.stderr);
      const id = spoolMessages(d.dataDir).map((m) => m.id).find((x) => !before.has(x));
      assert.ok(id, 'queued by sendmail');
      if (old) makeOld(id);
      return id;
    };
    const makeOld = (id: string) => {
      const t = new Date(Date.now() - 120_000);
      fs.utimesSync(path.join(d.dataDir, 'queue', 'messages', id), t, t);
    };
    const young = unannounced('cron@example.com', false);
    unannounced('early@example.com', true);
    // the rescan that takes the old message has seen the young one in the same pass, and left it
    const [first] = await up.waitForMessages(1);
    assert.equal(first!.from, 'early@example.com');
    assert.equal(up.messages.length, 1, 'a file younger than half a minute is left alone (it may be a commit in progress)');
    makeOld(young);
    const [, m] = await up.waitForMessages(2);
    assert.equal(m!.from, 'cron@example.com');
    assert.match(d.logs(), new RegExp(`smarthost/pickup\\[\\d+\\]: ${young}: uid=\\d+ from=<cron@example\\.com>`));
    await d.waitForLog(new RegExp(`${young}: removed`));
    // a message found by a later rescan: every rescan before it has passed over the removed one
    const late = unannounced('late@example.com', true);
    await d.waitForLog(new RegExp(`${late}: removed`));
    assert.equal(d.logs().split('\n').filter((l) => l.includes(`pickup`) && l.includes(`${young}: uid=`)).length, 1);
    assert.deepEqual(up.messages.map((x) => x.from), ['early@example.com', 'cron@example.com', 'late@example.com'], 'nothing is taken twice');
  });

  it('a local recipient gets a Maildir copy; without -i a lone dot ends the message', async () => {
    const { dir, config, bin } = await setup();
    const d = await start(dir, config);
    const r = sendmail(bin, ['root'], 'Subject: disk\n\nfull\n.\nnot part of it\n');
    assert.equal(r.status, 0, r.stderr);
    await d.waitForLog(/to=<root@localhost>, relay=local, .*status=sent \(delivered to maildir\)/);
    const box = path.join(dir, 'data', 'mail', 'alice', 'new');
    const [file] = fs.readdirSync(box);
    const text = fs.readFileSync(path.join(box, file!), 'latin1');
    assert.match(text, /^Return-Path: <root@relay\.test>\nDelivered-To: alice@localhost\n/);
    assert.match(text, /\nFrom: root <root@relay\.test>\n/, 'From added with the GECOS name');
    assert.ok(text.endsWith('\n\nfull\n'), JSON.stringify(text.slice(-40)));
  });

  it('exits with sysexits and a plain message on errors', async () => {
    const { dir, config, bin } = await setup();
    const cases: Array<[string[], string, number, RegExp]> = [
      [['-t'], 'Subject: nobody\n\nx\n', 64, /no recipient addresses found in message header/],
      [[], 'Subject: x\n\nx\n', 64, /no recipients: name them as arguments, or use -t/],
      [['nobody@localhost'], 'x\n', 67, /<nobody@localhost>: User unknown in local recipient table/],
      [['-Q'], '', 64, /unknown option -Q/],
      [['-bd'], '', 64, /smarthost start/],
      [['bad address@example.net'], 'x\n', 65, /bad recipient address syntax/],
    ];
    for (const [args, input, code, re] of cases) {
      const r = sendmail(bin, args, input);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.deepEqual(spoolMessages(path.join(dir, 'data')), [], 'nothing queued by a refused submission');
    // a full disk (the kernel refuses writes past `ulimit -f`): EX_TEMPFAIL, the program may try again, nothing half-written
    const big = 'Subject: big\n\n' + 'x'.repeat(100).concat('\n').repeat(3000);
    const full = spawnSync('sh', ['-c', 'ulimit -f 64; exec "$0" "$@"', path.join(bin, 'sendmail'), 'a@example.net'], { input: big, encoding: 'utf8', timeout: 30_000 });
    assert.equal(full.status, 75, full.stderr);
    assert.match(full.stderr, /cannot queue the message: .*; try again later/);
    assert.deepEqual(spoolMessages(path.join(dir, 'data')), []);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'data', 'queue', 'tmp')), [], 'no partial file left');
    fs.appendFileSync(config, '\n[queue]\nlifetime = "forever"\n');
    const bad = sendmail(bin, ['a@example.net'], 'x\n');
    assert.equal(bad.status, 78, bad.stderr);
    assert.match(bad.stderr, /lifetime/);
  });

  it('-bs speaks SMTP on stdin/stdout, -bp lists the queue, -bi checks the aliases', async () => {
    const { dir, bin } = await setup();
    const r = sendmail(bin, ['-bs'], 'EHLO app.local\r\nMAIL FROM:<app@relay.test>\r\nRCPT TO:<x@example.net>\r\nDATA\r\nSubject: bs\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^220 relay\.test /);
    const id = /250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout)?.[1];
    assert.ok(id, r.stdout);
    assert.match(r.stdout, /221 /);
    const list = sendmail(bin, ['-bp'], '');
    assert.equal(list.status, 0);
    assert.match(list.stdout, new RegExp(`^${id}\\s+\\d+ .* app@relay\\.test\\n\\s+x@example\\.net`, 'm'));
    const na = sendmail(bin, ['-bi'], '');
    assert.equal(na.status, 0, na.stderr);
    assert.match(na.stdout, /nothing to rebuild/);
    assert.equal(spoolMessages(path.join(dir, 'data')).length, 1);
  });

  it('root\'s sendmail writes queue files the daemon\'s own user can read; an unreadable file does not stop the daemon', async () => {
    const { up, dir, config, bin } = await setup();
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    fs.chownSync(dir, 65534, 65534);
    const d = await launch(dir, config, { wrap: nobody });
    cleanups.push(async () => { await d.stop(); });
    const queue = path.join(dir, 'data', 'queue');
    assert.equal(fs.statSync(queue).uid, 65534, 'the daemon (as nobody) made the queue');
    const r = sendmail(bin, ['first@example.net'], 'Subject: from root\n\nx\n');
    assert.equal(r.status, 0, r.stderr);
    await up.waitForMessages(1);
    await d.waitForLog(/to=<first@example\.net>, .*status=sent/);

    // a file the daemon may not read (written by root into a root-owned queue, then the queue handed back)
    await d.stop();
    fs.chownSync(queue, 0, 0);
    assert.equal(sendmail(bin, ['second@example.net'], 'Subject: unreadable\n\nx\n').status, 0);
    fs.chownSync(queue, 65534, 65534);
    const [stuck] = spoolMessages(path.join(dir, 'data'));
    const again = await launch(dir, config, { wrap: nobody });
    cleanups.push(async () => { await again.stop(); });
    await again.waitForLog(new RegExp(`warning: ${stuck!.id}: queue file cannot be read \\(EACCES\\); it stays in the queue untouched`));
    assert.equal(sendmail(bin, ['third@example.net'], 'Subject: after\n\nx\n').status, 0);
    await again.waitForLog(/to=<third@example\.net>, .*status=sent/);
    assert.ok(fs.existsSync(path.join(queue, 'messages', stuck!.id)), 'left in place for a human');
  });

  it('a user who may not write the queue (PHP as www-data) hands the message to the running daemon over loopback SMTP', async () => {
    const { up, dir, config, bin } = await setup();
    const port = await freePort();
    fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace('address = "127.0.0.1:0"', `address = "127.0.0.1:${port}"`));
    fs.chmodSync(dir, 0o755);
    const d = await start(dir, config);
    const asNobody = (args: string[], input: string) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', path.join(bin, 'sendmail'), ...args], { input, encoding: 'utf8', timeout: 30_000 });
    const r = asNobody(['-t', '-i'], 'To: customer@example.net\nSubject: order confirmation\n\nthanks\n');
    assert.equal(r.status, 0, r.stderr);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.from, 'alerts@example.com', 'nobody@relay.test, rewritten on the way out');
    assert.deepEqual(m!.to, ['customer@example.net']);
    await d.waitForLog(/smarthost\/qmgr\[\d+\]: \w+: from=<nobody@relay\.test>, size=\d+, nrcpt=1 \(queue active\)/);
    assert.match(m!.data.toString('latin1'), /\r\nSubject: order confirmation\r\n[^]*\r\nMessage-ID: <[^>]+@relay\.test>\r\n/);
    await d.stop();
    const down = asNobody(['customer@example.net'], 'Subject: x\n\nx\n');
    assert.equal(down.status, 75, down.stderr);
    assert.match(down.stderr, /cannot write the queue \(.*EACCES.*\) and the daemon on 127\.0\.0\.1:\d+ did not take it: .*; is smarthost running\? try again later/);
  });

  it('s-nail sends through it when told mta=/path/to/sendmail', async () => {
    const { up, dir, config, bin } = await setup();
    await start(dir, config);
    const r = spawnSync('s-nail', ['-n', '-S', `mta=${path.join(bin, 'sendmail')}`, '-S', 'v15-compat', '-s', 'via sendmail', '-r', 'alice@relay.test', 'friend@example.net'], {
      input: 'mailx body\n', encoding: 'utf8', env: { ...process.env, HOME: dir }, timeout: 30_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.from, 'alerts@example.com');
    assert.match(m!.data.toString('latin1'), /\r\nSubject: via sendmail\r\n[^]*\r\n\r\nmailx body\r\n$/);
  });
});
