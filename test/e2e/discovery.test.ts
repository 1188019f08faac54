// Issue 20, problem 1: config and spool depended on the current folder,
// silently. sendmail run by cron in $HOME queued into a new ./data that no
// daemon reads. Now every verb finds its config the same way (-c before or
// after the verb, SMARTHOST_CONFIG, ./smarthost.toml, /etc/smarthost, the
// embedded default), and the spool verbs refuse the embedded default where no
// queue exists. Also: environment overrides, `config default`, the example file.
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';
import { TOP_KEYS } from '../../src/config/validate.js';
import { CLI, NO_DNS, ROOT, removeDir, spoolMessages, tempDir } from '../helpers/daemon.js';
import { cleanEnv, cli, ETC_CONFIG, etcConfigExists } from '../helpers/cli-env.js';
import { testCerts } from '../peers/certs.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));
const fresh = () => { const d = tempDir('smarthost-discovery-'); dirs.push(d); return d; };

/** A config in its own folder with a relative data_dir, as an operator writes it. */
function configDir(extra = ''): { dir: string; file: string } {
  const dir = fresh();
  const file = path.join(dir, 'smarthost.toml');
  fs.writeFileSync(file, `hostname = "relay.test"\ndata_dir = "spool"\n[[listen]]\naddress = "127.0.0.1:0"\n${extra}\n${NO_DNS}`);
  return { dir, file };
}

function skipIfEtc(t: TestContext): boolean {
  if (!etcConfigExists()) return false;
  t.diagnostic(`${ETC_CONFIG} exists on this machine, so the fallback to the embedded default cannot be observed; assertion skipped`);
  return true;
}

describe('config discovery', () => {
  it('sendmail, mailq, queue and user refuse the embedded default in a folder with no queue: exit 78, say what was looked for, create nothing', (t) => {
    const home = fresh(); // cron runs in $HOME
    if (skipIfEtc(t)) return;
    const r = cli(['sendmail', 'ops@example.net'], { cwd: home, input: 'Subject: backup\n\ndone\n' });
    assert.equal(r.status, 78, r.stderr);
    assert.match(r.stderr, /^smarthost sendmail: no configuration file found, and .*\/data holds no queue: mail queued there would\nnever be delivered/);
    assert.match(r.stderr, new RegExp(`looked for: -c FILE \\(not given\\), \\$SMARTHOST_CONFIG \\(not set\\), ${home}/smarthost\\.toml, /etc/smarthost/smarthost\\.toml`));
    assert.match(r.stderr, /export SMARTHOST_CONFIG=/);
    assert.equal(fs.existsSync(path.join(home, 'data')), false, 'no new ./data');
    for (const args of [['mailq'], ['queue'], ['queue', '--json'], ['user', 'list'], ['newaliases'], ['sendmail', '-bp']]) {
      const x = cli(args, { cwd: home });
      assert.equal(x.status, 78, `${args.join(' ')}: ${x.stdout}${x.stderr}`);
      assert.match(x.stderr, /no configuration file found/, args.join(' '));
      assert.doesNotMatch(x.stdout, /Mail queue is empty/);
    }
    // linked as /usr/sbin/sendmail: the message speaks sendmail's -C
    fs.symlinkSync(CLI, path.join(home, 'sendmail'));
    const linked = cli(['x@example.net'], { cwd: home, input: 'x\n', script: path.join(home, 'sendmail') });
    assert.equal(linked.status, 78, linked.stderr);
    assert.match(linked.stderr, /^sendmail: no configuration file found[^]*fix: name the daemon's configuration: sendmail -C /m);
    assert.equal(fs.existsSync(path.join(home, 'data')), false);
  });

  it('SMARTHOST_CONFIG names the file for every verb, and a relative data_dir is relative to the file, not the folder', () => {
    const { dir, file } = configDir();
    const elsewhere = fresh();
    const env = { SMARTHOST_CONFIG: file };
    const r = cli(['sendmail', '-f', 'cron@relay.test', 'ops@example.net'], { cwd: elsewhere, env, input: 'Subject: via env\n\nx\n' });
    assert.equal(r.status, 0, r.stderr);
    const [m] = spoolMessages(path.join(dir, 'spool'));
    assert.ok(m, 'queued in the data_dir beside the config file');
    assert.equal(fs.existsSync(path.join(elsewhere, 'data')), false);
    assert.match(cli(['mailq'], { cwd: elsewhere, env }).stdout, new RegExp(`^${m.id}`, 'm'));
    assert.match(cli(['check'], { cwd: elsewhere, env }).stdout, new RegExp(`configuration ${file}: OK[^]*data_dir ${dir}/spool`));
    // -c before or after the verb wins over SMARTHOST_CONFIG
    const other = configDir();
    for (const args of [['-c', other.file, 'queue'], ['queue', '-c', other.file], ['--config', other.file, 'mailq']]) {
      const q = cli(args, { cwd: elsewhere, env });
      assert.equal(q.status, 0, q.stderr);
      assert.equal(q.stdout, 'Mail queue is empty\n', args.join(' '));
    }
    // linked as mailq: sendmail's -C FILE, as with Postfix (mailq is sendmail -bp)
    fs.symlinkSync(CLI, path.join(elsewhere, 'mailq'));
    const linkedMailq = cli(['-C', other.file], { cwd: elsewhere, script: path.join(elsewhere, 'mailq') });
    assert.equal(linkedMailq.status, 0, linkedMailq.stderr);
    assert.equal(linkedMailq.stdout, 'Mail queue is empty\n');
    const missing = cli(['sendmail', 'a@example.net'], { cwd: elsewhere, env: { SMARTHOST_CONFIG: path.join(elsewhere, 'nope.toml') }, input: 'x\n' });
    assert.equal(missing.status, 78);
    assert.match(missing.stderr, /nope\.toml: cannot read the config file: no such file\n    fix: check SMARTHOST_CONFIG \(it is set to /);
  });

  it('the embedded default still works where the daemon keeps its queue: start, then queue and sendmail in that folder', async (t) => {
    const dir = fresh();
    if (skipIfEtc(t)) return;
    const child = spawn(process.execPath, [CLI, 'start'], { cwd: dir, env: cleanEnv({ SMARTHOST_LISTEN: '127.0.0.1:0' }), stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" line:\n${out}`)), 15_000);
        const seen = (d: Buffer) => { out += d.toString(); if (/listening on 127\.0\.0\.1:\d+/.test(out)) { clearTimeout(timer); resolve(); } };
        child.stdout.on('data', seen);
        child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}:\n${out}`)); });
      });
      assert.match(out, /configuration \(embedded default\)/);
      const q = cli(['queue'], { cwd: dir });
      assert.equal(q.status, 0, q.stderr);
      assert.equal(q.stdout, 'Mail queue is empty\n');
      assert.equal(cli(['sendmail', 'root'], { cwd: dir, input: 'Subject: hi\n\nx\n' }).status, 0);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('environment overrides', () => {
  it('apply over the file, are shown by check, and a bad one is named', () => {
    const { dir, file } = configDir('[relay]\nurl = "smtp://127.0.0.1:2600"\ntls = "none"\n');
    const env = { SMARTHOST_HOSTNAME: 'env.test', SMARTHOST_RELAY_URL: 'smtp://127.0.0.1:2700', SMARTHOST_DATA_DIR: 'elsewhere' };
    const ok = cli(['check', '-c', file], { cwd: dir, env });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`from the environment: SMARTHOST_RELAY_URL=smtp://127\\.0\\.0\\.1:2700, SMARTHOST_HOSTNAME=env\\.test, SMARTHOST_DATA_DIR=${dir}/elsewhere`));
    assert.match(ok.stdout, /hostname env\.test, data_dir .*\/elsewhere/);
    assert.match(ok.stdout, /relay smtp:\/\/127\.0\.0\.1:2700 tls=none/);
    const bad = cli(['check', '-c', file], { cwd: dir, env: { SMARTHOST_RELAY_URL: '[mail.example.net]:587', SMARTHOST_LISTEN: 'localhost' } });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^SMARTHOST_LISTEN \(environment\): listen\[0\]\.address = "localhost" is not host:port$/m);
    assert.match(bad.stderr, /^SMARTHOST_RELAY_URL \(environment\): relay\.url: "\[mail\.example\.net\]:587" is Postfix's relayhost syntax, not a URL\n    fix: set SMARTHOST_RELAY_URL="smtp:\/\/mail\.example\.net:587"$/m);
  });
});

describe('smarthost config default and contrib/smarthost.example.toml', () => {
  it('config default prints the embedded default as TOML that check accepts', () => {
    const dir = fresh();
    const r = cli(['config', 'default'], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\[\[listen\]\]\naddress = "127\.0\.0\.1:2525"$/m);
    fs.writeFileSync(path.join(dir, 'smarthost.toml'), r.stdout);
    const check = cli(['check'], { cwd: dir, env: { SMARTHOST_LISTEN: '127.0.0.1:0' } });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`configuration ${dir}/smarthost\\.toml: OK`));
  });

  it('the example has every section and passes check (its paths pointed into a temp folder, its ports to 0)', () => {
    const example = fs.readFileSync(path.join(ROOT, 'contrib/smarthost.example.toml'), 'utf8');
    const tables = Object.keys(parse(example));
    assert.deepEqual(TOP_KEYS.filter((k) => !tables.includes(k)), [], 'every section and top-level key');
    const dir = fresh();
    const certs = testCerts();
    fs.mkdirSync(path.join(dir, 'etc'));
    fs.copyFileSync(certs.valid.certFile, path.join(dir, 'etc/relay.pem'));
    fs.copyFileSync(certs.valid.keyFile, path.join(dir, 'etc/relay.key'));
    fs.writeFileSync(path.join(dir, 'etc/relay.secret'), 'secret\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'etc/webhook.secret'), crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    fs.mkdirSync(path.join(dir, 'etc/dkim'));
    const dkimKey = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' });
    fs.writeFileSync(path.join(dir, 'etc/dkim/example.com.s2026.key'), dkimKey, { mode: 0o600 });
    // check looks the DKIM record up: at a closed local port (a warning), never at the real DNS
    const text = example.replaceAll('/etc/smarthost/', `${dir}/etc/`).replaceAll('/var/lib/smarthost', `${dir}/data`)
      .replace(/(address = "[^"]*):\d+"/g, '$1:0"').replace(/^\[mx\].*$/m, '$&\nnameservers = ["127.0.0.1:9"]');
    const file = path.join(dir, 'smarthost.toml');
    fs.writeFileSync(file, text);
    const r = cli(['check', '-c', file], { cwd: dir });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /: OK/);
    assert.match(r.stdout, /relay smtp:\/\/smtp\.example\.net:587 tls=verify user=relay@example\.com/);
  });
});
