// Issue 19: provider presets and the sender-domain check, through `smarthost check` and
// `smarthost route test` as a user runs them. Every preset expands to a config that check
// passes (dummy secret files, a stub DNS that publishes the SPF and DMARC a domain should
// have); SPF and DMARC problems are warnings with their fix, a DNS that cannot be reached is
// a note ("could not check") that changes no verdict.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PRESETS, PRESET_NAMES } from '../../src/config/presets.js';
import { execFile } from 'node:child_process';
import { CLI, removeDir, tempDir } from '../helpers/daemon.js';
import { startDnsServer, type DnsServer } from '../peers/dns-server.js';
import { startUpstream } from '../peers/upstream.js';

const dirs: string[] = [];
let dns: DnsServer;
after(async () => { dirs.forEach(removeDir); await dns?.close(); });

/** Each preset's sender domain publishes exactly what the preset asks for. */
const records: Parameters<typeof startDnsServer>[0] = {
  // nested: the include sits one level down, as in most real records
  'good.example-mail.net': { TXT: ['google-site-verification=abc', 'v=spf1 include:_spf.good.example-mail.net ~all'] },
  '_spf.good.example-mail.net': { TXT: ['v=spf1 ip4:192.0.2.0/24 include:spf.protection.outlook.com -all'] },
  'spf.protection.outlook.com': { TXT: ['v=spf1 ip4:40.92.0.0/15 -all'] },
  '_dmarc.good.example-mail.net': { TXT: ['v=DMARC1; p=reject; rua=mailto:d@good.example-mail.net'] },
  'noinclude.example-mail.net': { TXT: ['v=spf1 mx -all'] },
  '_dmarc.noinclude.example-mail.net': { TXT: ['v=DMARC1; p=quarantine'] },
  'nodmarc.example-mail.net': { TXT: ['v=spf1 include:spf.protection.outlook.com ~all'] },
  'nospf.example-mail.net': { A: ['192.0.2.1'] },
  '_dmarc.nospf.example-mail.net': { TXT: ['v=DMARC1; p=none'] },
  'broken.example-mail.net': { SERVFAIL: true },
  '_dmarc.broken.example-mail.net': { SERVFAIL: true },
};
for (const name of PRESET_NAMES) {
  const inc = PRESETS[name]!.spfInclude!;
  records[`${name}.example-mail.org`] = { TXT: [`v=spf1 include:${inc} ~all`] };
  records[`_dmarc.${name}.example-mail.org`] = { TXT: ['v=DMARC1; p=reject'] };
}

before(async () => { dns = await startDnsServer(records); });

/** The CLI, asynchronously: the stub DNS answers from this process, so it must not be blocked (spawnSync would). */
function runCli(args: string[], opts: { cwd: string }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: opts.cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

function configDir(): string {
  const dir = tempDir('smarthost-presets-');
  dirs.push(dir);
  const secret = path.join(dir, 'provider.secret');
  fs.writeFileSync(secret, 'not-a-real-secret\n', { mode: 0o600 });
  return dir;
}

function check(dir: string, body: string, nameservers = [dns.address], hostname = 'relay.test'): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const file = path.join(dir, 'smarthost.toml');
  fs.writeFileSync(file, `hostname = "${hostname}"\ndata_dir = "${path.join(dir, 'data')}"\n[[listen]]\naddress = "127.0.0.1:0"\n${body}\n[mx]\nnameservers = ${JSON.stringify(nameservers)}\n`);
  return runCli(['check', '-c', file], { cwd: dir });
}

/** The keys a user still gives for this preset: credentials, a region. */
function userKeys(name: string, dir: string): string {
  const secret = `password_file = "${path.join(dir, 'provider.secret')}"`;
  const region = PRESETS[name]!.region ? `region = "${PRESETS[name]!.region!.example}"\n` : '';
  return `${region}${PRESETS[name]!.keys['username'] ? '' : 'username = "sender@example-mail.org"\n'}${secret}`;
}

describe('every preset expands to a config that check passes', () => {
  for (const name of PRESET_NAMES) {
    it(`preset = "${name}" on [relay] and on a [[route]]`, async () => {
      const dir = configDir();
      const keys = userKeys(name, dir);
      const r = await check(dir, `[relay]\npreset = "${name}"\n${keys}\n[[route]]\nname = "r"\nsenders = ["@${name}.example-mail.org"]\npreset = "${name}"\n${keys}\n`);
      assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.equal(r.stderr, '', 'no warnings: the stub DNS publishes what the preset needs');
      assert.match(r.stdout, /: OK$/m);
      const url = String(PRESETS[name]!.keys['url']).replace('{region}', PRESETS[name]!.region?.example ?? '');
      assert.match(r.stdout, new RegExp(`relay preset ${name} \\(`));
      assert.match(r.stdout, new RegExp(`route r preset ${name} \\(`));
      assert.ok(r.stdout.includes(`url = "${url}"`), `expanded url ${url} in:\n${r.stdout}`);
      assert.match(r.stdout, new RegExp(`sender domain ${name}\\.example-mail\\.org \\(route r senders\\): SPF ok \\(includes ${PRESETS[name]!.spfInclude!.replaceAll('.', '\\.')}\\), DMARC p=reject`));
    });
  }
});

describe('check and route test show what a preset expands to', () => {
  it('marks each key as the preset\'s or the user\'s own, with the preset\'s value beside an override', async () => {
    const dir = configDir();
    const file = path.join(dir, 'smarthost.toml');
    fs.writeFileSync(file, `hostname = "relay.test"\ndata_dir = "${path.join(dir, 'data')}"\n[[listen]]\naddress = "127.0.0.1:0"\n[relay]\npreset = "microsoft365"\nusername = "scanner@example.com"\n${userKeys('sendgrid', dir)}\nconcurrency = 2\nquota = "5000/1d"\n[mx]\nnameservers = ["${dns.address}"]\n`);
    for (const args of [['check'], ['route', 'test', '--from', 'a@example.com', '--to', 'b@example.net']]) {
      const r = await runCli([...args, '-c', file], { cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /relay preset microsoft365 \(Microsoft 365 \/ Exchange Online, SMTP AUTH client submission\):/);
      assert.match(r.stdout, /url = "smtp:\/\/smtp\.office365\.com:587" +from the preset/);
      assert.match(r.stdout, /rate = "30\/1m" +from the preset/);
      assert.match(r.stdout, /concurrency = 2 +yours \(the preset has 3\)/);
      assert.match(r.stdout, /quota = "5000\/1d" +yours \(the preset has "10000\/1d"\)/);
      assert.match(r.stdout, /SPF of sender domains should include: include:spf\.protection\.outlook\.com/);
    }
  });
});

describe('the sender-domain check', () => {
  const routes = (dir: string, domains: string[]) => domains.map((d, i) =>
    `[[route]]\nname = "r${i}"\nsenders = ["@${d}"]\npreset = "microsoft365"\nusername = "a@${d}"\n${userKeys('sendgrid', dir)}\n`).join('');

  it('passes a domain whose SPF includes the provider (one include deep) and that has DMARC', async () => {
    const dir = configDir();
    const r = await check(dir, routes(dir, ['good.example-mail.net']));
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /sender domain good\.example-mail\.net \(route r0 senders\): SPF ok \(includes spf\.protection\.outlook\.com\), DMARC p=reject/);
  });

  it('warns with the fix: no SPF, an SPF without the provider, no DMARC; exit 0', async () => {
    const dir = configDir();
    const r = await check(dir, routes(dir, ['nospf.example-mail.net', 'noinclude.example-mail.net', 'nodmarc.example-mail.net']));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /: OK, 3 warnings$/m);
    const lines = r.stderr.split('\n');
    const finding = (message: string, fix: string) => {
      const i = lines.findIndex((l) => l === `warning: ${message}`);
      assert.ok(i >= 0, `expected "warning: ${message}" in:\n${r.stderr}`);
      assert.equal(lines[i + 1], `    fix: ${fix}`);
    };
    finding('sender domain nospf.example-mail.net (route r0 senders) has no SPF record: receivers such as Gmail and Yahoo refuse or junk mail that SPF does not vouch for',
      'publish nospf.example-mail.net. TXT "v=spf1 include:spf.protection.outlook.com ~all"');
    finding('the SPF record of noinclude.example-mail.net ("v=spf1 mx -all") does not include spf.protection.outlook.com, and route r1 (preset microsoft365) sends its mail',
      'add include:spf.protection.outlook.com before the "all" term: "v=spf1 mx include:spf.protection.outlook.com -all"');
    finding('sender domain nodmarc.example-mail.net (route r2 senders) has no DMARC record: Gmail and Yahoo require one from bulk senders',
      'publish _dmarc.nodmarc.example-mail.net. TXT "v=DMARC1; p=none; rua=mailto:postmaster@nodmarc.example-mail.net" (then tighten p= once reports look right)');
  });

  it('checks [rewrite] senders targets and the host name against [relay]\'s provider', async () => {
    const dir = configDir();
    const r = await check(dir, `[rewrite]\nsenders = { "@relay.localdomain" = "alerts@noinclude.example-mail.net" }\n[relay]\npreset = "microsoft365"\nusername = "a@example.com"\n${userKeys('sendgrid', dir)}\n`,
      [dns.address], 'nodmarc.example-mail.net');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /sender domain noinclude\.example-mail\.net \(\[rewrite\] senders\): SPF lacks a provider, DMARC p=quarantine/);
    assert.match(r.stdout, /sender domain nodmarc\.example-mail\.net \(hostname \(bare sender names\)\): SPF ok \(includes spf\.protection\.outlook\.com\), no DMARC/);
    assert.match(r.stderr, /warning: the SPF record of noinclude\.example-mail\.net \("v=spf1 mx -all"\) does not include spf\.protection\.outlook\.com, and \[relay\] \(preset microsoft365\) sends its mail/);
  });

  it('"could not check" when the DNS fails or cannot be reached: a note, never an error or a warning', async () => {
    const dir = configDir();
    const servfail = await check(dir, routes(dir, ['broken.example-mail.net']));
    assert.equal(servfail.status, 0, servfail.stderr);
    assert.match(servfail.stdout, /: OK$/m);
    assert.match(servfail.stderr, /^note: could not check SPF and DMARC of sender domain broken\.example-mail\.net: the DNS did not answer \(ESERVFAIL\)$/m);
    assert.match(servfail.stdout, /sender domain broken\.example-mail\.net \(route r0 senders\): SPF not checked, DMARC not checked/);
    const down = await check(dir, routes(dir, ['good.example-mail.net']), ['127.0.0.1:9']); // nothing listens there
    assert.equal(down.status, 0, down.stderr);
    assert.match(down.stdout, /: OK$/m);
    assert.match(down.stderr, /^note: could not check SPF and DMARC of sender domain good\.example-mail\.net: the DNS did not answer \(ECONNREFUSED\)$/m);
    assert.doesNotMatch(down.stderr, /^(warning|error):/m);
  });

  it('smarthost probe checks the domain of its sender against the probed route\'s provider', async () => {
    const up = await startUpstream();
    try {
      const dir = configDir();
      const file = path.join(dir, 'smarthost.toml');
      fs.writeFileSync(file, `hostname = "relay.test"\ndata_dir = "${path.join(dir, 'data')}"\n[[listen]]\naddress = "127.0.0.1:0"\n[relay]\npreset = "google-relay"\nurl = "${up.url}"\ntls = "none"\n[mx]\nnameservers = ["${dns.address}"]\n`);
      const r = await runCli(['probe', '--from', 'alerts@noinclude.example-mail.net', '-c', file], { cwd: dir });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^sender domain noinclude\.example-mail\.net \(the sender of this probe\): SPF lacks a provider, DMARC p=quarantine$/m);
      assert.match(r.stdout, /^ {2}warning: the SPF record of noinclude\.example-mail\.net \("v=spf1 mx -all"\) does not include _spf\.google\.com, and \[relay\] \(preset google-relay\) sends its mail$/m);
      assert.match(r.stdout, /^ {4}fix: add include:_spf\.google\.com before the "all" term/m);
    } finally {
      await up.close();
    }
  });
});
