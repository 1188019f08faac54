// End to end (issue 20): the failed-AUTH block says how long it lasts, in the reply and the log;
// `smarthost auth unblock ADDRESS|all` lifts it in the running daemon through the control
// socket; [limits] auth_failures_exempt networks are never blocked.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launch, removeDir, runCli, tempDir, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const PASSWORD = 'correct horse battery';
const BLOCKED = /^421 4\.7\.0 Error: too many failed authentication attempts, try again in (9|10) minutes$/;

describe('AUTH throttle: duration, unblock, exemptions', () => {
  let d: RunningDaemon;
  let port: number;
  before(async () => {
    const dir = tempDir();
    const configFile = writeConfig(dir, `
[[listen]]
address = "127.0.0.1:0"
auth = "optional"
allow_plaintext_auth = true
trusted_networks = []

[limits]
auth_failures = "2/10m"
auth_failures_per_account = "0"   # per address only: alice fails from many addresses here (auth-abuse.test.ts covers accounts)
auth_failures_exempt = ["127.0.0.24/30"]
`);
    assert.equal(runCli(['user', 'add', 'alice', '--password-stdin', '-c', configFile], { input: PASSWORD + '\n' }).status, 0);
    d = await launch(dir, configFile);
    port = d.ports[0]!;
  });
  after(async () => { await d.stop(); removeDir(d.dir); });

  const tryAuth = async (ip: string, password: string) => {
    const c = await RawSmtp.connect(port, { localAddress: ip });
    await c.read();
    await c.cmd('EHLO c.test');
    const r = await c.cmd(`AUTH PLAIN ${b64(`\0alice\0${password}`)}`);
    c.close();
    return r.text;
  };
  const block = async (ip: string) => {
    for (let i = 0; i < 2; i++) assert.equal(await tryAuth(ip, 'wrong'), '535 5.7.8 Error: authentication failed');
    assert.match(await tryAuth(ip, PASSWORD), BLOCKED);
  };

  it('the 421 and the log say how long the block lasts and how to lift it', async () => {
    await block('127.0.0.11');
    await d.waitForLog(/warning: [^ ]*\[127\.0\.0\.11\]: 2 failed authentication attempts within 10m: AUTH from 127\.0\.0\.11 is refused for (9|10) minutes \(smarthost auth unblock 127\.0\.0\.11 lifts it\)/);
    await d.waitForLog(/warning: [^ ]*\[127\.0\.0\.11\]: AUTH refused, too many failed authentication attempts; try again in (9|10) minutes/);
  });

  it('smarthost auth unblock ADDRESS lifts one block at once; the others stay', async () => {
    await block('127.0.0.12');
    await block('127.0.0.13');
    const r = d.cli(['auth', 'unblock', '127.0.0.12']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /unblocked 127\.0\.0\.12$/m);
    assert.equal(await tryAuth('127.0.0.12', PASSWORD), '235 2.7.0 Authentication successful');
    assert.match(await tryAuth('127.0.0.13', PASSWORD), BLOCKED);
    await d.waitForLog(/smarthost\/smtpd\[\d+\]: AUTH block lifted for 127\.0\.0\.12 \(smarthost auth unblock\)/);
    const again = d.cli(['auth', 'unblock', '127.0.0.12']);
    assert.equal(again.status, 0);
    assert.match(again.stdout, /127\.0\.0\.12 had no failed AUTH attempts to forget/);
  });

  it('smarthost auth unblock all lifts every block, also after a SIGHUP', async () => {
    await block('127.0.0.14');
    d.child.kill('SIGHUP');
    await d.waitForLog(/reload -- configuration/);
    assert.match(await tryAuth('127.0.0.14', PASSWORD), BLOCKED, 'a reload keeps the counts');
    const r = d.cli(['auth', 'unblock', 'all']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /unblocked .*127\.0\.0\.14/);
    assert.equal(await tryAuth('127.0.0.14', PASSWORD), '235 2.7.0 Authentication successful');
    assert.equal(await tryAuth('127.0.0.13', PASSWORD), '235 2.7.0 Authentication successful');
  });

  it('an address in auth_failures_exempt is never blocked', async () => {
    for (let i = 0; i < 4; i++) assert.equal(await tryAuth('127.0.0.25', 'wrong'), '535 5.7.8 Error: authentication failed');
    assert.equal(await tryAuth('127.0.0.25', PASSWORD), '235 2.7.0 Authentication successful');
  });

  it('usage: an address that is not an IP is refused (64); with no daemon nothing is lifted, and it says so (75)', () => {
    const bad = d.cli(['auth', 'unblock', 'localhost']);
    assert.equal(bad.status, 64);
    assert.match(bad.stderr, /"localhost" is not an IP address/);
    const dir = tempDir();
    try {
      const file = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:0"\n');
      const r = runCli(['auth', 'unblock', '192.0.2.7', '-c', file]);
      assert.equal(r.status, 75, r.stderr);
      assert.match(r.stderr, /nothing unblocked: smarthost is not running/);
    } finally { removeDir(dir); }
  });

  it('auth_failures_exempt is validated like trusted_networks', () => {
    const dir = tempDir();
    try {
      const file = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:0"\n[limits]\nauth_failures_exempt = ["192.0.2.0/33"]\n');
      const r = runCli(['check', '-c', file]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /"192\.0\.2\.0\/33" in limits\.auth_failures_exempt is not an IP network/);
    } finally { removeDir(dir); }
  });
});
