// End to end (issue 21, AUTH): failed logins throttled per account as well as per address
// (guesses from many addresses, one each, then the right password: refused from a new
// address, accepted from the address the user works from), and the per-user sender
// binding of [auth] senders (Postfix reject_sender_login_mismatch).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launch, removeDir, runCli, tempDir, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const PASSWORD = 'correct horse battery';
const OK = '235 2.7.0 Authentication successful';
const WRONG = '535 5.7.8 Error: authentication failed';
const TEMP = '454 4.7.0 Temporary authentication failure';

describe('issue 21: AUTH per account, and sender binding', () => {
  let d: RunningDaemon;
  let port: number;
  before(async () => {
    const dir = tempDir();
    const configFile = writeConfig(dir, `
[[listen]]
address = "127.0.0.1:0"
auth = "optional"
allow_plaintext_auth = true
trusted_networks = ["127.0.0.1/32"]

[auth]
senders = { alice = ["alice@example.com", "@example.org"] }

[limits]
auth_failures = "5/10m"
auth_failures_per_account = "3/10m"
auth_failures_exempt = ["127.0.0.200/32"]
`);
    for (const u of ['alice', 'bob', 'carol']) {
      assert.equal(runCli(['user', 'add', u, '--password-stdin', '-c', configFile], { input: PASSWORD + '\n' }).status, 0);
    }
    d = await launch(dir, configFile);
    port = d.ports[0]!;
  });
  after(async () => { await d.stop(); removeDir(d.dir); });

  /** A session from `ip` logged in as `user` (the AUTH reply in `auth`), left open. */
  const login = async (ip: string, user: string, password = PASSWORD) => {
    const c = await RawSmtp.connect(port, { localAddress: ip });
    await c.read();
    await c.cmd('EHLO c.test');
    const auth = (await c.cmd(`AUTH PLAIN ${b64(`\0${user}\0${password}`)}`)).text;
    return { c, auth };
  };
  const tryAuth = async (ip: string, user: string, password = PASSWORD) => {
    const { c, auth } = await login(ip, user, password);
    c.close();
    return auth;
  };

  it('guesses from many addresses, one each, close the account to new addresses (454), not to the address the user works from', async () => {
    assert.equal(await tryAuth('127.0.0.50', 'alice'), OK, 'alice works from 127.0.0.50');
    for (let i = 0; i < 3; i++) assert.equal(await tryAuth(`127.0.0.${101 + i}`, 'alice', `guess ${i}`), WRONG);
    await d.waitForLog(/warning: [^ ]*\[127\.0\.0\.103\]: 3 failed authentication attempts for sasl_username=alice within 10m: only addresses that logged in as alice recently may log in as it, for (9|10) minutes \(smarthost auth unblock --user alice lifts it\)/);
    assert.equal(await tryAuth('127.0.0.104', 'alice'), TEMP, 'the right password from a new address');
    await d.waitForLog(/warning: [^ ]*\[127\.0\.0\.104\]: AUTH refused for sasl_username=alice, too many failed authentication attempts for this account; try again in (9|10) minutes/);
    assert.equal(await tryAuth('127.0.0.50', 'alice'), OK, 'the real user is not locked out');
    assert.equal(await tryAuth('127.0.0.200', 'alice'), OK, 'auth_failures_exempt networks are never blocked');
    assert.equal(await tryAuth('127.0.0.105', 'bob'), OK, 'other accounts are not touched');
  });

  it('smarthost auth unblock --user lifts it at once; all lifts addresses and accounts', async () => {
    const r = d.cli(['auth', 'unblock', '--user', 'alice', '--user', 'bob']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^smarthost: user bob had no failed AUTH attempts to forget$/m);
    assert.match(r.stdout, /^smarthost: unblocked user alice$/m);
    await d.waitForLog(/AUTH block lifted for user alice \(smarthost auth unblock\)/);
    assert.equal(await tryAuth('127.0.0.104', 'alice'), OK);
    for (let i = 0; i < 3; i++) assert.equal(await tryAuth(`127.0.0.${110 + i}`, 'carol', 'guess'), WRONG);
    assert.equal(await tryAuth('127.0.0.113', 'carol'), TEMP);
    const all = d.cli(['auth', 'unblock', 'all']);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /unblocked .*user carol/);
    assert.equal(await tryAuth('127.0.0.113', 'carol'), OK);
  });

  it('[auth] senders: alice may send as her addresses and @domains only; 553 5.7.1 otherwise, at MAIL FROM', async () => {
    const { c, auth } = await login('127.0.0.50', 'alice');
    assert.equal(auth, OK);
    const mail = async (from: string) => { const r = await c.cmd(`MAIL FROM:<${from}>`); await c.cmd('RSET'); return r.text; };
    assert.equal(await mail('alice@example.com'), '250 2.1.0 Ok');
    assert.equal(await mail('Alice@Example.COM'), '250 2.1.0 Ok', 'addresses compare without case');
    assert.equal(await mail('anyone@example.org'), '250 2.1.0 Ok', '@example.org: the whole domain');
    assert.equal(await mail(''), '250 2.1.0 Ok', 'the null sender (bounces, auto-replies)');
    assert.equal(await mail('bob@example.com'), '553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user alice');
    assert.equal(await mail('x@sub.example.org'), '553 5.7.1 <x@sub.example.org>: Sender address rejected: not owned by user alice', 'a subdomain is another domain');
    c.close();
    await d.waitForLog(/NOQUEUE: reject: MAIL from [^ ]*\[127\.0\.0\.50\]: 553 5\.7\.1 <bob@example\.com>: Sender address rejected: not owned by user alice; from=<bob@example\.com> proto=ESMTP helo=<c\.test>/);
  });

  it('[auth] senders: a user the map does not name owns no address (as in Postfix); unauthenticated trusted clients are not checked', async () => {
    const { c, auth } = await login('127.0.0.51', 'bob');
    assert.equal(auth, OK);
    assert.equal((await c.cmd('MAIL FROM:<bob@example.com>')).text, '553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user bob');
    assert.equal((await c.cmd('MAIL FROM:<>')).text, '250 2.1.0 Ok');
    c.close();
    const t = await RawSmtp.connect(port, { localAddress: '127.0.0.1' });
    await t.read();
    await t.cmd('EHLO c.test');
    assert.equal((await t.cmd('MAIL FROM:<alice@example.com>')).text, '250 2.1.0 Ok');
    t.close();
  });
});
