// `smarthost import` end to end, on the five fixture set-ups (test/fixtures/import,
// each with its EXPECTED.md): the built CLI writes smarthost.toml and 0600
// password files, prints the report EXPECTED.md asks for, and `check` passes on
// the result. Each imported config then runs against real peers (test upstreams, a
// DNS stub for MX), and the tests assert what EXPECTED.md says the set-up does.
//
// How `check` is made to pass honestly: certificates are not part of the
// fixtures, so each test imports from a copy of the fixture into which it puts
// test certificates under the names main.cf uses (the importer reads paths under
// /etc/postfix from the folder given, and writes where it found them). Ports
// 25/443 and "[::]" are the set-up's own; for `check` and the daemon the test
// rewrites every listen address to 127.0.0.1:0 and, for delivery, the relay url's
// host and port to the test upstream (the imported scheme stays). Everything else in
// the file is as imported, except where a test says why it adds something.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { launch, removeDir, ROOT, runCli, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';
import { testCerts } from '../peers/certs.js';
import { startDnsServer } from '../peers/dns-server.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/import');
const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

interface Imported { dir: string; setup: string; out: string; status: number | null; stdout: string; stderr: string; toml: string }

/** Copies a fixture into a temp dir with `extra` files (name -> text, written 0600), and imports it. */
function importFixture(name: string, extra: Record<string, string> = {}, args: string[] = []): Imported {
  const dir = tempDir('smarthost-import-e2e-');
  dirs.push(dir);
  const setup = path.join(dir, 'setup');
  fs.cpSync(path.join(FIXTURES, name), setup, { recursive: true });
  for (const [file, text] of Object.entries(extra)) {
    fs.mkdirSync(path.dirname(path.join(setup, file)), { recursive: true });
    fs.writeFileSync(path.join(setup, file), text, { mode: 0o600 });
  }
  const out = path.join(dir, 'out', 'smarthost.toml');
  const source = name.startsWith('sendmail') ? path.join(setup, 'sendmail.mc') : setup;
  const r = runCli(['import', name.startsWith('sendmail') ? 'sendmail' : 'postfix', source, '-o', out, '--data-dir', path.join(dir, 'data'), ...args]);
  const toml = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  return { dir, setup, out, ...r, toml };
}

/**
 * Every listen address to 127.0.0.1:0, and optionally the relay url's host and port to a test
 * upstream. The imported scheme stays: an import that wrote smtp:// for an implicit-TLS hop
 * (or smtps:// for a STARTTLS one) fails against the upstream instead of being corrected here.
 */
function localise(file: string, relay?: { host: string; port: number }): void {
  let t = fs.readFileSync(file, 'utf8').replace(/^address = "[^"]*"$/gm, 'address = "127.0.0.1:0"');
  if (relay) t = t.replace(/^url = "(smtps?):\/\/[^"]*"$/m, (_, scheme: string) => `url = "${scheme}://${relay.host}:${relay.port}"`);
  fs.writeFileSync(file, t);
}

function assertLines(output: string, expected: RegExp[]): void {
  for (const re of expected) assert.match(output, re, `expected ${re} in:\n${output}`);
}

function assertChecked(imp: Imported): void {
  assert.equal(imp.status, 0, `import exit status\nstdout:\n${imp.stdout}\nstderr:\n${imp.stderr}`);
  assert.match(imp.stdout, new RegExp(`smarthost check -c ${imp.out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\n(.|\\n)*configuration ${imp.out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `), 'the import runs check on its result');
  assert.match(imp.toml, /^# smarthost\.toml written by `smarthost import /m);
  localise(imp.out);
  const c = runCli(['check', '-c', imp.out]);
  assert.equal(c.status, 0, `check on the imported file (listen addresses made local)\nstdout:\n${c.stdout}\nstderr:\n${c.stderr}\nfile:\n${fs.readFileSync(imp.out, 'utf8')}`);
  assert.doesNotMatch(c.stderr, /^error:/m);
}

function assertSecret(imp: Imported, name: string, password: string): void {
  const file = path.join(path.dirname(imp.out), name);
  assert.equal(fs.readFileSync(file, 'utf8'), password + '\n');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, `${file} mode`);
  assert.match(imp.toml, new RegExp(`^password_file = "${name.replace('.', '\\.')}"`, 'm'));
  assert.ok(!imp.toml.includes(password), 'the password is not in the TOML');
}

const certs = testCerts();
const serverPem = certs.valid.key + certs.valid.cert; // Postfix's habit: key and certificate in one file

describe('smarthost import: the fixtures', () => {
  it('postfix-port443-mailgun', () => {
    const imp = importFixture('postfix-port443-mailgun', { 'mydomain-org.pem': serverPem, 'StartCom_CA.pem': certs.ca, 'GeoTrust_Global_CA.pem': certs.ca });
    assertLines(imp.stdout, [
      /master\.cf smtp inet smtpd → \[\[listen\]\] address = "\[::\]:25", tls = "none", auth = "none"/,
      /master\.cf 443 inet smtpd → \[\[listen\]\] address = "\[::\]:443", tls = "starttls-required", auth = "required"/,
      /mynetworks_style = host → trusted_networks = \["127\.0\.0\.0\/8", "::1\/128"\]/,
      /relayhost = \[smtp\.mailgun\.org\]:587 → \[relay\] url = "smtp:\/\/smtp\.mailgun\.org:587", tls = "may"/,
      /smtp_sasl_password_maps \[smtp\.mailgun\.org\]:587 \(user postmaster@mg\.example\.com\) → \[relay\] username = "postmaster@mg\.example\.com"/,
      /smtp_tls_CAfile = \/etc\/postfix\/GeoTrust_Global_CA\.pem → ca_file = ".*\/setup\/GeoTrust_Global_CA\.pem"/,
      /smtpd_tls_cert_file = \/etc\/postfix\/mydomain-org\.pem, smtpd_tls_key_file = \/etc\/postfix\/mydomain-org\.pem → \[tls\] certificate/,
      /mydestination = \$myhostname, localhost\.\$mydomain, localhost → \[local\] domains/,
      /sasl\/smtpd\.conf mech_list: plain login → AUTH PLAIN and LOGIN/,
      /^not carried over:$/m,
      /myhostname = \(empty\): Postfix refuses to start with it/,
      /inbound SASL users in the Cyrus database \/etc\/postfix\/sasldb2: .*`smarthost user add NAME`/,
      /broken_sasl_auth_clients = yes: the old Outlook "AUTH=" EHLO form/,
      /smtpd_tls_mandatory_ciphers = medium: /, /smtpd_tls_mandatory_protocols = !SSLv2, !SSLv3: /,
      /smtpd_tls_loglevel = 0: /, /smtp_tls_note_starttls_offer = yes: /,
      /master\.cf 443: -o milter_macro_daemon_name=ORIGINATING: smarthost runs no milters/,
      /smtpd_sasl_type = cyrus: /, /smtpd_sasl_path = smtpd: /,
      /smtpd_tls_CAfile = \/etc\/postfix\/StartCom_CA\.pem: .*append the intermediate/,
      /Postfix would have sent the password to smtp\.mailgun\.org without TLS/,
    ]);
    assertSecret(imp, 'relay.secret', 's3cret-placeholder');
    assert.match(imp.toml, /^# master\.cf line 52: 443 inet smtpd -o smtpd_sasl_auth_enable=yes/m);
    assertChecked(imp);
  });

  it('postfix-stunnel-465', () => {
    const imp = importFixture('postfix-stunnel-465');
    assertLines(imp.stdout, [
      /→ \[\[listen\]\] address = "127\.0\.0\.1:25", tls = "none", auth = "none"/,
      /→ \[\[listen\]\] address = "\[::1\]:25", tls = "none", auth = "none"/,
      /relayhost = \[127\.0\.0\.1\]:2525 \+ stunnel\.conf \[req\] connect = smtp\.verizon\.net:465 → \[relay\] url = "smtps:\/\/smtp\.verizon\.net:465", tls = "encrypt" \(the stunnel hop disappears/,
      /smtp_sasl_password_maps \[127\.0\.0\.1\]:2525 \(user accountname@verizon\.net\) → \[relay\] username = "accountname@verizon\.net"/,
      /stunnel \(.*stunnel\.conf: client = yes, foreground = no, accept = 2525, connect = smtp\.verizon\.net:465\): not needed any more/,
      /stunnel checked no certificate .*tls = "verify" would be stricter/,
      /install paths \(queue_directory, /, /debug_peer_level = 2: /, /debugger_command = PATH=/,
    ]);
    assertSecret(imp, 'relay.secret', 's3cret-placeholder');
    assert.match(imp.toml, /^# from Postfix relayhost = \[127\.0\.0\.1\]:2525 and stunnel\.conf \[req\]/m);
    assertChecked(imp);
  });

  it('postfix-tls-per-site', () => {
    const imp = importFixture('postfix-tls-per-site', { 'tls/smtp-client.pem': certs.client.key + certs.client.cert, 'tls/CAcert.pem': certs.ca });
    assertLines(imp.stdout, [
      /→ \[\[listen\]\] address = "0\.0\.0\.0:25", tls = "none", auth = "none"/,
      /mynetworks_style \(default\) → trusted_networks/,
      /mynetworks_style = subnet: Postfix trusted every client in the IP subnets/,
      /relayhost = smtp\.myisp\.com → \[relay\] url = "smtp:\/\/smtp\.myisp\.com:25", tls = "encrypt"/,
      /smtp\.myisp\.com has no \[brackets\]: Postfix looked up MX records/,
      /smtp_sasl_password_maps smtp\.myisp\.com \(user myid\) → \[relay\] username = "myid"/,
      /smtp_tls_cert_file = \/etc\/postfix\/tls\/smtp-client\.pem, smtp_tls_key_file = \$smtp_tls_cert_file → client_certificate = ".*smtp-client\.pem", client_key = ".*smtp-client\.pem"/,
      /smtp_tls_per_site internal-mailserver\.example\.com NONE: no effect here/,
      /smtp_tls_per_site mail\.example\.org MUST: no effect here/,
      /smtp_tls_per_site mx\.example\.net MAY: no effect here/,
      /tls_random_source = dev:\/dev\/urandom: /, /smtp_tls_loglevel = 2: /,
    ]);
    assert.match(imp.toml, /^# TLS: smtp_tls_per_site smtp\.myisp\.com MUST_NOPEERMATCH \(global: smtp_use_tls = yes\)$/m);
    assertSecret(imp, 'relay.secret', 's3cret-placeholder');
    assertChecked(imp);
  });

  it('postfix-basic-host', () => {
    const imp = importFixture('postfix-basic-host');
    assertLines(imp.stdout, [
      /myhostname = alpha\.example\.com → hostname = "alpha\.example\.com"/,
      /→ \[\[listen\]\] address = "\[::\]:25", tls = "none", auth = "none"/,
      /mynetworks = 203\.0\.113\.10\/32, 127\.0\.0\.0\/8 → trusted_networks = \["203\.0\.113\.10\/32", "127\.0\.0\.0\/8"\]/,
      /mynetworks_style = host: Postfix ignores it when mynetworks is given/,
      /relayhost \(unset\) → no \[relay\]/,
      /mydestination = \$myhostname, localhost\.\$mydomain, localhost, \$mydomain → \[local\] domains = \["alpha\.example\.com", "localhost\.example\.com", "localhost", "example\.com"\]/,
      /alias_maps hash:\/etc\/aliases → \[local\] aliases = ".*\/setup\/aliases"/,
      /unknown_local_recipient_reject_code = 550 → unknown local users get 550/,
      /myorigin = \$mydomain → \[rewrite\] senders "@alpha\.example\.com" = "@example\.com": bare names/,
      /existing mbox mailboxes \(\/var\/mail\/USER\) are not converted/,
      /debug_peer_level = 2: /, /debugger_command = /,
    ]);
    assert.equal(fs.readdirSync(path.dirname(imp.out)).filter((f) => f.endsWith('.secret')).length, 0, 'no credentials, no secret files');
    assert.match(imp.toml, /^\[rewrite\.senders\]\n"@alpha\.example\.com" = "@example\.com"$/m, "bare names leave @example.com (EXPECTED.md)");
    assertChecked(imp);
    // check read the imported aliases file: root -> bob, www -> webmaster
    assert.match(runCli(['check', '-c', imp.out]).stdout, /aliases 0 \+ \d+ in .*\/setup\/aliases/);
  });

  it('sendmail-authinfo', () => {
    const imp = importFixture('sendmail-authinfo');
    assertLines(imp.stdout, [
      /DAEMON_OPTIONS Name=IPv4, Family=inet \+ Name=IPv6, Family=inet6, Modifiers=O → \[\[listen\]\] address = "\[::\]:25", tls = "none", auth = "none"/,
      /Sendmail's default MSA\) → \[\[listen\]\] address = "0\.0\.0\.0:587"/,
      /SMART_HOST \[127\.0\.0\.1\] \+ RELAY_MAILER_ARGS TCP \$h 2525 \+ stunnel\.conf \[smtps\] connect = smtp\.att\.yahoo\.com:smtps → \[relay\] url = "smtps:\/\/smtp\.att\.yahoo\.com:465", tls = "encrypt"/,
      /AuthInfo: "U:myname@sbcglobal\.net" "M:LOGIN PLAIN" → \[relay\] username = "myname@sbcglobal\.net", password_file \(mode 0600\), mechanisms = \["LOGIN", "PLAIN"\]/,
      /AuthInfo:smtp\.att\.yahoo\.com: not used: Sendmail connected to 127\.0\.0\.1 and took AuthInfo: \(the same credentials\)/,
      /define\(confLOG_LEVEL, 20\): /,
      /FEATURE\(access_db, /, /FEATURE\(mailertable, /, /FEATURE\(virtusertable, /,
      /hand edits of the generated sendmail\.cf/,
    ]);
    assertSecret(imp, 'relay.secret', 's3cret-placeholder');
    assertChecked(imp);
  });
});

describe('smarthost import: files and errors', () => {
  it('never overwrites without --force, and overwrites with it', () => {
    const first = importFixture('postfix-stunnel-465');
    assert.equal(first.status, 0, first.stderr);
    fs.writeFileSync(first.out, '# mine\n');
    const again = runCli(['import', 'postfix', first.setup, '-o', first.out]);
    assert.equal(again.status, 73, again.stderr);
    assert.match(again.stderr, /smarthost import: .*smarthost\.toml, .*relay\.secret already exist; nothing was written \(use --force to overwrite/);
    assert.equal(fs.readFileSync(first.out, 'utf8'), '# mine\n');
    const secret = path.join(path.dirname(first.out), 'relay.secret');
    fs.chmodSync(secret, 0o644);
    const forced = runCli(['import', 'postfix', first.setup, '-o', first.out, '--force', '--data-dir', path.join(first.dir, 'data')]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(fs.readFileSync(first.out, 'utf8'), /^url = "smtps:\/\/smtp\.verizon\.net:465"$/m);
    assert.equal(fs.statSync(secret).mode & 0o777, 0o600, 'an overwritten secret is 0600 again');
  });

  it('exits 66 with a clear message when the set-up cannot be read, writing nothing', () => {
    const dir = tempDir('smarthost-import-e2e-');
    dirs.push(dir);
    const r = runCli(['import', 'postfix', path.join(dir, 'nope'), '-o', path.join(dir, 'out.toml')]);
    assert.equal(r.status, 66);
    assert.match(r.stderr, /^smarthost import: cannot read .*nope\/main\.cf: no such file/);
    assert.equal(fs.existsSync(path.join(dir, 'out.toml')), false);
    const s = runCli(['import', 'sendmail', path.join(dir, 'sendmail.mc')]);
    assert.equal(s.status, 66);
    assert.match(s.stderr, /cannot read .*sendmail\.mc: no such file/);
  });

  it('has --help and refuses unknown kinds', () => {
    const h = runCli(['import', '--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /^usage: smarthost import postfix \[DIR\]/);
    const u = runCli(['import', 'exim']);
    assert.equal(u.status, 64);
    assert.match(u.stderr, /cannot import "exim": postfix or sendmail/);
    assert.match(runCli(['--help']).stdout, /import postfix\|sendmail/);
  });
});

describe('smarthost import: imported configs against real peers', () => {
  let mailgun: Upstream;
  let verizon: Upstream;
  let att: Upstream;
  const running: RunningDaemon[] = [];
  const peers: Array<{ close(): Promise<void> }> = [];
  /** A test upstream (or DNS stub), closed after the suite. */
  async function peer<T extends { close(): Promise<void> }>(started: Promise<T>): Promise<T> {
    const p = await started;
    peers.push(p);
    return p;
  }
  before(async () => {
    mailgun = await peer(startUpstream({ tls: 'starttls', auth: { users: { 'postmaster@mg.example.com': 's3cret-placeholder' }, required: true } }));
    verizon = await peer(startUpstream({ tls: 'implicit', auth: { users: { 'accountname@verizon.net': 's3cret-placeholder' }, required: true } }));
    // PLAIN first, as smarthost's default mechanisms = ["PLAIN", "LOGIN"] would choose it
    att = await peer(startUpstream({ tls: 'implicit', auth: { users: { 'myname@sbcglobal.net': 's3cret-placeholder' }, required: true, methods: ['PLAIN', 'LOGIN'] } }));
  });
  after(async () => {
    await Promise.all(running.map((d) => d.stop()));
    await Promise.all(peers.map((p) => p.close()));
  });

  interface RunOptions {
    /** Files put into the copy of the fixture (see importFixture). */
    extra?: Record<string, string>;
    /** A change to the localised TOML that the test needs (and explains). */
    edit?: (toml: string) => string;
    /** Runs before the daemon starts, e.g. `smarthost user add`. */
    prepare?: (imp: Imported) => void;
  }

  /** Imports the fixture (status 0), localises it (the relay's host:port to `relay`), and starts the daemon on the result. */
  async function run(name: string, relay: Upstream | undefined, opts: RunOptions = {}): Promise<{ imp: Imported; d: RunningDaemon }> {
    const imp = importFixture(name, opts.extra);
    assert.equal(imp.status, 0, imp.stderr);
    localise(imp.out, relay);
    if (opts.edit) fs.writeFileSync(imp.out, opts.edit(fs.readFileSync(imp.out, 'utf8')));
    opts.prepare?.(imp);
    const d = await launch(imp.dir, imp.out);
    running.push(d);
    return { imp, d };
  }

  /** Sends one message in on the daemon's first listener, without TLS or AUTH (a trusted client), and returns what `up` received. */
  async function relayedBy(d: RunningDaemon, up: Upstream, from: string, to: string) {
    await submit(d.ports[0]!, from, [to]);
    const [m] = await up.waitForMessages(1, 10_000);
    assert.deepEqual(m!.to, [to]);
    return m!;
  }

  it('postfix-port443-mailgun: 530 without STARTTLS on the 443 listener, relayed with the imported login', async () => {
    const { d } = await run('postfix-port443-mailgun', mailgun, {
      extra: { 'mydomain-org.pem': serverPem, 'StartCom_CA.pem': certs.ca, 'GeoTrust_Global_CA.pem': certs.ca },
      prepare: (imp) => {
        const add = runCli(['user', 'add', 'supercoolusername', '--password-stdin', '-c', imp.out], { input: 'pw-of-the-user\n' });
        assert.equal(add.status, 0, add.stderr);
      },
    });
    const [, port443] = d.ports as [number, number];
    const raw = await RawSmtp.connect(port443);
    await raw.read();
    await raw.cmd('EHLO client.test');
    assert.match((await raw.cmd('MAIL FROM:<a@example.org>')).text, /^530 5\.7\.0 Must issue a STARTTLS command first/);
    raw.close();
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: port443, secure: false, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: 'supercoolusername', pass: 'pw-of-the-user' } });
    await t.sendMail({ from: 'user@example.org', to: 'bob@example.net', subject: 'via 443', text: 'hello' });
    t.close();
    const [m] = await mailgun.waitForMessages(1, 10_000);
    assert.deepEqual(m!.to, ['bob@example.net']);
    assert.equal(m!.authUser, 'postmaster@mg.example.com');
    assert.equal(m!.secure, true, 'STARTTLS to the upstream (tls = "may", offered)');
  });

  it('postfix-stunnel-465: delivered straight over implicit TLS with the imported credentials', async () => {
    const { imp, d } = await run('postfix-stunnel-465', verizon);
    assert.match(imp.toml, /^url = "smtps:\/\/smtp\.verizon\.net:465"\ntls = "encrypt"$/m);
    const m = await relayedBy(d, verizon, 'cron@example.org', 'carol@example.net');
    assert.equal(m.authUser, 'accountname@verizon.net');
    assert.equal(m.secure, true);
    assert.equal(verizon.sessions[0]!.commands.includes('STARTTLS'), false, 'TLS from the first byte, no STARTTLS');
  });

  it('sendmail-authinfo: the stunnel hop becomes smtps:// with the AuthInfo login, mechanism LOGIN first', async () => {
    const { d } = await run('sendmail-authinfo', att);
    const m = await relayedBy(d, att, 'www@example.org', 'dave@example.net');
    assert.equal(m.secure, true, 'implicit TLS (the imported url is smtps://)');
    assert.equal(m.authUser, 'myname@sbcglobal.net');
    // the upstream offers PLAIN LOGIN; "M:LOGIN PLAIN" imported as mechanisms = ["LOGIN", "PLAIN"] picks LOGIN
    assert.equal(m.authMethod, 'LOGIN');
    assert.equal(att.sessions.some((s) => s.commands.includes('STARTTLS')), false, 'TLS from the first byte, no STARTTLS');
  });

  describe('postfix-tls-per-site', () => {
    const tlsFiles = { 'tls/smtp-client.pem': certs.client.key + certs.client.cert, 'tls/CAcert.pem': certs.ca };

    it('relays with the client certificate and the saslpw login; MUST_NOPEERMATCH: TLS, no name check', async () => {
      // the certificate is the test CA's, for other names: MUST_NOPEERMATCH (tls = "encrypt")
      // accepts it, a "verify" level would defer; the upstream refuses the handshake without a
      // client certificate signed by the test CA
      const isp = await peer(startUpstream({ tls: 'starttls', cert: 'wrongName', requireClientCert: true, auth: { users: { myid: 's3cret-placeholder' }, required: true } }));
      const { d } = await run('postfix-tls-per-site', isp, { extra: tlsFiles });
      const m = await relayedBy(d, isp, 'root@example.org', 'erin@example.net');
      assert.equal(m.secure, true);
      assert.equal(m.authUser, 'myid');
      const session = isp.sessions.find((s) => s.authUser === 'myid');
      assert.equal(session?.clientCertSubject, 'CN=smarthost test client', 'the imported client certificate was presented');
    });

    it('MUST_NOPEERMATCH is mandatory: an ISP relay without STARTTLS gets no mail', async () => {
      // the same ISP without STARTTLS: deferred because TLS is required (with tls = "may" it would
      // be deferred too, but only because the password is never sent in clear: hence the reason)
      const plain = await peer(startUpstream({ tls: 'none' }));
      const { d } = await run('postfix-tls-per-site', plain, { extra: tlsFiles });
      const id = await submit(d.ports[0]!, 'root@example.org', ['frank@example.net']);
      await d.waitForLog(new RegExp(`${id}: to=<frank@example\\.net>, .*dsn=4\\.7\\.4, status=deferred \\(TLS is required, but host .* did not start TLS`));
      assert.equal(plain.messages.length, 0);
    });
  });

  it('postfix-basic-host: aliases to a Maildir, the trusted network relays to the MX, bare senders leave @example.com', async () => {
    const mx = await peer(startUpstream({}));
    const dns = await peer(startDnsServer({ 'example.net': { MX: [{ preference: 10, exchange: 'mx.example.net' }] }, 'mx.example.net': { A: ['127.0.0.1'] } }));
    // The aliases end at root -> bob; bob is no account on the test machine (root is, but its
    // mail goes on to bob), so the test names the local users. Everything else is as imported:
    // domains, the aliases file, trusted_networks, hostname and the sender rewrite. The MX of
    // example.net is the test upstream, through the DNS stub.
    const { imp, d } = await run('postfix-basic-host', undefined, {
      edit: (t) => t.replace(/^\[local\]$/m, '[local]\nusers = ["bob"]') + `\n[mx]\nnameservers = ["${dns.address}"]\nport = ${mx.port}\n`,
    });
    // www -> webmaster -> root -> bob, postmaster -> root -> bob
    // (two messages: one message to both would be one copy, as the aliases end at the same mailbox)
    for (const to of ['www@alpha.example.com', 'postmaster@example.com']) await submit(d.ports[0]!, 'someone@example.org', [to]);
    const maildir = path.join(d.dataDir, 'mail', 'bob', 'new');
    await waitFor(() => fs.existsSync(maildir) && fs.readdirSync(maildir).length === 2, () => `two messages in ${maildir}; log:\n${d.logs()}`, 500, 20);
    // 127.0.0.1 is in the imported trusted_networks: it relays to another domain without AUTH
    await submit(d.ports[0]!, 'someone@example.org', ['heidi@example.net']);
    // a bare name posted locally: qualified with myhostname, rewritten to @example.com as it leaves
    const r = runCli(['sendmail', '-C', imp.out, '-f', 'cron', '-i', 'grace@example.net'], { input: 'Subject: nightly\n\ndone\n' });
    assert.equal(r.status, 0, r.stderr);
    const got = await mx.waitForMessages(2, 10_000);
    assert.deepEqual(got.map((m) => [m.from, m.to]).sort(), [['cron@example.com', ['grace@example.net']], ['someone@example.org', ['heidi@example.net']]]);
    assert.ok(dns.queries.some((q) => q.name === 'example.net' && q.type === 'MX'), 'delivered via the MX lookup');
  });
});
