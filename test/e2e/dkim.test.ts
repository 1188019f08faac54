// End to end (issue 19, DKIM): keys made by `smarthost dkim keygen`, a daemon with two
// [[dkim]] selectors for example.com (RSA and Ed25519: dual signing), mail relayed to a real
// upstream and its signatures verified by mailauth and by python3-dkim with the records keygen
// printed. Mail delivered locally, mail from other domains and mail already signed with a
// selector get no (further) signature; a retry and a second recipient batch are signed once.
// `check` looks the records up at a stub DNS server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { mailauthVerdicts, pythonVerdicts, type DkimRecords } from '../helpers/dkim-verify.js';
import { CLI, removeDir, runCli, startDaemon, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../peers/dns-server.js';
import { startUpstream, type ReceivedMessage, type Upstream } from '../peers/upstream.js';

const keys = tempDir('smarthost-dkim-keys-');
const records: DkimRecords = {};
let up: Upstream;
let d: RunningDaemon;

/** Runs keygen and returns the TXT record it printed: [name, joined text]. */
function keygen(selector: string, type: string, file: string, extra: string[] = []): { status: number | null; name: string; text: string; stderr: string } {
  const r = runCli(['dkim', 'keygen', 'example.com', '--selector', selector, '--type', type, '-o', file, ...extra]);
  const line = /^\s*(\S+) IN TXT ((?:"[^"]*" ?)+)$/m.exec(r.stdout);
  const text = line ? [...line[2]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('') : '';
  return { status: r.status, name: line?.[1] ?? '', text, stderr: r.stderr };
}

before(async () => {
  for (const [selector, type] of [['rsa1', 'rsa2048'], ['ed1', 'ed25519']] as const) {
    const k = keygen(selector, type, path.join(keys, `${selector}.key`));
    assert.equal(k.status, 0, k.stderr);
    records[k.name] = k.text;
  }
  up = await startUpstream({});
  d = await startDaemon({
    toml: [
      '[[listen]]', 'address = "127.0.0.1:0"',
      '[relay]', `url = "${up.url}"`, 'tls = "none"',
      '[local]', 'domains = ["localhost"]', 'users = ["alice"]',
      '[rewrite]', 'senders = { "@relay.test" = "@example.com" }',
      '[queue]', 'retry_min = "1s"', 'retry_max = "2s"',
      '[[dkim]]', 'domain = "example.com"', 'selector = "rsa1"', `key_file = "${path.join(keys, 'rsa1.key')}"`,
      '[[dkim]]', 'domain = "example.com"', 'selector = "ed1"', `key_file = "${path.join(keys, 'ed1.key')}"`,
    ].join('\n'),
  });
});
after(async () => { await d.stop(); removeDir(d.dir); await up.close(); removeDir(keys); });

const dotStuff = (body: string) => body.replace(/^\./gm, '..');

async function arrivedFor(rcpt: string, nth = 1): Promise<ReceivedMessage> {
  const all = () => up.messages.filter((x) => x.to.includes(rcpt));
  await waitFor(() => all().length >= nth, () => `message ${nth} for ${rcpt} at the upstream; log:\n${d.logs()}`, 1000, 20);
  return all()[nth - 1]!;
}

const signaturesOf = (m: Buffer) => [...m.toString('latin1').matchAll(/^DKIM-Signature:.*(?:\r\n[ \t].*)*/gim)].map((x) => x[0]);
const BOTH = [{ domain: 'example.com', selector: 'rsa1', result: 'pass' }, { domain: 'example.com', selector: 'ed1', result: 'pass' }];

async function assertBothPass(data: Buffer): Promise<void> {
  assert.equal(signaturesOf(data).length, 2, data.toString('latin1').slice(0, 2000));
  assert.deepEqual(await mailauthVerdicts(data, records), BOTH);
  assert.deepEqual(pythonVerdicts(data, records), BOTH);
}

describe('DKIM signing of mail that leaves', () => {
  it('signs with both selectors; folded headers, an 8-bit body and trailing blank lines verify with mailauth and python3-dkim', async () => {
    const body = 'From: "Ann" <ann@example.com>\r\nTo: <bob@example.net>,\r\n  <carol@example.net>\r\nSubject: folded\r\n\tsubject\r\nMessage-ID: <f1@example.com>\r\n'
      + 'Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße  aus Köln \t\r\n\r\n\r\n';
    await submit(d.ports[0]!, 'ann@example.com', ['bob@example.net'], { body: dotStuff(body) });
    const m = await arrivedFor('bob@example.net');
    await assertBothPass(m.data);
    assert.match(signaturesOf(m.data)[0]!, /a=rsa-sha256[^]*c=relaxed\/relaxed/);
    assert.match(signaturesOf(m.data)[1]!, /a=ed25519-sha256/);
  });

  it('signs after sender rewriting: From root@relay.test leaves as root@example.com, signed for example.com', async () => {
    const body = 'From: root@relay.test\r\nTo: dave@example.net\r\nSubject: cron\r\n\r\nreport\r\n';
    await submit(d.ports[0]!, 'root@relay.test', ['dave@example.net'], { body });
    const m = await arrivedFor('dave@example.net');
    assert.equal(m.from, 'root@example.com');
    assert.match(m.data.toString('latin1'), /^From: root@example\.com\r$/m);
    await assertBothPass(m.data);
  });

  it('signs a 100 KB message with dot lines: streaming and dot-stuffing keep it verifiable', async () => {
    const line = (i: number) => `${i % 7 === 0 ? '.' : ''}line ${i} ${'x'.repeat(90)} ü\r\n`;
    const text = Array.from({ length: 1000 }, (_, i) => line(i)).join('');
    const body = `From: ann@example.com\r\nTo: erin@example.net\r\nSubject: big\r\n\r\n${text}.\r\n`;
    await submit(d.ports[0]!, 'ann@example.com', ['erin@example.net'], { body: dotStuff(body) });
    const m = await arrivedFor('erin@example.net');
    assert.ok(m.data.length > 100_000);
    // the test client writes the text as latin1: 8-bit bytes either way
    assert.ok(m.data.toString('latin1').endsWith(`${text}.\r\n`), 'the body arrives as sent, dot lines included');
    await assertBothPass(m.data);
  });

  it('signs what is sent when a line over 998 octets is broken on the way out (the signature covers the broken line)', async () => {
    const long = `<p>${'unwrapped html '.repeat(400)}</p>`;
    const body = `From: ann@example.com\r\nTo: kim@example.net\r\nSubject: long line\r\n\r\n${long}\r\n`;
    await submit(d.ports[0]!, 'ann@example.com', ['kim@example.net'], { body });
    const m = await arrivedFor('kim@example.net');
    assert.ok(m.data.toString('latin1').split('\r\n').every((l) => l.length <= 998), 'every line at most 998 octets');
    await assertBothPass(m.data);
  });

  it('signs each copy once when one recipient is retried in a later attempt', async () => {
    up.setFaults([{ stage: 'rcpt', rcpt: 'carol@example.net', action: 'reply', reply: '451 4.3.0 Try again later', times: 1 }]);
    const body = 'From: ann@example.com\r\nTo: frank@example.net, carol@example.net\r\nSubject: twice\r\n\r\nhi\r\n';
    const id = await submit(d.ports[0]!, 'ann@example.com', ['frank@example.net', 'carol@example.net'], { body });
    await d.waitForLog(new RegExp(`${id}: to=<carol@example\\.net>.*status=deferred`));
    const first = await arrivedFor('frank@example.net');
    const retried = await arrivedFor('carol@example.net');
    for (const m of [first, retried]) await assertBothPass(m.data);
    up.setFaults([]);
  });

  it('adds no second signature for a d= and s= the message already carries', async () => {
    const body = 'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=rsa1;\r\n h=from; bh=AAAA; b=BBBB\r\nFrom: ann@example.com\r\nTo: gina@example.net\r\nSubject: pre-signed\r\n\r\nhi\r\n';
    await submit(d.ports[0]!, 'ann@example.com', ['gina@example.net'], { body });
    const m = await arrivedFor('gina@example.net');
    const sigs = signaturesOf(m.data);
    assert.equal(sigs.length, 2, 'the one it had, and ed1');
    assert.equal(sigs.filter((s) => /s=rsa1/.test(s)).length, 1);
    const ed = (await mailauthVerdicts(m.data, records)).find((v) => v.selector === 'ed1');
    assert.equal(ed?.result, 'pass');
  });

  it('leaves mail from a domain without [[dkim]] unsigned', async () => {
    const body = 'From: hank@example.org\r\nTo: hank@example.net\r\nSubject: other\r\n\r\nhi\r\n';
    await submit(d.ports[0]!, 'hank@example.org', ['hank@example.net'], { body });
    assert.deepEqual(signaturesOf((await arrivedFor('hank@example.net')).data), []);
  });

  it('never signs local (Maildir) delivery; the copy that leaves in the same message is signed', async () => {
    const body = 'From: ann@example.com\r\nTo: alice@localhost, ivy@example.net\r\nSubject: both\r\n\r\nhi\r\n';
    const id = await submit(d.ports[0]!, 'ann@example.com', ['alice@localhost', 'ivy@example.net'], { body });
    await d.waitForLog(new RegExp(`${id}: to=<alice@localhost>, relay=local, .*status=sent`));
    const dir = path.join(d.dataDir, 'mail', 'alice', 'new');
    const local = fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'latin1')).find((t) => t.includes(id));
    assert.ok(local, 'the Maildir copy');
    assert.doesNotMatch(local, /^DKIM-Signature:/im);
    await assertBothPass((await arrivedFor('ivy@example.net')).data);
  });
});

describe('reload', () => {
  it('reads a replaced key file at SIGHUP; a broken one keeps the running keys', async () => {
    const file = path.join(keys, 'ed1.key');
    const old = fs.readFileSync(file);
    const k = keygen('ed1', 'ed25519', file, ['--force']);
    assert.equal(k.status, 0, k.stderr);
    d.child.kill('SIGHUP');
    await d.waitForLog(/reload -- configuration/);
    await submit(d.ports[0]!, 'ann@example.com', ['jack@example.net'], { body: 'From: ann@example.com\r\nSubject: new key\r\n\r\nhi\r\n' });
    const m = await arrivedFor('jack@example.net');
    const verdicts = pythonVerdicts(m.data, { ...records, 'ed1._domainkey.example.com': k.text });
    assert.deepEqual(verdicts.map((v) => v.result), ['pass', 'pass'], 'ed1 now signs with the new key');
    assert.equal(pythonVerdicts(m.data, records)[1]!.result, 'fail', 'and not with the old one');
    fs.writeFileSync(file, 'not a key\n'); // (an unreadable mode would not stop root, who runs CI)
    d.child.kill('SIGHUP');
    await d.waitForLog(/SIGHUP: the new configuration has 1 problem; keeping the running one/);
    await d.waitForLog(/dkim\[1\]\.key_file: .*ed1\.key cannot sign: it is not a PEM private key/);
    fs.writeFileSync(file, old); // the other tests' records stay true
    d.child.kill('SIGHUP');
    await waitFor(() => (d.logs().match(/reload -- configuration/g) ?? []).length >= 2, 'the second reload');
  });
});

describe('smarthost dkim keygen', () => {
  it('writes the key with mode 0600, refuses to overwrite it, and replaces it with --force', () => {
    const file = path.join(keys, 'new.key');
    const first = keygen('s1', 'ed25519', file);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(first.name, 's1._domainkey.example.com');
    assert.match(first.text, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    const before = fs.readFileSync(file);
    const again = keygen('s1', 'ed25519', file);
    assert.equal(again.status, 73);
    assert.match(again.stderr, /new\.key exists; it may be the key your published record matches\.\n {4}fix: choose another --selector, or add --force to replace it/);
    assert.ok(fs.readFileSync(file).equals(before), 'the key is untouched');
    const forced = keygen('s1', 'rsa2048', file, ['--force']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.text, /^v=DKIM1; k=rsa; p=/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it('puts the key under data_dir/dkim/ with a dated selector by default, and refuses a bad type', () => {
    const r = d.cli(['dkim', 'keygen', 'example.org']);
    assert.equal(r.status, 0, r.stderr);
    const now = new Date();
    const selector = `s${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    const file = path.join(d.dataDir, 'dkim', `example.org.${selector}.key`);
    assert.match(r.stdout, new RegExp(`^wrote ${file.replace(/[.]/g, '\\.')} \\(rsa, 2048 bits, mode 0600\\)`, 'm'));
    assert.match(r.stdout, new RegExp(`^  ${selector}\\._domainkey\\.example\\.org IN TXT "v=DKIM1; k=rsa; p=[^"]{230,}" "[^"]+"$`, 'm'));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const bad = d.cli(['dkim', 'keygen', 'example.org', '--type', 'dsa']);
    assert.equal(bad.status, 64);
    assert.match(bad.stderr, /--type must be rsa2048 or ed25519, not "dsa"/);
  });
});

describe('smarthost check: is each [[dkim]] key published?', () => {
  let dns: DnsServer;
  before(async () => {
    const other = keygen('other', 'ed25519', path.join(keys, 'other.key'));
    const split = (t: string) => t.match(/.{1,255}/g)!;
    dns = await startDnsServer({
      'rsa1._domainkey.example.com': { TXT: [split(records['rsa1._domainkey.example.com']!)] },
      'ed1._domainkey.example.com': { TXT: ['some other text', other.text] },
      'broken._domainkey.example.com': { SERVFAIL: true },
      'revoked._domainkey.example.com': { TXT: ['v=DKIM1; k=rsa; p='] },
    });
  });
  after(() => dns.close());

  /** `smarthost check`, run without blocking this process: the stub DNS server answers from it. */
  async function check(nameservers: string, selectors: string[], keyFile = (s: string) => path.join(keys, s === 'ed1' ? 'ed1.key' : 'rsa1.key')): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const dir = tempDir();
    const file = path.join(dir, 'smarthost.toml');
    fs.writeFileSync(file, [
      `data_dir = "${path.join(dir, 'data')}"`, '[[listen]]', 'address = "127.0.0.1:0"', '[mx]', `nameservers = ["${nameservers}"]`,
      ...selectors.flatMap((s) => ['[[dkim]]', 'domain = "example.com"', `selector = "${s}"`, `key_file = "${keyFile(s)}"`]),
    ].join('\n'));
    const child = spawn(process.execPath, [CLI, 'check', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    removeDir(dir);
    return { status, stdout, stderr };
  }

  it('says match, different key, not published and revoked, and fails on the different and the revoked key', async () => {
    const r = await check(dns.address, ['rsa1', 'ed1', 'missing', 'revoked']);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {2}dkim example\.com selector rsa1 \(rsa 2048\): published, matches the key$/m);
    assert.match(r.stdout, /^ {2}dkim example\.com selector ed1 \(ed25519 256\): published with a DIFFERENT key$/m);
    assert.match(r.stdout, /^ {2}dkim example\.com selector missing \(rsa 2048\): NOT published$/m);
    assert.match(r.stderr, /^error: DKIM record ed1\._domainkey\.example\.com holds another key \(p=.*\) than .*ed1\.key: every signature by it fails\n {4}fix: publish: ed1\._domainkey\.example\.com IN TXT "v=DKIM1; k=ed25519; p=/m);
    assert.match(r.stderr, /^warning: DKIM record missing\._domainkey\.example\.com is not published: receivers cannot verify the signatures of example\.com\n {4}fix: publish: missing\._domainkey\.example\.com IN TXT "v=DKIM1; k=rsa; p=[^"]+" "[^"]+"/m);
    assert.match(r.stdout, /^ {2}dkim example\.com selector revoked \(rsa 2048\): revoked in DNS \(empty p=\)$/m);
    assert.match(r.stderr, /^error: DKIM record revoked\._domainkey\.example\.com revokes its key \(empty p=\): every signature by it fails$/m);
    assert.doesNotMatch(r.stderr, /rsa1\._domainkey/);
  });

  it('warns about a key file that other users can read', async () => {
    const open = path.join(keys, 'open.key');
    fs.copyFileSync(path.join(keys, 'rsa1.key'), open);
    fs.chmodSync(open, 0o644);
    const r = await check('127.0.0.1:9', ['rsa1'], () => open);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^warning: DKIM key ${open.replace(/[.]/g, '\\.')} is readable by other users \\(mode 644\\); anyone who reads it can sign mail as example\\.com\n {4}fix: chmod 600 `, 'm'));
  });

  it('only warns when DNS cannot be reached or fails', async () => {
    const down = await check('127.0.0.1:9', ['rsa1']);
    assert.equal(down.status, 0, down.stdout + down.stderr);
    assert.match(down.stdout, /selector rsa1 \(rsa 2048\): could not check \(ECONNREFUSED\)/);
    assert.match(down.stderr, /^warning: could not check DKIM record rsa1\._domainkey\.example\.com: DNS did not answer \(ECONNREFUSED\)\n {4}fix: run check where DNS works, or check \[mx\] nameservers/m);
    assert.doesNotMatch(down.stderr, /readable by other users/);
    const servfail = await check(dns.address, ['broken']);
    assert.equal(servfail.status, 0, servfail.stdout + servfail.stderr);
    assert.match(servfail.stdout, /selector broken \(rsa 2048\): could not check \(ESERVFAIL\)/);
  });
});
