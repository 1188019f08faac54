// The mapping from whole set-ups (the fixtures and small variants written here)
// to an ImportedConfig, its TOML, and the report; every generated file is
// parsed back through config/load.ts, as the CLI does.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import { ImportInputError, type ImportOptions } from './context.js';
import { importPostfix } from './postfix-import.js';
import { formatReport, type ImportReport } from './import-report.js';
import { importSendmail } from './sendmail-import.js';
import { secretFiles, writeToml } from './toml-writer.js';
import { rewriteAddress } from '../smtp/sender-rewrite.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/import/', import.meta.url));
const OPTS: ImportOptions = { dataDir: '/var/lib/smarthost', host: { hostname: 'box.example.net', networks: ['192.0.2.0/24'] } };
const tmp: string[] = [];
after(() => tmp.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A set-up written into a temp dir: file name -> text. */
function setup(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-import-'));
  tmp.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** Generates the TOML and parses it back; fails the test on any problem. */
function valid(r: ReturnType<typeof importPostfix>) {
  const text = writeToml(r.config, 'test');
  const { config, problems } = parseConfig(text, '/tmp/out/smarthost.toml');
  assert.deepEqual(problems, [], text);
  return { text, config: config!, report: formatReport(r.report, 'in', 'out') };
}

const has = (report: ImportReport, re: RegExp) => [...report.carried.map((c) => `${c.from} → ${c.to}`), ...report.skipped.map((s) => `${s.setting}: ${s.why}`), ...report.notes].some((l) => re.test(l));

describe('import postfix: the fixtures', () => {
  it('postfix-port443-mailgun: a 443 listener with STARTTLS and AUTH required, Mailgun on 587', () => {
    const r = importPostfix(path.join(FIXTURES, 'postfix-port443-mailgun'), OPTS);
    const { config, text } = valid(r);
    assert.deepEqual(config.listen.map((l) => [l.address, l.tls, l.auth]), [['[::]:25', 'none', 'none'], ['[::]:443', 'starttls-required', 'required']]);
    assert.deepEqual(config.listen[0]!.trustedNetworks.map((n) => n.text), ['127.0.0.0/8', '::1/128']);
    assert.equal(config.relay?.url, 'smtp://smtp.mailgun.org:587');
    assert.equal(config.relay?.tls, 'may');
    assert.equal(config.relay?.username, 'postmaster@mg.example.com');
    assert.equal(config.relay?.caFile, '/etc/postfix/GeoTrust_Global_CA.pem');
    assert.equal(config.tls.certificate, '/etc/postfix/mydomain-org.pem');
    assert.deepEqual(config.local.domains, ['box.example.net', 'localhost.example.net', 'localhost']);
    assert.doesNotMatch(text, /^hostname =/m, 'myhostname is empty: the system name is used at run time');
    assert.deepEqual([...secretFiles(r.config)], [['relay.secret', 's3cret-placeholder\n']]);
    assert.doesNotMatch(text, /s3cret/);
    assert.ok(has(r.report, /^myhostname = \(empty\): Postfix refuses to start/));
    assert.ok(has(r.report, /^broken_sasl_auth_clients = yes: /));
    assert.ok(has(r.report, /inbound SASL users in the Cyrus database \/etc\/postfix\/sasldb2: .*smarthost user add NAME/));
    assert.ok(has(r.report, /^milter_macro_daemon_name|master.cf 443: -o milter_macro_daemon_name=ORIGINATING: smarthost runs no milters/));
    assert.ok(has(r.report, /smtpd_tls_mandatory_ciphers = medium: .*TLS 1\.2/));
    assert.ok(has(r.report, /Postfix would have sent the password to smtp\.mailgun\.org without TLS/));
  });

  it('postfix-stunnel-465: the tunnel disappears into smtps://, credentials from [127.0.0.1]:2525', () => {
    const r = importPostfix(path.join(FIXTURES, 'postfix-stunnel-465'), OPTS);
    const { config } = valid(r);
    assert.deepEqual(config.listen.map((l) => [l.address, l.tls, l.auth]), [['127.0.0.1:25', 'none', 'none'], ['[::1]:25', 'none', 'none']]);
    assert.equal(config.relay?.url, 'smtps://smtp.verizon.net:465');
    assert.equal(config.relay?.tls, 'encrypt');
    assert.equal(config.relay?.username, 'accountname@verizon.net');
    assert.ok(has(r.report, /^relayhost = \[127\.0\.0\.1\]:2525 \+ stunnel\.conf \[req\] connect = smtp\.verizon\.net:465 → \[relay\] url = "smtps:\/\/smtp\.verizon\.net:465", tls = "encrypt"/));
    assert.ok(has(r.report, /^stunnel \(.*\): not needed any more.*accept = 2525 listened on every IPv4 address/));
    assert.ok(has(r.report, /^smtp_sasl_password_maps \[127\.0\.0\.1\]:2525 \(user accountname@verizon\.net\)/));
    assert.ok(has(r.report, /every listener is on loopback: only this host can connect/));
    assert.ok(!has(r.report, /Postfix trusted every client in the IP subnets/), 'no LAN hint for a loopback-only host');
  });

  it('postfix-tls-per-site: MUST_NOPEERMATCH makes the relay encrypt; other sites have no effect', () => {
    const r = importPostfix(path.join(FIXTURES, 'postfix-tls-per-site'), OPTS);
    const { config } = valid(r);
    assert.deepEqual(config.listen.map((l) => [l.address, l.tls, l.auth]), [['0.0.0.0:25', 'none', 'none']]);
    assert.equal(config.relay?.url, 'smtp://smtp.myisp.com:25');
    assert.equal(config.relay?.tls, 'encrypt');
    assert.equal(config.relay?.username, 'myid');
    assert.equal(config.relay?.clientCertificate, '/etc/postfix/tls/smtp-client.pem');
    assert.equal(config.relay?.clientKey, '/etc/postfix/tls/smtp-client.pem');
    assert.equal(config.relay?.caFile, '/etc/postfix/tls/CAcert.pem');
    assert.equal(config.relay?.allowPlaintextAuth, false, 'TLS is mandatory: no plaintext AUTH needed');
    for (const site of ['internal-mailserver.example.com NONE', 'mail.example.org MUST', 'mx.example.net MAY']) {
      assert.ok(has(r.report, new RegExp(`^smtp_tls_per_site ${site.replace(/\./g, '\\.')}: no effect here`)), site);
    }
    assert.ok(has(r.report, /mynetworks_style = subnet: Postfix trusted every client in the IP subnets .*192\.0\.2\.0\/24/));
    assert.ok(has(r.report, /^tls_random_source = dev:\/dev\/urandom: /));
    assert.ok(has(r.report, /smtp\.myisp\.com has no \[brackets\]: Postfix looked up MX records/));
  });

  it('postfix-basic-host: local domains, aliases file, mynetworks, direct MX', () => {
    const dir = path.join(FIXTURES, 'postfix-basic-host');
    const r = importPostfix(dir, OPTS);
    const { config, text } = valid(r);
    assert.equal(config.hostname, 'alpha.example.com');
    assert.deepEqual(config.listen.map((l) => [l.address, l.tls, l.auth]), [['[::]:25', 'none', 'none']]);
    assert.deepEqual(config.listen[0]!.trustedNetworks.map((n) => n.text), ['203.0.113.10/32', '127.0.0.0/8']);
    assert.equal(config.relay, undefined);
    assert.deepEqual(config.local.domains, ['alpha.example.com', 'localhost.example.com', 'localhost', 'example.com']);
    assert.equal(config.local.aliasesFile, path.join(dir, 'aliases'));
    assert.match(text, /^# no \[relay\]: mail for other domains goes to their MX hosts$/m);
    // myorigin = $mydomain: bare names leave @example.com (EXPECTED.md), the user part kept
    assert.ok(has(r.report, /^myorigin = \$mydomain → \[rewrite\] senders "@alpha\.example\.com" = "@example\.com": bare names .* leave as NAME@example\.com/));
    assert.deepEqual({ ...config.rewrite.senders }, { '@alpha.example.com': '@example.com' });
    const rules = { map: config.rewrite.senders, hostname: 'alpha.example.com' };
    assert.deepEqual(['root', 'www', 'bob', 'someone@elsewhere.example'].map((u) => rewriteAddress(u, rules)),
      ['root@example.com', 'www@example.com', 'bob@example.com', 'someone@elsewhere.example']);
    assert.ok(has(r.report, /^mynetworks_style = host: Postfix ignores it when mynetworks is given/));
    assert.ok(has(r.report, /^install paths \(queue_directory, .*readme_directory\): /));
    assert.ok(has(r.report, /^debugger_command = PATH=.*: Postfix debugging aids/));
    assert.ok(has(r.report, /mbox mailboxes .* are not converted/));
  });
});

describe('import postfix: variants', () => {
  it('refuses a folder without main.cf with an input error', () => {
    assert.throws(() => importPostfix(setup({ 'master.cf': '' }), OPTS), (e: Error) => e instanceof ImportInputError && /main\.cf: no such file/.test(e.message));
  });

  it('submission with -o overrides, smtps in wrapper mode, and a loopback-only service', () => {
    const dir = setup({
      'main.cf': 'myhostname = mx.example.org\ninet_protocols = ipv4\nmessage_size_limit = 51200000\nsmtpd_tls_cert_file = /etc/postfix/c.pem\nsmtpd_tls_key_file = /etc/postfix/k.pem\n',
      'master.cf': [
        'smtp inet n - y - - smtpd',
        'submission inet n - y - - smtpd',
        '  -o smtpd_tls_security_level=encrypt',
        '  -o smtpd_sasl_auth_enable=yes',
        '  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject',
        'smtps inet n - y - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes',
        '2587 inet n - y - - smtpd -o smtpd_tls_security_level=may -o smtpd_sasl_auth_enable=yes',
        '127.0.0.1:2525 inet n - y - - smtpd',
        '628 inet n - y - - qmqpd',
      ].join('\n'),
      'c.pem': 'x', 'k.pem': 'y',
    });
    const r = importPostfix(dir, OPTS);
    const { config } = valid(r);
    assert.deepEqual(config.listen.map((l) => [l.address, l.tls, l.auth]), [
      ['0.0.0.0:25', 'none', 'none'], ['0.0.0.0:587', 'starttls-required', 'required'], ['0.0.0.0:465', 'implicit', 'optional'], ['0.0.0.0:2587', 'starttls', 'optional'], ['127.0.0.1:2525', 'none', 'none'],
    ]);
    assert.equal(config.tls.certificate, path.join(dir, 'c.pem'), 'found in the copied set-up');
    assert.equal(config.limits.messageSize, 51_200_000);
    assert.equal(valid(importPostfix(setup({ 'main.cf': 'message_size_limit = 0\n' }), OPTS)).config.limits.messageSize, 25_000_000, 'no limit: the default stays');
    assert.ok(has(r.report, /master\.cf 628 inet qmqpd: only smtpd services become listeners/));
    assert.ok(has(r.report, /^2587: Postfix offered AUTH before STARTTLS/));
    assert.ok(!has(r.report, /^submission: Postfix offered AUTH before STARTTLS/), 'encrypt: AUTH only after TLS in both');
  });

  it('AUTH without TLS: the carried-over line names allow_plaintext_auth = true', () => {
    const r = importPostfix(setup({ 'main.cf': 'inet_interfaces = localhost\n', 'master.cf': 'smtp inet n - y - - smtpd -o smtpd_sasl_auth_enable=yes\n' }), OPTS);
    assert.deepEqual(valid(r).config.listen.map((l) => l.allowPlaintextAuth), [true, true]);
    assert.ok(has(r.report, /^master\.cf smtp inet smtpd → \[\[listen\]\] address = "127\.0\.0\.1:25", tls = "none", auth = "optional", allow_plaintext_auth = true$/));
  });

  it('transport_maps, sender-dependent relays with their own logins, and policy maps', () => {
    const dir = setup({
      'main.cf': [
        'relayhost = [smtp.example.com]:587', 'smtp_tls_security_level = verify',
        'smtp_sasl_auth_enable = yes', 'smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd',
        'smtp_sender_dependent_authentication = yes',
        'sender_dependent_relayhost_maps = hash:/etc/postfix/sender_relay',
        'transport_maps = hash:/etc/postfix/transport', 'smtp_tls_policy_maps = texthash:/etc/postfix/tls_policy',
        'smtp_generic_maps = hash:/etc/postfix/generic', 'smtp_sasl_mechanism_filter = plain, login, gssapi',
      ].join('\n'),
      transport: 'corp.example.com smtp:[10.0.0.5]:25\n.corp.example.com smtp:[10.0.0.5]:25\nold.example error:gone\n',
      sender_relay: '@example.com [smtp.example.com]:587\nalerts@example.org [smtp.mailgun.org]:587\n',
      sasl_passwd: '[smtp.example.com]:587 relay@example.com:r3lay\n@example.com alice@example.com:al1ce\nalerts@example.org pm@mg.example.org:an0ther\n',
      tls_policy: '[10.0.0.5]:25 none\nlegacy.example may\n',
      generic: 'root@box.localdomain alerts@example.com\n@box.localdomain alerts@example.com\nbob@box.localdomain @example.com\n',
    });
    const r = importPostfix(dir, OPTS);
    const { config } = valid(r);
    assert.equal(config.relay?.username, 'relay@example.com');
    assert.deepEqual(config.relay?.mechanisms, ['PLAIN', 'LOGIN']);
    assert.deepEqual(config.routes.map((x) => [x.name, x.domains.join(','), x.senders.join(','), x.url, x.tls, x.username ?? '']), [
      ['transport-10-0-0-5', 'corp.example.com,.corp.example.com', '', 'smtp://10.0.0.5:25', 'none', ''],
      ['sender-example-com', '', '@example.com', 'smtp://smtp.example.com:587', 'verify', 'alice@example.com'],
      ['sender-alerts-example-org', '', 'alerts@example.org', 'smtp://smtp.mailgun.org:587', 'verify', 'pm@mg.example.org'],
    ]);
    assert.deepEqual(config.rewrite.senders, { 'root@box.localdomain': 'alerts@example.com', '@box.localdomain': 'alerts@example.com' });
    assert.deepEqual([...secretFiles(r.config).keys()], ['relay.secret', 'sender-example-com.secret', 'sender-alerts-example-org.secret']);
    assert.ok(has(r.report, /^transport_maps old\.example error:gone: transport error/));
    assert.ok(has(r.report, /^smtp_generic_maps bob@box\.localdomain @example\.com: /));
    assert.ok(has(r.report, /^smtp_tls_policy_maps legacy\.example may: no effect here/));
  });

  it('one next hop written two ways is one route; other hops with one host get names of their own', () => {
    const dir = setup({
      'main.cf': 'transport_maps = hash:/etc/postfix/transport\nsender_dependent_relayhost_maps = hash:/etc/postfix/sender_relay\n',
      transport: 'corp.example.com smtp:[10.0.0.5]:25\n.corp.example.com smtp:[10.0.0.5]\nlab.example.com smtp:[10.0.0.5]:2525\n',
      sender_relay: '@a.example [smtp.example.com]:587\n@b.example [smtp.example.com]\n',
    });
    const r = importPostfix(dir, OPTS);
    const { config } = valid(r);
    assert.deepEqual(config.routes.map((x) => [x.name, x.domains.join(','), x.senders.join(','), x.url]), [
      ['transport-10-0-0-5', 'corp.example.com,.corp.example.com', '', 'smtp://10.0.0.5:25'],
      ['transport-10-0-0-5-2', 'lab.example.com', '', 'smtp://10.0.0.5:2525'],
      ['sender-smtp-example-com', '', '@a.example', 'smtp://smtp.example.com:587'],
      ['sender-smtp-example-com-2', '', '@b.example', 'smtp://smtp.example.com:25'],
    ]);
    assert.ok(has(r.report, /^transport_maps \.corp\.example\.com smtp:\[10\.0\.0\.5\] → \[\[route\]\] transport-10-0-0-5 \(merged: the same host, port, TLS and login as an earlier entry\): domains = \["corp\.example\.com", "\.corp\.example\.com"\]/));
    assert.match(writeToml(r.config, 'x'), /^# from Postfix transport_maps: corp\.example\.com smtp:\[10\.0\.0\.5\]:25; \.corp\.example\.com smtp:\[10\.0\.0\.5\]$/m);
    // routes match in file order: .corp.example.com must not move above lab.corp.example.com's own route
    const order = valid(importPostfix(setup({
      'main.cf': 'transport_maps = hash:/etc/postfix/transport\n',
      transport: 'corp.example.com smtp:[10.0.0.5]:25\nlab.corp.example.com smtp:[10.0.0.6]\n.corp.example.com smtp:[10.0.0.5]\n',
    }), OPTS)).config;
    assert.deepEqual(order.routes.map((x) => [x.name, x.domains.join(',')]), [
      ['transport-10-0-0-5', 'corp.example.com'], ['transport-10-0-0-6', 'lab.corp.example.com'], ['transport-10-0-0-5-2', '.corp.example.com'],
    ]);
  });

  it('myorigin from /etc/mailname becomes an @domain rewrite beside smtp_generic_maps, whose entries win', () => {
    const dir = setup({
      'main.cf': 'myhostname = box.example.net\nmyorigin = /etc/mailname\nsmtp_generic_maps = hash:/etc/postfix/generic\nalias_maps = hash:/etc/aliases\n',
      mailname: 'example.org\n', aliases: 'root: alice\n',
      generic: 'root@box.example.net alerts@example.org\n@example.org ops@example.org\n',
    });
    const r = importPostfix(dir, OPTS);
    const { text, config } = valid(r);
    assert.deepEqual({ ...config.rewrite.senders }, { '@box.example.net': '@example.org', 'root@box.example.net': 'alerts@example.org', '@example.org': 'ops@example.org' });
    assert.match(text, /^\[rewrite\.senders\]\n"@box\.example\.net" = "@example\.org"\n"root@box\.example\.net" = "alerts@example\.org"\n/m);
    const rules = { map: config.rewrite.senders, hostname: 'box.example.net' };
    assert.deepEqual(['root', 'alice'].map((u) => rewriteAddress(u, rules)), ['alerts@example.org', 'alice@example.org'], 'the exact generic entry wins for root');
  });

  it('without a relayhost, per-site entries become commented routes to complete', () => {
    const dir = setup({ 'main.cf': 'smtp_tls_security_level = may\nsmtp_tls_per_site = hash:/etc/postfix/tls_per_site\n', tls_per_site: 'partner.example MUST\n' });
    const r = importPostfix(dir, OPTS);
    const { text, config } = valid(r);
    assert.equal(config.mx.tls, 'may');
    assert.match(text, /^# domains = \["partner\.example"\]\n# url = "smtp:\/\/MX-HOST-OF-partner\.example:25"\n# tls = "verify"$/m);
  });

  it('a relayhost on port 465 with wrapper mode is smtps://; a relay left at no TLS gets "may"', () => {
    const a = valid(importPostfix(setup({ 'main.cf': 'relayhost = [smtp.example.com]:465\nsmtp_tls_wrappermode = yes\nsmtp_tls_security_level = encrypt\n' }), OPTS));
    assert.equal(a.config.relay?.url, 'smtps://smtp.example.com:465');
    assert.equal(a.config.relay?.tls, 'encrypt');
    const b = importPostfix(setup({ 'main.cf': 'relayhost = [smtp.example.com]\n' }), OPTS);
    assert.equal(valid(b).config.relay?.tls, 'may');
    assert.ok(has(b.report, /no smtp TLS setting: Postfix sent to smtp\.example\.com without TLS/));
  });

  it('keeps a local tunnel without a stunnel.conf, allowing plaintext AUTH over loopback only', () => {
    const dir = setup({ 'main.cf': 'relayhost = [127.0.0.1]:2525\nsmtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd\nsmtp_sasl_security_options = noanonymous\n', sasl_passwd: '[127.0.0.1]:2525 u:p\n' });
    const { config } = valid(importPostfix(dir, OPTS));
    assert.equal(config.relay?.url, 'smtp://127.0.0.1:2525');
    assert.equal(config.relay?.allowPlaintextAuth, true);
  });
});

describe('import sendmail', () => {
  it('sendmail-authinfo: SMART_HOST through stunnel becomes smtps://, the AuthInfo line without host', () => {
    const r = importSendmail(path.join(FIXTURES, 'sendmail-authinfo/sendmail.mc'), OPTS);
    const { config } = valid(r);
    assert.deepEqual(config.listen.map((l) => [l.address, l.tls, l.auth]), [['[::]:25', 'none', 'none'], ['0.0.0.0:587', 'none', 'none']]);
    assert.equal(config.relay?.url, 'smtps://smtp.att.yahoo.com:465');
    assert.equal(config.relay?.tls, 'encrypt');
    assert.equal(config.relay?.username, 'myname@sbcglobal.net');
    assert.deepEqual(config.relay?.mechanisms, ['LOGIN', 'PLAIN']);
    assert.deepEqual([...secretFiles(r.config)], [['relay.secret', 's3cret-placeholder\n']]);
    assert.deepEqual(config.local.domains, ['box.example.net', 'localhost']);
    assert.ok(has(r.report, /AuthInfo: "U:myname@sbcglobal\.net" "M:LOGIN PLAIN" → \[relay\] username/));
    assert.ok(has(r.report, /^AuthInfo:smtp\.att\.yahoo\.com: not used: Sendmail connected to 127\.0\.0\.1 and took AuthInfo: \(the same credentials\)/));
    assert.ok(has(r.report, /^define\(confLOG_LEVEL, 20\): Sendmail's \(debug\) log level/));
    for (const f of ['access_db', 'mailertable', 'virtusertable']) assert.ok(has(r.report, new RegExp(`^FEATURE\\(${f}`)), f);
    assert.ok(has(r.report, /hand edits of the generated sendmail\.cf/));
  });

  it('a SMART_HOST with a port, server certificate and AUTH; no_default_msa', () => {
    const dir = setup({
      'sendmail.mc': "define(`SMART_HOST', `[smtp.example.com]')dnl\ndefine(`RELAY_MAILER_ARGS', `TCP $h 587')dnl\nFEATURE(`authinfo')dnl\nFEATURE(`no_default_msa')dnl\ndefine(`confSERVER_CERT', `/etc/mail/certs/host.pem')dnl\ndefine(`confSERVER_KEY', `/etc/mail/certs/host.key')dnl\ndefine(`confDOMAIN_NAME', `mx.example.org')dnl\nDAEMON_OPTIONS(`Port=smtp, Addr=127.0.0.1, Name=MTA')dnl\nDAEMON_OPTIONS(`Port=465, Name=TLSMTA, M=s')dnl\n",
      authinfo: 'AuthInfo:smtp.example.com "U:user" "P:pass" "M:PLAIN"\n',
    });
    const r = importSendmail(path.join(dir, 'sendmail.mc'), OPTS);
    const { config } = valid(r);
    assert.equal(config.hostname, 'mx.example.org');
    assert.deepEqual(config.listen.map((l) => [l.address, l.tls]), [['127.0.0.1:25', 'starttls'], ['0.0.0.0:465', 'implicit']]);
    assert.equal(config.relay?.url, 'smtp://smtp.example.com:587');
    assert.equal(config.relay?.tls, 'verify');
    assert.equal(config.relay?.username, 'user');
    assert.equal(config.tls.certificate, '/etc/mail/certs/host.pem');
  });

  it('AUTH without TLS: allow_plaintext_auth on loopback, named in the report; elsewhere the listener fails closed', () => {
    const mc = (daemons: string, extra = '') => path.join(setup({ 'sendmail.mc': `define(\`confAUTH_MECHANISMS', \`LOGIN PLAIN')dnl\n${extra}FEATURE(\`no_default_msa')dnl\n${daemons}` }), 'sendmail.mc');
    const lo = importSendmail(mc("DAEMON_OPTIONS(`Port=smtp,Addr=127.0.0.1, Name=MTA')dnl\n"), OPTS);
    const a = valid(lo);
    assert.deepEqual(a.config.listen.map((l) => [l.address, l.tls, l.auth, l.allowPlaintextAuth]), [['127.0.0.1:25', 'none', 'optional', true]]);
    assert.match(a.report, /^ {2}DAEMON_OPTIONS Port=smtp,Addr=127\.0\.0\.1, Name=MTA → \[\[listen\]\] address = "127\.0\.0\.1:25", tls = "none", auth = "optional", allow_plaintext_auth = true$/m);
    assert.match(a.report, /127\.0\.0\.1:25: allow_plaintext_auth = true because Sendmail offered AUTH LOGIN PLAIN without TLS .*clients send their passwords in clear text; the listener is on loopback.*give the listener TLS \(tls = "starttls-required"/);

    const lan = importSendmail(mc("DAEMON_OPTIONS(`Port=smtp, Name=MTA')dnl\nDAEMON_OPTIONS(`Port=2525, Name=MSA2, M=a')dnl\n"), OPTS);
    const b = valid(lan);
    assert.deepEqual(b.config.listen.map((l) => [l.address, l.tls, l.auth, l.allowPlaintextAuth]), [['0.0.0.0:25', 'none', 'none', false], ['0.0.0.0:2525', 'starttls-required', 'required', false]]);
    assert.doesNotMatch(b.text, /allow_plaintext_auth/);
    assert.ok(has(lan.report, /^AUTH without TLS on DAEMON_OPTIONS Port=smtp, Name=MTA \(0\.0\.0\.0:25\): Sendmail offered AUTH LOGIN PLAIN without TLS there, so clients sent their passwords in clear text over the network; written as auth = "none"/));
    assert.ok(has(lan.report, /^AUTH without TLS on DAEMON_OPTIONS Port=2525, Name=MSA2, M=a \(0\.0\.0\.0:2525\): .*written as tls = "starttls-required", auth = "required"/));
    assert.match(b.report, /→ \[\[listen\]\] address = "0\.0\.0\.0:25", tls = "none", auth = "none"$/m);

    const p = importSendmail(mc("DAEMON_OPTIONS(`Port=smtp,Addr=127.0.0.1, Name=MTA')dnl\n", "define(`confAUTH_OPTIONS', `A p')dnl\n"), OPTS);
    assert.deepEqual(valid(p).config.listen.map((l) => [l.auth, l.allowPlaintextAuth]), [['none', false]]);
    assert.ok(has(p.report, /confAUTH_OPTIONS p: PLAIN and LOGIN only after STARTTLS/));
  });

  it('reads the old confDEF_AUTH_INFO file when there is no authinfo map', () => {
    const dir = setup({
      'sendmail.mc': "define(`SMART_HOST', `smtp.example.com')dnl\ndefine(`confDEF_AUTH_INFO', `/etc/mail/default-auth-info')dnl\n",
      'default-auth-info': 'olduser\nolduser\noldpass\nexample.com\nPLAIN\n',
    });
    const r = importSendmail(path.join(dir, 'sendmail.mc'), OPTS);
    const { config } = valid(r);
    assert.equal(config.relay?.username, 'olduser');
    assert.deepEqual(config.relay?.mechanisms, ['PLAIN']);
    assert.equal(secretFiles(r.config).get('relay.secret'), 'oldpass\n');
    assert.ok(has(r.report, /SMART_HOST smtp\.example\.com has no \[brackets\]/));
  });

  it('refuses a file that is no .mc', () => {
    assert.throws(() => importSendmail(path.join(setup({ 'x.mc': 'just text\n' }), 'x.mc'), OPTS), ImportInputError);
    assert.throws(() => importSendmail('/nonexistent/sendmail.mc', OPTS), /no such file/);
  });
});
