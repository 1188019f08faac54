// End to end (issue 16 item 2): the delivery log line says what `smarthost probe` says. Each
// case provokes one failure the classic how-tos troubleshoot against a real peer (the test
// upstream with its faults, a closed port, a raw net peer for a multi-line reply), then checks
// that the `status=deferred (...)` / `status=bounced (...)` line of the daemon and the probe's
// diagnosis and fix, run on the same config file, name the same cause and the same fix.
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLI, removeDir, startDaemon, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { startRawServer } from '../peers/raw-server.js';
import { startUpstream, type UpstreamOptions } from '../peers/upstream.js';
import { freePort } from '../helpers/ports.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const USERS = { alice: 's3cret-Pa55' };
const LOGIN = (dir: string) => `username = "alice"\npassword_file = "${path.join(dir, 'relay.secret')}"`;

interface Case {
  /** The [relay] section's lines after url (dir: where relay.secret is). */
  relay(dir: string, caFile: string): string;
  /** The url to use, given the peer's port (default: the upstream's own url). */
  url?(port: number): string;
  /** Words both the log line and the probe's diagnosis contain (the cause), and both fixes contain. */
  cause: RegExp; fix: RegExp;
  /** The probe step that fails (its ✗ line). */
  step: string;
  status?: 'deferred' | 'bounced';
  sendTest?: boolean;
  /** Also true of the log line alone. */
  log?: (line: string) => void;
}

function probeRun(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'probe', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('close', () => resolve(out));
  });
}

async function rawServer(onConnection: (socket: net.Socket) => void): Promise<number> {
  const raw = await startRawServer(onConnection);
  cleanups.push(() => raw.close());
  return raw.port;
}


/** Plain SMTP that refuses the message after DATA with a three-line 554. */
const MULTILINE_554 = ['554-5.7.1 [127.0.0.1] Our system has detected that this message is',
  '554-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,', '554 5.7.1 this message has been blocked.'];
function multiLinePeer(): Promise<number> {
  return rawServer((s) => {
    let inData = false;
    let buffered = '';
    s.write('220 strict.test ESMTP\r\n');
    s.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      for (let i = buffered.indexOf('\r\n'); i >= 0; i = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 2);
        if (inData) { if (line === '.') { inData = false; s.write(MULTILINE_554.join('\r\n') + '\r\n'); } continue; }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') s.write('250-strict.test\r\n250 8BITMIME\r\n');
        else if (verb === 'DATA') { inData = true; s.write('354 go ahead\r\n'); } else if (verb === 'QUIT') { s.end('221 bye\r\n'); } else s.write('250 2.0.0 ok\r\n');
      }
    });
  });
}

/** Starts the peer, the daemon with [relay] pointing at it, submits one message; returns the log reason and the probe output. */
async function run(c: Case, peer: () => Promise<{ port: number; url: string; caFile: string }>): Promise<{ line: string; reason: string; probe: string; d: RunningDaemon }> {
  const { port, url, caFile } = await peer();
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'relay.secret'), `${USERS.alice}\n`, { mode: 0o600 });
  const toml = `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${c.url ? c.url(port) : url}"\ntimeout = "1s"\n${c.relay(dir, caFile)}\n` +
    '[queue]\nretry_min = "1h"\nretry_max = "2h"\n';
  const d = await startDaemon({ dir, toml });
  cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
  const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
  const status = c.status ?? 'deferred';
  const line = await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=${status} \\(.*\\)`), 15_000);
  const reason = /status=\w+ \((.*)\)$/.exec(line)![1]!;
  logged.push(d.logs().split('\n').find((l) => l.endsWith(line)) ?? line); // with its syslog prefix, as pflogsumm reads it
  const probe = await probeRun(['--timeout', '1s', ...(c.sendTest ? ['--send-test', 'bob@example.net'] : []), '--from', 'app@relay.test', '-c', d.configFile]);
  return { line, reason, probe, d };
}

function probeFailure(out: string, step: string): { diagnosis: string; fix: string } {
  const lines = out.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`✗ ${step} `));
  assert.ok(i >= 0, `no ✗ ${step} line in:\n${out}`);
  return { diagnosis: lines[i + 1] ?? '', fix: lines[i + 2] ?? '' };
}

/** Both say the same thing: the cause in the log line and the probe's diagnosis, the fix in both. */
function same(c: Case, r: { reason: string; probe: string }, t?: TestContext): void {
  const p = probeFailure(r.probe, c.step);
  t?.diagnostic(`log: ${r.reason}`);
  t?.diagnostic(`probe: ${p.diagnosis.trim()} | ${p.fix.trim()}`);
  assert.match(r.reason, c.cause, `log line: ${r.reason}`);
  assert.match(r.reason, c.fix, `log line: ${r.reason}`);
  assert.match(p.diagnosis, c.cause, r.probe);
  assert.match(p.fix, c.fix, r.probe);
  // pflogsumm's deferral summary cuts at ": ": OpenSSL's own "error:0A00010B:SSL routines::..." never sits inside ours
  assert.doesNotMatch(r.reason, /SSL routines|error:[0-9A-F]{8}/, r.reason);
  c.log?.(r.reason);
}

/** Every case's status line, for the pflogsumm check at the end. */
const logged: string[] = [];

/** The lines of one pflogsumm report section ("message deferral detail", …), without its title. */
function pflogsummSection(report: string, title: string): string[] {
  const lines = report.split('\n');
  const start = lines.findIndex((l) => l.startsWith(title));
  assert.ok(start >= 0, `no "${title}" in:\n${report}`);
  const end = lines.findIndex((l, i) => i > start + 1 && l === '');
  return lines.slice(start + 2, end < 0 ? undefined : end);
}

/** A pflogsumm section's count lines ("  3   reason"), and the sum of their counts. */
function pflogsummCounts(report: string, title: string): { lines: string[]; total: number } {
  const lines = pflogsummSection(report, title).filter((l) => /^\s+\d+\s+\S/.test(l));
  return { lines, total: lines.reduce((n, l) => n + Number(/^\s+(\d+)/.exec(l)![1]), 0) };
}

const upstream = (opts: UpstreamOptions) => async () => {
  const up = await startUpstream(opts);
  cleanups.push(() => up.close());
  return { port: up.port, url: up.url, caFile: up.caFile };
};

describe('failure wording: the log line says what probe says', () => {
  it('refused: nothing listens on that port; check the port in url', async (t) => {
    const c: Case = { relay: () => '', url: (port) => `smtp://127.0.0.1:${port}`, step: 'connect',
      cause: /nothing listens on port \d+ there/, fix: /check the port in url/,
      log: (l) => assert.match(l, /^connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: Connection refused; /) };
    same(c, await run(c, async () => ({ port: await freePort(), url: '', caFile: '' })), t);
  });

  it('timed out: a server that never greets (and speaks no TLS either)', async (t) => {
    const c: Case = { relay: () => '', url: (port) => `smtp://127.0.0.1:${port}`, step: 'banner',
      cause: /sent no greeting within 1s \(it does not speak TLS on this port either\)/, fix: /check the port \(587 for STARTTLS, 465 for TLS\)/,
      log: (l) => assert.match(l, /^conversation with 127\.0\.0\.1\[127\.0\.0\.1\] timed out while receiving the initial server greeting; /) };
    same(c, await run(c, async () => { const port = await rawServer(() => undefined); return { port, url: '', caFile: '' }; }), t);
  });

  it('no AUTH offered, and the server wants a login', async (t) => {
    const c: Case = { relay: (dir) => `tls = "none"\nallow_plaintext_auth = true\n${LOGIN(dir)}`, step: 'mail', status: 'bounced',
      cause: /offers no AUTH at all, so smarthost could not log in as "alice"/, fix: /use the provider's submission port/,
      log: (l) => assert.match(l, /^host 127\.0\.0\.1\[127\.0\.0\.1\] said: 530 5\.7\.0 Authentication required \(in reply to MAIL FROM command\); /) };
    same(c, await run(c, upstream({ faults: [{ stage: 'mail', action: 'reply', reply: '530 5.7.0 Authentication required' }] })), t);
  });

  it('wrong password: names the username and where the password came from, never the password', async (t) => {
    const c: Case = { relay: (dir, ca) => `tls = "verify"\nca_file = "${ca}"\n${LOGIN(dir)}`, step: 'auth',
      cause: /rejected username "alice" with the password from password_file .*relay\.secret \(AUTH PLAIN\)/, fix: /check the username and the password in password_file/,
      log: (l) => assert.match(l, /^SASL PLAIN authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 /) };
    const r = await run(c, upstream({ tls: 'starttls', auth: { users: { alice: 'other' }, required: true } }));
    same(c, r, t);
    assert.doesNotMatch(r.d.logs() + r.probe, new RegExp(USERS.alice));
  });

  it('sender refused by the provider: suggests [rewrite] senders, and says nothing about the password', async (t) => {
    const c: Case = { relay: (dir, ca) => `tls = "verify"\nca_file = "${ca}"\n${LOGIN(dir)}`, step: 'mail', status: 'bounced',
      cause: /rejected the sender <app@relay\.test> as a return address/, fix: /\[rewrite\] senders = \{ "@relay\.test" = "you@yourdomain" \}/,
      log: (l) => {
        assert.match(l, /^host 127\.0\.0\.1\[127\.0\.0\.1\] said: 553 5\.7\.1 Sender address rejected: not owned by user alice \(in reply to MAIL FROM command\); /);
        assert.doesNotMatch(l, /password_file|logged in as/);
      } };
    same(c, await run(c, upstream({ tls: 'starttls', auth: { users: USERS }, faults: [{ stage: 'mail', action: 'reply', reply: '553 5.7.1 Sender address rejected: not owned by user alice' }] })), t);
  });

  it('AUTH only without TLS: credentials are never sent in clear text', async (t) => {
    const c: Case = { relay: (dir) => `tls = "may"\n${LOGIN(dir)}`, step: 'starttls',
      cause: /does not offer STARTTLS, so with tls = "may" mail would go in plaintext, and the credentials for "alice" would not be sent/,
      fix: /use the provider's TLS port smtps:\/\/127\.0\.0\.1:465 or its STARTTLS port smtp:\/\/127\.0\.0\.1:587; allow_plaintext_auth = true only for a tunnel/ };
    same(c, await run(c, upstream({ tls: 'none', auth: { users: USERS, allowPlaintext: true } })), t);
  });

  it('no common mechanism: lists every mechanism the server offers', async (t) => {
    const c: Case = { relay: (dir, ca) => `tls = "verify"\nca_file = "${ca}"\n${LOGIN(dir)}\nmechanisms = ["PLAIN"]`, step: 'auth',
      cause: /the server offers AUTH CRAM-MD5 DIGEST-MD5, but mechanisms = \["PLAIN"\] allows none of them/, fix: /add one of them, e\.g\. mechanisms = \["CRAM-MD5"\]/ };
    same(c, await run(c, upstream({ tls: 'starttls', auth: { users: USERS, required: true, methods: ['CRAM-MD5', 'DIGEST-MD5'] } })), t);
  });

  it('untrusted CA: set ca_file', async (t) => {
    const c: Case = { relay: () => 'tls = "verify"', step: 'certificate',
      cause: /is not signed by a trusted CA/, fix: /set ca_file to the CA that signed it/,
      log: (l) => assert.match(l, /^the certificate of 127\.0\.0\.1\[127\.0\.0\.1\] is not signed by a trusted CA; /) };
    same(c, await run(c, upstream({ tls: 'starttls' })), t);
  });

  it('wrong certificate name: names the names it is for', async (t) => {
    const c: Case = { relay: (_d, ca) => `tls = "verify"\nca_file = "${ca}"`, step: 'certificate',
      cause: /is for other names \(DNS:wrong\.example/, fix: /use a url with one of those names, or set tls = "encrypt"/ };
    same(c, await run(c, upstream({ tls: 'starttls', cert: 'wrongName' })), t);
  });

  it('smtp:// against an implicit-TLS port: use smtps://', async (t) => {
    let port = 0;
    const c: Case = { relay: (_d, ca) => `tls = "verify"\nca_file = "${ca}"`, url: (p) => `smtp://127.0.0.1:${p}`, step: 'banner',
      cause: /this port expects TLS from the first byte/, fix: /use smtps:\/\/127\.0\.0\.1:\d+/,
      log: (l) => assert.match(l, new RegExp(`^conversation with 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] timed out while receiving the initial server greeting; .*use smtps://127\\.0\\.0\\.1:${port}$`)) };
    same(c, await run(c, async () => { const p = await upstream({ tls: 'implicit' })(); port = p.port; return p; }), t);
  });

  it('smtps:// against a STARTTLS port: use smtp://', async (t) => {
    let port = 0;
    const c: Case = { relay: (_d, ca) => `tls = "verify"\nca_file = "${ca}"`, url: (p) => `smtps://127.0.0.1:${p}`, step: 'tls',
      cause: /because this port speaks plain SMTP/, fix: /use smtp:\/\/127\.0\.0\.1:\d+ \(plain SMTP with STARTTLS\)/,
      log: (l) => assert.match(l, new RegExp(`use smtp://127\\.0\\.0\\.1:${port} `)) };
    same(c, await run(c, async () => { const p = await upstream({ tls: 'starttls' })(); port = p.port; return p; }), t);
  });

  it('a multi-line 5xx after DATA: every line of the reply is kept', async (t) => {
    const c: Case = { relay: () => 'tls = "none"', url: (port) => `smtp://127.0.0.1:${port}`, step: 'data', status: 'bounced', sendTest: true,
      cause: /the server refused the (test )?message/, fix: /read the reply; size limits, content filters and sender policies answer here/,
      log: (l) => assert.ok(l.startsWith(`host 127.0.0.1[127.0.0.1] said: ${MULTILINE_554.join(' ')} (in reply to end of DATA command); `), l) };
    const r = await run(c, async () => ({ port: await multiLinePeer(), url: '', caFile: '' }));
    same(c, r, t);
    assert.ok(probeFailure(r.probe, 'data').diagnosis.includes(MULTILINE_554.join(' ')), r.probe);
  });

  // The log lines are read by tools too: Debian's pflogsumm groups deferrals by the reason after
  // the last "host ... said:"/"connect to ...:" part; each case must be its own readable group.
  it('pflogsumm reads every line: one deferral group per cause, the bounce under its relay, no OpenSSL text', () => {
    const deferred = logged.filter((l) => l.includes('status=deferred')).length;
    assert.ok(deferred >= 9 && logged.some((l) => l.includes('status=bounced')), `the cases above ran first (${logged.length} lines)`);
    const r = spawnSync('pflogsumm', ['--syslog-name=smarthost'], { input: logged.join('\n') + '\n', encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { lines: groups, total: counted } = pflogsummCounts(r.stdout, 'message deferral detail');
    assert.equal(counted, deferred, r.stdout);
    assert.ok(groups.length >= deferred - 1, `causes kept apart, not lumped together:\n${groups.join('\n')}`);
    for (const g of groups) assert.doesNotMatch(g, /SSL routines|error:[0-9A-F]{8}/, g);
    assert.ok(groups.some((g) => /Connection refused/.test(g)), groups.join('\n'));
    const bounces = pflogsummSection(r.stdout, 'message bounce detail');
    assert.equal(pflogsummCounts(r.stdout, 'message bounce detail').total, logged.length - deferred, r.stdout);
    assert.ok(bounces.some((l) => /127\.0\.0\.1/.test(l)) && bounces.some((l) => /554/.test(l)), bounces.join('\n'));
  });
});
