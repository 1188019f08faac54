// End to end: the host's own mail (issue 4). swaks to a local user lands in
// a Maildir checked file by file; an unknown user is refused at RCPT; an
// alias forwards outside through the relay; mail from root leaves with the
// rewritten sender in envelope and From; s-nail submits over STARTTLS+AUTH.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream, type ReceivedMessage, type Upstream } from '../peers/upstream.js';

let up: Upstream;
let d: RunningDaemon;
let port: number;
let maildirs: string;

before(async () => {
  up = await startUpstream({});
  d = await startDaemon({
    toml: [
      '[[listen]]', 'address = "127.0.0.1:0"', 'tls = "starttls"', 'auth = "optional"',
      '[relay]', `url = "${up.url}"`, 'tls = "none"',
      '[local]', 'domains = ["localhost", "relay.test"]', 'users = ["alice", "bob", "jörg"]',
      'aliases = { root = "\\\\root", postmaster = "alice", ops = ["bob", "oncall@example.net"], loopy = "loopy2", loopy2 = "loopy" }',
      '[rewrite]', 'senders = { "@relay.test" = "alerts@example.com" }',
      '[queue]', 'retry_min = "1s"', 'retry_max = "2s"',
      '[auth]', 'authenticated_header = true', // the login name in Received (off by default)
    ].join('\n'),
  });
  port = d.ports[0]!;
  maildirs = path.join(d.dataDir, 'mail');
});
after(async () => { await d.stop(); removeDir(d.dir); await up.close(); });

function swaks(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('swaks', ['--server', '127.0.0.1', '--port', String(port), '--helo', 'client.test', '--timeout', '20', ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** The message the upstream received for `rcpt` (others may arrive in between: bounces, forwards). */
async function arrivedFor(rcpt: string): Promise<ReceivedMessage> {
  const forRcpt = (ms: readonly ReceivedMessage[]) => ms.find((x) => x.to.includes(rcpt));
  return forRcpt(await up.waitUntil((ms) => forRcpt(ms) !== undefined, `a message for ${rcpt}`, 10_000))!;
}

/** Waits until `user`'s Maildir holds n messages in new/ and returns their file names. */
async function waitForMaildir(user: string, n: number): Promise<string[]> {
  const dir = path.join(maildirs, user, 'new');
  const files = () => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
  // a file appearing in new/ has no event to wait on: the condition is checked until it holds
  await waitFor(() => files().length >= n, () => `${n} message(s) in ${dir}; log:\n${d.logs()}`, 1000);
  return files();
}

describe('local delivery', () => {
  it('delivers to a local user\'s Maildir (tmp -> new), with Return-Path, Delivered-To and Unix line ends', async () => {
    const r = swaks(['--from', 'carol@example.org', '--to', 'alice@localhost', '--header', 'Subject: to alice', '--body', 'Hello Alice.\r\n.dot line']);
    assert.equal(r.status, 0, r.out);
    const id = /queued as (\w+)/.exec(r.out)![1]!;
    const [file] = await waitForMaildir('alice', 1);
    const box = path.join(maildirs, 'alice');
    assert.deepEqual(fs.readdirSync(box).sort(), ['cur', 'new', 'tmp']);
    assert.deepEqual(fs.readdirSync(path.join(box, 'tmp')), [], 'nothing left in tmp/');
    assert.equal(fs.statSync(box).mode & 0o777, 0o700);
    const full = path.join(box, 'new', file!);
    assert.equal(fs.statSync(full).mode & 0o777, 0o600);
    assert.match(file!, /^\d+\.M\d+P\d+Q\d+\.relay\.test,S=\d+$/);
    const text = fs.readFileSync(full, 'latin1');
    assert.equal(Number(/,S=(\d+)$/.exec(file!)![1]), Buffer.byteLength(text, 'latin1'));
    assert.ok(!text.includes('\r'), 'Maildir files have LF line ends');
    assert.match(text, new RegExp(`^Return-Path: <carol@example\\.org>\\nDelivered-To: alice@localhost\\nReceived: from client\\.test \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\n\\tby relay\\.test \\(smarthost\\) with ESMTPS? id ${id}`));
    assert.match(text, /\nSubject: to alice\n/);
    assert.ok(text.includes('\n\nHello Alice.\n.dot line\n'), JSON.stringify(text.slice(-80)));
    await d.waitForLog(new RegExp(`smarthost/local\\[\\d+\\]: ${id}: to=<alice@localhost>, relay=local, delay=[\\d.]+, delays=[\\d./]+, dsn=2\\.0\\.0, status=sent \\(delivered to maildir\\)`));
    await d.waitForLog(new RegExp(`${id}: removed`));
  });

  it('refuses an unknown local user at RCPT with Postfix\'s reply and logs it', async () => {
    const r = swaks(['--from', 'carol@example.org', '--to', 'nobody@localhost']);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /<\*\* 550 5\.1\.1 <nobody@localhost>: Recipient address rejected: User unknown in local recipient table/);
    await d.waitForLog(/NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.1\.1 <nobody@localhost>: Recipient address rejected: User unknown in local recipient table; from=<carol@example\.org> to=<nobody@localhost>/);
  });

  it('takes user+detail for the user, and postmaster (also bare <Postmaster>) always exists', async () => {
    assert.equal(swaks(['--from', 'carol@example.org', '--to', 'bob+lists@localhost']).status, 0);
    await waitForMaildir('bob', 1);
    const before = fs.existsSync(path.join(maildirs, 'alice', 'new')) ? fs.readdirSync(path.join(maildirs, 'alice', 'new')).length : 0;
    const r = swaks(['--from', 'carol@example.org', '--to', 'Postmaster']);
    assert.equal(r.status, 0, r.out);
    await waitForMaildir('alice', before + 1); // postmaster = "alice"
  });

  it('forwards an alias\'s outside target through the relay as a new message, and keeps the local copy', async () => {
    const bobBefore = fs.existsSync(path.join(maildirs, 'bob', 'new')) ? fs.readdirSync(path.join(maildirs, 'bob', 'new')).length : 0;
    const r = swaks(['--from', 'carol@example.org', '--to', 'ops@relay.test', '--header', 'Subject: page']);
    assert.equal(r.status, 0, r.out);
    const id = /queued as (\w+)/.exec(r.out)![1]!;
    const line = await d.waitForLog(new RegExp(`${id}: to=<ops@relay\\.test>, relay=local, .*status=sent \\(delivered to maildir, forwarded as (\\w+)\\)`));
    const fwd = /forwarded as (\w+)/.exec(line)![1]!;
    const m = await arrivedFor('oncall@example.net');
    assert.equal(m.from, 'carol@example.org', 'the forwarded copy keeps the original sender');
    assert.match(m.data.toString('latin1'), /^Delivered-To: ops@relay\.test\r\nReceived: /);
    await d.waitForLog(new RegExp(`${fwd}: to=<oncall@example\\.net>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:\\d+, .*status=sent`));
    await waitForMaildir('bob', bobBefore + 1);
  });

  it('bounces an alias loop with 5.4.6 and tells the sender', async () => {
    const r = swaks(['--from', 'carol@example.org', '--to', 'loopy@localhost']);
    assert.equal(r.status, 0, r.out);
    const id = /queued as (\w+)/.exec(r.out)![1]!;
    await d.waitForLog(new RegExp(`${id}: to=<loopy@localhost>, relay=local, .*dsn=5\\.4\\.6, status=bounced \\(alias loop: loopy -> loopy2 -> loopy\\)`));
    await d.waitForLog(new RegExp(`${id}: sender non-delivery notification: \\w+`));
  });
});

describe('internationalised mail (SMTPUTF8, 8BITMIME)', () => {
  it('passes UTF-8 addresses and 8-bit bodies through, to a local Maildir and to the upstream', async () => {
    const u8 = (text: string) => Buffer.from(text, 'utf8').toString('latin1'); // RawSmtp writes latin1 strings: send UTF-8 bytes
    const c = await RawSmtp.connect(port);
    try {
      await c.read();
      await c.cmd('EHLO client.test');
      assert.equal((await c.cmd(u8('MAIL FROM:<josé@example.org> SMTPUTF8 BODY=8BITMIME'))).code, 250);
      assert.equal((await c.cmd(u8('RCPT TO:<jörg@localhost>'))).code, 250);
      assert.equal((await c.cmd(u8('RCPT TO:<用户@example.net>'))).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      const r = await c.cmd(u8('From: José <josé@example.org>\r\nSubject: grüße\r\n\r\nÄpfel und Birnen\r\n.'));
      assert.equal(r.code, 250, r.text);
      await c.cmd('QUIT');
    } finally { c.close(); }
    const m = await arrivedFor('用户@example.net');
    assert.equal(m.from, 'josé@example.org');
    assert.equal(m.mailParams.SMTPUTF8, '', 'SMTPUTF8 passed on to the upstream');
    assert.equal(m.mailParams.BODY, '8BITMIME');
    assert.ok(m.data.includes(Buffer.from('\r\n\r\nÄpfel und Birnen\r\n', 'utf8')));
    const [file] = await waitForMaildir('jörg', 1);
    const text = fs.readFileSync(path.join(maildirs, 'jörg', 'new', file!), 'utf8');
    assert.match(text, /^Return-Path: <josé@example\.org>\nDelivered-To: jörg@localhost\n/);
    assert.ok(text.endsWith('\n\nÄpfel und Birnen\n'));
  });
});

describe('sender rewriting for mail that leaves', () => {
  it('mail from root@relay.test leaves as alerts@example.com in envelope and From; local copies keep the original', async () => {
    const r = swaks(['--from', 'root@relay.test', '--to', 'someone@example.net',
      '--header', 'From: "Cron Daemon" <root@relay.test>', '--header', 'Reply-To: root@relay.test', '--header', 'Subject: cron']);
    assert.equal(r.status, 0, r.out);
    const m = await arrivedFor('someone@example.net');
    assert.equal(m.from, 'alerts@example.com');
    const text = m.data.toString('latin1');
    assert.match(text, /\r\nFrom: "Cron Daemon" <alerts@example\.com>\r\n/);
    assert.match(text, /\r\nReply-To: alerts@example\.com\r\n/);
    assert.match(text, /\r\nSubject: cron\r\n/);
  });

  it('does not rewrite bounces (null sender)', async () => {
    const r = swaks(['--from', '<>', '--to', 'someone-else@example.net', '--header', 'From: MAILER-DAEMON@relay.test']);
    assert.equal(r.status, 0, r.out);
    const m = await arrivedFor('someone-else@example.net');
    assert.equal(m.from, '');
    assert.match(m.data.toString('latin1'), /\r\nFrom: MAILER-DAEMON@relay\.test\r\n/);
  });
});

describe('s-nail (mailx) as a remote client', () => {
  it('sends over STARTTLS with AUTH PLAIN, configured with set smtp=...', async () => {
    const add = d.cli(['user', 'add', 'alice', '--password-stdin'], 'alice-pass\n');
    assert.equal(add.status, 0, add.stderr);
    const rc = path.join(d.dir, 'mailrc');
    fs.writeFileSync(rc, [
      `set smtp=smtp://127.0.0.1:${port}`, 'set smtp-use-starttls', 'set smtp-auth=plain',
      'set smtp-auth-user=alice', 'set smtp-auth-password=alice-pass', 'set ssl-verify=ignore', 'set from=alice@client.test',
      'set hostname=client.test',
    ].join('\n') + '\n');
    const r = spawnSync('s-nail', ['-n', '-s', 'from s-nail', 'friend@example.net'], {
      input: 'Sent by s-nail.\n', encoding: 'utf8', env: { ...process.env, MAILRC: rc, HOME: d.dir }, timeout: 30_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const m = await arrivedFor('friend@example.net');
    assert.equal(m.from, 'alice@client.test');
    const text = m.data.toString('latin1');
    assert.match(text, /\(Authenticated sender: alice\)/);
    assert.match(text, /with ESMTPSA id/);
    assert.match(text, /\r\nSubject: from s-nail\r\n/);
    assert.match(text, /\r\n\r\nSent by s-nail\.\r\n/);
    await d.waitForLog(/client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice/);
  });
});
