// `smarthost check` and `smarthost start` against config files. Each bad
// config is stored beside its expected error (chasquid test/t-20-bad_configs):
// test/configs/bad/NAME.toml + NAME.expected, one substring per line, in which
// {FILE} stands for the absolute path of NAME.toml. A "fix:" line must be found
// on the line right after the one the previous expected line was found on.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { canBindPrivileged } from '../../src/cli/check-environment.js';
import { CLI, ROOT, removeDir, runCli, startDaemon, tempDir, writeConfig } from '../helpers/daemon.js';
import { testCerts } from '../peers/certs.js';
import { freePort } from '../helpers/ports.js';

const BAD = path.join(ROOT, 'test/configs/bad');
const GOOD = path.join(ROOT, 'test/configs/good.toml');

const badConfigs = fs.readdirSync(BAD).filter((f) => f.endsWith('.toml')).sort();

// The bad configs leave data_dir at its default, ./data beside them; should one
// ever be accepted, check would create test/configs/bad/data: remove it again.
after(() => removeDir(path.join(BAD, 'data')));

/** Checks that every expected substring is in `output`, and each "fix:" on the line after its problem. */
function assertExpected(output: string, expectedFile: string, file: string): void {
  const lines = output.split('\n');
  const expected = fs.readFileSync(expectedFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)
    .map((l) => l.replaceAll('{FILE}', file));
  let previous = -1;
  for (const want of expected) {
    const candidates = want.startsWith('fix:') ? [previous + 1] : lines.map((_, i) => i);
    const found = candidates.find((i) => lines[i]?.includes(want));
    assert.ok(found !== undefined,
      `expected ${want.startsWith('fix:') ? `on the line after ${JSON.stringify(lines[previous])}` : 'a line with'}:\n  ${want}\nin:\n${output}`);
    previous = found;
  }
}

describe('smarthost check: bad configs', () => {
  it('has bad configs to check, each with its .expected file', () => {
    assert.ok(badConfigs.length >= 8, `only ${badConfigs.length} bad configs in ${BAD}`);
    for (const f of badConfigs) assert.ok(fs.existsSync(path.join(BAD, f.replace(/\.toml$/, '.expected'))), `${f} has no .expected`);
    for (const f of fs.readdirSync(BAD).filter((x) => x.endsWith('.expected'))) {
      assert.ok(fs.existsSync(path.join(BAD, f.replace(/\.expected$/, '.toml'))), `${f} has no .toml`);
    }
  });

  for (const name of badConfigs) {
    it(`refuses ${name}`, () => {
      const file = path.join(BAD, name);
      const r = runCli(['check', '-c', file]);
      assert.equal(r.status, 1, `exit status\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:\\d+: `, 'm'), 'problems start with FILE:LINE:');
      assert.doesNotMatch(r.stdout, /: OK$/m, 'a bad config is never reported OK');
      assertExpected(r.stderr, file.replace(/\.toml$/, '.expected'), file);
    });
  }
});

describe('smarthost check: good configs and the environment', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));
  const fresh = () => { const d = tempDir('smarthost-check-'); dirs.push(d); return d; };

  it('passes a good config with exit 0 and prints the effective config', () => {
    const dir = fresh();
    const file = path.join(dir, 'smarthost.toml');
    fs.copyFileSync(GOOD, file);
    const r = runCli(['check', '-c', file]);
    assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp(`configuration ${escapeRe(file)}: OK`));
    assert.match(r.stdout, /listen 127\.0\.0\.1:0 tls=none auth=none trusted=127\.0\.0\.0\/8,::1\/128/);
    assert.match(r.stdout, /listen \[::1\]:0 tls=starttls auth=none trusted=none/);
    assert.match(r.stdout, /relay smtp:\/\/127\.0\.0\.1:10025 tls=none/);
    assert.match(r.stdout, new RegExp(`data_dir ${escapeRe(path.join(dir, 'data'))}`), 'data_dir resolved next to the config file');
    assert.equal(fs.existsSync(path.join(dir, 'data')), false, 'check creates nothing');
  });

  it('reports a data_dir that cannot be written, with exit 1', () => {
    // A regular file where a folder should be: not writable even for root,
    // so this test means the same whoever runs it.
    const dir = fresh();
    fs.writeFileSync(path.join(dir, 'blocker'), 'a file, not a folder\n');
    const file = path.join(dir, 'smarthost.toml');
    const text = fs.readFileSync(GOOD, 'utf8').replace(/^data_dir = "data"$/m, 'data_dir = "blocker/data"');
    assert.match(text, /^data_dir = "blocker\/data"$/m);
    fs.writeFileSync(file, text);
    const r = runCli(['check', '-c', file]);
    assert.equal(r.status, 1, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    const out = r.stdout + r.stderr;
    assert.match(out, new RegExp(`data_dir ${escapeRe(path.join(dir, 'blocker/data'))} is not writable`));
    assert.match(out, /fix: create it/);
    assert.doesNotMatch(out, /: OK$/m);
  });

  it('reports a config file that does not exist, with exit 1', () => {
    const missing = path.join(fresh(), 'nowhere.toml');
    const r = runCli(['check', '-c', missing]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${escapeRe(missing)}: cannot read the config file: no such file`));
    assert.match(r.stderr, /fix: check the path given with -c/);
  });

  // Each case below writes a config beside the files it needs, runs check on it
  // and expects one exact finding (the line, then its fix on the next line).
  // A 127.0.0.1:0 listener keeps the default 127.0.0.1:2525 out of the way.
  const LISTEN_ANY = '[[listen]]\naddress = "127.0.0.1:0"\n';
  const check = (dir: string, toml: string) => runCli(['check', '-c', writeConfig(dir, toml)], { cwd: dir });
  const file = (dir: string, name: string, text: string | Buffer, mode = 0o600) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    fs.chmodSync(f, mode);
    return f;
  };
  const certs = () => testCerts();

  it('warns about a users file that others may read (it holds password hashes), exit 0', () => {
    const dir = fresh();
    const users = file(dir, 'users', 'alice:$scrypt$16384$8$1$c2FsdA==$aGFzaA==\n', 0o644);
    const r = check(dir, `${LISTEN_ANY}[auth]\nusers_file = "${users}"\n`);
    assertFinding(r.stderr, 'warning', `users file ${users} is readable by other users (mode 644); it holds password hashes`, `chmod 600 ${users}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /: OK, 1 warning$/m);
  });

  it('checks the OAuth2 files of [relay]: a refresh token others may read, one that does not exist yet', () => {
    const dir = fresh();
    const token = file(dir, 'google.refresh', '1//refresh-token\n', 0o644);
    const relay = (t: string) => `${LISTEN_ANY}[relay]\nurl = "smtp://smtp.gmail.com:587"\nusername = "alerts@example.com"\nauth = "oauth2"\nprovider = "google"\nclient_id = "id"\nrefresh_token_file = "${t}"\n`;
    const r = check(dir, relay(token));
    assertFinding(r.stderr, 'warning', `refresh_token_file ${token} is readable by other users (mode 644); it signs in as alerts@example.com`, `chmod 600 ${token}`);
    assert.equal(r.status, 0, r.stderr);
    const missing = path.join(dir, 'not-yet.refresh');
    const r2 = check(dir, relay(missing));
    assertFinding(r2.stderr, 'warning', `refresh_token_file ${missing} does not exist yet`, 'run `smarthost oauth login relay` to sign in');
  });

  it('the summary shows every url and fallback_urls of [relay] and each [[route]], and auth=oauth2 with its provider', () => {
    const dir = fresh();
    const token = file(dir, 'google.refresh', '1//refresh-token\n', 0o600);
    const r = check(dir, `${LISTEN_ANY}[relay]\nurl = ["smtp://smtp.gmail.com:587", "smtp://smtp2.gmail.com:587"]\nfallback_urls = ["smtps://backup.example.net:465"]\n` +
      `username = "alerts@example.com"\nauth = "oauth2"\nprovider = "google"\nclient_id = "id"\nrefresh_token_file = "${token}"\n` +
      `[[route]]\nname = "corp"\ndomains = ["corp.example"]\nurl = "smtp://10.0.0.5:587"\nfallback_urls = ["smtp://10.0.0.6:587", "smtp://10.0.0.7:587"]\ntls = "may"\n`);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes('\n  relay smtp://smtp.gmail.com:587, smtp://smtp2.gmail.com:587 fallback_urls smtps://backup.example.net:465 ' +
      'tls=verify user=alerts@example.com auth=oauth2 (google)\n'), r.stdout);
    assert.ok(r.stdout.includes('\n  route corp: corp.example -> smtp://10.0.0.5:587 fallback_urls smtp://10.0.0.6:587, smtp://10.0.0.7:587 tls=may\n'), r.stdout);
  });

  it('reports a users file that cannot be read as an error, exit 1', () => {
    // A folder where the file should be: unreadable as a file even for root.
    const dir = fresh();
    const users = path.join(dir, 'users');
    fs.mkdirSync(users);
    const r = check(dir, `${LISTEN_ANY}[auth]\nusers_file = "${users}"\n`);
    assertFinding(r.stderr, 'error', `users file ${users} cannot be read (EISDIR)`, 'check the path, and that the user smarthost runs as may read it');
    assert.equal(r.status, 1);
  });

  it('checks the client certificate of [relay]: key readable by others -> warning', () => {
    const dir = fresh();
    const cert = file(dir, 'client.pem', certs().client.cert);
    const key = file(dir, 'client.key', certs().client.key, 0o640);
    const r = check(dir, `${LISTEN_ANY}${relayWithClientCert(cert, key, certs().caFile)}`);
    assertFinding(r.stderr, 'warning', `client key of [relay] ${key} is readable by other users (mode 640); it is the private key`, `chmod 600 ${key}`);
    assert.equal(r.status, 0, r.stderr);
  });

  it('checks the client certificate of [relay]: a key that is not its key -> error', () => {
    const dir = fresh();
    const cert = file(dir, 'client.pem', certs().client.cert);
    const key = file(dir, 'other.key', certs().valid.key);
    const r = check(dir, `${LISTEN_ANY}${relayWithClientCert(cert, key, certs().caFile)}`);
    assertFinding(r.stderr, 'error', `${key} is not the key of client certificate of [relay] ${cert}`, 'point client_key of [relay] at the private key that belongs to the certificate');
    assert.equal(r.status, 1);
  });

  it('checks the client certificate of a [[route]]: expired -> error', () => {
    const dir = fresh();
    const cert = file(dir, 'expired.pem', certs().expired.cert);
    const key = file(dir, 'expired.key', certs().expired.key);
    const r = check(dir, `${LISTEN_ANY}${routeWithClientCert('old', cert, key)}`);
    const validTo = new crypto.X509Certificate(certs().expired.cert).validTo;
    assertFinding(r.stderr, 'error', `client certificate of [[route]] old ${cert} expired on ${validTo}`, 'renew it (e.g. certbot renew) and restart smarthost');
    assert.equal(r.status, 1);
  });

  it('checks the client certificate of a [[route]]: expiring within 14 days -> warning', () => {
    const dir = fresh();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=soon',
      '-days', '5', '-keyout', 'soon.key', '-out', 'soon.pem'], { cwd: dir, stdio: 'ignore' });
    const cert = path.join(dir, 'soon.pem');
    const key = path.join(dir, 'soon.key');
    fs.chmodSync(key, 0o600);
    const r = check(dir, `${LISTEN_ANY}${routeWithClientCert('soon', cert, key)}`);
    assertFinding(r.stderr, 'warning', `client certificate of [[route]] soon ${cert} expires in 4 days`, 'renew it soon');
    assert.equal(r.status, 0, r.stderr);
  });

  it('reports a ca_file that cannot be read, exit 1', () => {
    const dir = fresh();
    const ca = path.join(dir, 'missing-ca.pem');
    const r = check(dir, `${LISTEN_ANY}[relay]\nurl = "smtp://127.0.0.1:10025"\nca_file = "${ca}"\n`);
    assertFinding(r.stderr, 'error', `ca_file of [relay] ${ca} cannot be read (ENOENT)`, 'check the path, and that the user smarthost runs as may read it');
    assert.equal(r.status, 1);
  });

  it('reports a listen address another program holds, with how to find it, exit 1', async () => {
    const dir = fresh();
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const port = (holder.address() as AddressInfo).port;
      const r = check(dir, `[[listen]]\naddress = "127.0.0.1:${port}"\n`);
      assertFinding(r.stderr, 'error', `address 127.0.0.1:${port} is already in use`,
        `find the program that holds it with: ss -ltnp 'sport = :${port}', then stop it or choose another port`);
      assert.equal(r.status, 1);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('reports two [[listen]] on the same port that would collide at start, exit 1', async () => {
    const dir = fresh();
    const port = await freePort();
    const r = check(dir, `[[listen]]\naddress = "0.0.0.0:${port}"\n[[listen]]\naddress = "127.0.0.1:${port}"\n`);
    assertFinding(r.stderr, 'error', `address 127.0.0.1:${port} overlaps [[listen]] 0.0.0.0:${port}, which already takes port ${port}`,
      'remove one of the two [[listen]] sections (0.0.0.0 and :: already cover every address)');
    assert.equal(r.status, 1);
  });

  it('reports a queue database that does not answer, with its fix, and that the shared quota counts cannot be read, exit 1', async () => {
    const dir = fresh();
    const port = await freePort(); // nothing listens there: the connection is refused
    const r = check(dir, `${LISTEN_ANY}[relay]\nurl = "smtp://127.0.0.1:10025"\nquota = "10/1h"\n[queue]\nstore = "postgresql://smarthost@127.0.0.1:${port}/queue"\n`);
    assertFinding(r.stderr, 'error', `cannot reach the queue database: connect ECONNREFUSED 127.0.0.1:${port}`,
      'check queue.store (host, port, database, user), queue.password_file, and that PostgreSQL accepts this host (pg_hba.conf)');
    assert.match(r.stderr, /^warning: cannot read the quota counts: cannot reach the cluster limits database: connect ECONNREFUSED/m);
    assert.match(r.stdout, new RegExp(`queue database postgresql://smarthost@127\\.0\\.0\\.1:${port}/queue \\(node `));
    assert.equal(r.status, 1);
  });

  it('says so when smarthost itself holds the port (its control socket answers), exit 0', async () => {
    const port = await freePort();
    const d = await startDaemon({ dir: fresh(), toml: `[[listen]]\naddress = "127.0.0.1:${port}"\n` });
    try {
      const r = d.cli(['check']);
      assertFinding(r.stderr, 'warning', `address 127.0.0.1:${port} is already in use: smarthost itself is running and holds it`,
        'nothing to fix while it runs; stop it before starting another smarthost on this data_dir');
      assert.equal(r.status, 0, r.stderr);
    } finally {
      await d.stop();
    }
  });

  it('reports a privileged port when the process may not bind it, exit 1', (t) => {
    // CI runs as root: check then runs as nobody, who has no capabilities.
    const root = process.getuid?.() === 0;
    if (!root && canBindPrivileged(process.getuid?.() ?? 0, undefined)) return t.skip('cannot drop the right to bind port 25');
    const start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    if (start <= 25) return t.skip('port 25 is not privileged here');
    const uid = root ? 65534 : process.getuid!();
    const dir = fresh();
    fs.chmodSync(dir, 0o755);
    const cfg = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:25"\n');
    const r = spawnSync(process.execPath, [CLI, 'check', '-c', cfg], { cwd: dir, encoding: 'utf8', ...(root ? { uid, gid: 65534 } : {}) });
    assertFinding(r.stderr, 'error', `address 127.0.0.1:25 uses port 25, below ${start}, and this process (uid ${uid}) lacks CAP_NET_BIND_SERVICE to bind it`,
      "let node bind it: setcap 'cap_net_bind_service=+ep' $(readlink -f $(command -v node)), " +
      `or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit; or use port ${start} or above`);
    assert.equal(r.status, 1);
  });

  it('warns about plaintext AUTH towards a remote upstream or on a public listener, not on loopback', () => {
    const dir = fresh();
    const secret = file(dir, 'secret', 'pw\n');
    const plain = (url: string) => `url = "${url}"\ntls = "none"\nusername = "u"\npassword_file = "${secret}"\nallow_plaintext_auth = true\n`;
    const listen = (a: string) => `[[listen]]\naddress = "${a}"\nauth = "required"\nallow_plaintext_auth = true\n`;
    const r = check(dir, `${listen('0.0.0.0:0')}${listen('127.0.0.1:0')}[relay]\n${plain('smtp://192.0.2.10:25')}` +
      `[[route]]\nname = "stunnel"\ndomains = ["corp.test"]\n${plain('smtp://127.0.0.1:10465')}`);
    assertFinding(r.stderr, 'warning', '[relay] sets allow_plaintext_auth = true for 192.0.2.10: credentials would cross the network in clear text',
      'use it only for a local stunnel on 127.0.0.1; for a remote host remove it and set tls = "verify"');
    assertFinding(r.stderr, 'warning', '[[listen]] 0.0.0.0:0 sets allow_plaintext_auth = true: client credentials would cross the network in clear text',
      'use it only on a loopback address (e.g. 127.0.0.1 behind a local stunnel); here set tls = "starttls-required" or "implicit"');
    assert.doesNotMatch(r.stderr, /stunnel sets allow_plaintext_auth|127\.0\.0\.1:0 sets allow_plaintext_auth/);
    assert.equal(r.status, 0, r.stderr);
  });

  it('reports an aliases file that cannot be read, exit 1', () => {
    const dir = fresh();
    const aliases = path.join(dir, 'aliases');
    const r = check(dir, `${LISTEN_ANY}[local]\naliases = "${aliases}"\n`);
    assertFinding(r.stderr, 'error', `aliases file ${aliases} cannot be read (ENOENT)`, 'check the path given in [local] aliases, and its permissions');
    assert.equal(r.status, 1);
  });

  it('warns about each problem in the aliases file with file:line, and sums up users, aliases and rewrite', () => {
    const dir = fresh();
    const aliases = file(dir, 'aliases', 'root: admin@example.com\npostmaster: root\nbackup: |/usr/bin/backup\n', 0o644);
    const r = check(dir, `${LISTEN_ANY}[local]\nusers = ["alice", "bob"]\naliases = "${aliases}"\n` +
      '[rewrite]\nsenders = { "@relay.localdomain" = "alerts@example.com" }\n');
    assertFinding(r.stderr, 'warning', `${aliases}:3: alias "backup": delivery to a command ("|/usr/bin/backup") is not supported by smarthost; forward to an address instead`,
      `correct line 3 of ${aliases}; smarthost rereads it by itself`);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(`\n  local users alice, bob, aliases 0 + 2 in ${aliases}\n`), r.stdout);
    assert.ok(r.stdout.includes('\n  rewrite senders @relay.localdomain -> alerts@example.com\n'), r.stdout);
  });

  it('reports a maildir whose fixed part cannot be created, exit 1', () => {
    const dir = fresh();
    file(dir, 'blocker', 'a file, not a folder\n');
    const base = path.join(dir, 'blocker/mail');
    const r = check(dir, `${LISTEN_ANY}[local]\nmaildir = "${base}/{user}/Maildir"\n`);
    assertFinding(r.stderr, 'error', `mailboxes cannot be made in ${base} (maildir = "${base}/{user}/Maildir"): not writable (ENOTDIR)`,
      `create ${base} and let the user smarthost runs as write in it`);
    assert.equal(r.status, 1);
  });
});

describe('smarthost start: refuses bad configs', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('exits 78 without listening and prints every problem', () => {
    const dir = tempDir('smarthost-start-');
    dirs.push(dir);
    const file = path.join(dir, 'smarthost.toml');
    fs.writeFileSync(file, [
      'hostname = "relay.test"',            // 1
      `data_dir = "${path.join(dir, 'data')}"`, // 2
      '[[listen]]',                         // 3
      'address = "127.0.0.1:0"',            // 4 would bind if started
      '[relay]',                            // 5
      'url = "[127.0.0.1]:2525"',           // 6
      '[limits]',                           // 7
      'message_size = "lots"',              // 8
    ].join('\n'));
    // If it started it would run until killed: the timeout turns that into status null.
    const r = spawnSync(process.execPath, [CLI, 'start', '-c', file], { cwd: dir, encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 78, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /listening on/);
    assert.match(r.stderr, /the configuration has 2 problems:/);
    assert.ok(r.stderr.includes(`${file}:6: relay.url: "[127.0.0.1]:2525" is Postfix's relayhost syntax`), r.stderr);
    assert.ok(r.stderr.includes('fix: write url = "smtp://127.0.0.1:2525"'), r.stderr);
    assert.ok(r.stderr.includes(`${file}:8: limits.message_size: "lots" is not a size`), r.stderr);
    assert.match(r.stderr, /not starting/);
    assert.equal(fs.existsSync(path.join(dir, 'data')), false, 'nothing was created in data_dir');
  });

  for (const name of badConfigs) {
    it(`refuses to start with ${name}`, () => {
      const file = path.join(BAD, name);
      const r = spawnSync(process.execPath, [CLI, 'start', '-c', file], { cwd: ROOT, encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 78, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.doesNotMatch(r.stdout, /listening on/);
      assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:\\d+: `, 'm'));
      assert.match(r.stderr, /not starting/);
    });
  }
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Asserts the exact finding line and its fix on the line after it. */
function assertFinding(stderr: string, level: 'error' | 'warning', message: string, fix: string): void {
  const lines = stderr.split('\n');
  const i = lines.indexOf(`${level}: ${message}`);
  assert.ok(i >= 0, `expected the line\n  ${level}: ${message}\nin:\n${stderr}`);
  assert.equal(lines[i + 1], `    fix: ${fix}`);
}

function relayWithClientCert(cert: string, key: string, ca: string): string {
  return `[relay]\nurl = "smtp://127.0.0.1:10025"\ntls = "verify"\nca_file = "${ca}"\nclient_certificate = "${cert}"\nclient_key = "${key}"\n`;
}

function routeWithClientCert(name: string, cert: string, key: string): string {
  return `[[route]]\nname = "${name}"\ndomains = ["corp.test"]\nurl = "smtps://127.0.0.1:10465"\nclient_certificate = "${cert}"\nclient_key = "${key}"\n`;
}

