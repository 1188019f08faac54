// End to end: the built daemon accepts mail over loopback from nodemailer,
// swaks and raw sockets, queues it durably, logs it like Postfix, and the
// queue commands show it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import nodemailer from 'nodemailer';
import { removeDir, spoolMessages, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';

describe('intake', () => {
  let d: RunningDaemon;
  let trusted: number;
  let untrusted: number;
  before(async () => {
    d = await startDaemon({
      toml: `
[[listen]]
address = "127.0.0.1:0"

[[listen]]
address = "127.0.0.1:0"
trusted_networks = []

[local]
domains = ["relay.test", "localhost"]
`,
    });
    [trusted, untrusted] = d.ports as [number, number];
  });
  after(async () => { await d.stop(); removeDir(d.dir); });

  it('queues a message from nodemailer and logs it in the Postfix shape', async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: trusted, secure: false, ignoreTLS: true });
    const info = await t.sendMail({ from: 'alice@example.com', to: 'bob@example.net', subject: 'hi', text: 'hello\n' });
    const m = /250 2\.0\.0 Ok: queued as ([0-9A-F]{18})/.exec(info.response);
    assert.ok(m, info.response);
    const id = m[1]!;
    await d.waitForLog(new RegExp(`${id}: from=<alice@example.com>, size=\\d+, nrcpt=1 \\(queue active\\)`));
    assert.match(d.logs(), new RegExp(`smarthost/smtpd\\[\\d+\\]: ${id}: client=localhost\\[127\\.0\\.0\\.1\\]`));
    assert.match(d.logs(), /smarthost\/smtpd\[\d+\]: connect from localhost\[127\.0\.0\.1\]/);
    const stored = spoolMessages(d.dataDir).find((s) => s.id === id);
    assert.ok(stored, 'message file is in queue/messages');
    assert.equal(stored.envelope.sender, 'alice@example.com');
    assert.deepEqual((stored.envelope.recipients as Array<{ address: string }>).map((r) => r.address), ['bob@example.net']);
    const body = stored.body.toString();
    assert.match(body, new RegExp(`^Received: from \\[127\\.0\\.0\\.1\\] \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby relay\\.test \\(smarthost\\) with ESMTP id ${id}\\r\\n\\tfor <bob@example\\.net>; `));
    assert.match(body, /\r\nSubject: hi\r\n/);
  });

  it('records the envelope: DSN parameters, client, arrival', async () => {
    const c = await RawSmtp.connect(trusted);
    await c.read();
    const ehlo = await c.cmd('EHLO client.test');
    for (const ext of ['PIPELINING', 'SIZE 25000000', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN']) {
      assert.ok(ehlo.lines.some((l) => l.slice(4) === ext), `EHLO offers ${ext}: ${ehlo.text}`);
    }
    assert.ok(!ehlo.lines.some((l) => l.includes('AUTH')), 'no AUTH on a listener with auth = none');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com> RET=HDRS ENVID=env42')).text, '250 2.1.0 Ok');
    assert.equal((await c.cmd('RCPT TO:<b@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.net')).text, '250 2.1.5 Ok');
    await c.cmd('DATA');
    c.write('Subject: dsn\r\n\r\nbody\r\n.\r\n');
    const r = await c.read();
    const id = /queued as (\w+)/.exec(r.text)![1]!;
    await c.cmd('QUIT');
    const env = spoolMessages(d.dataDir).find((s) => s.id === id)!.envelope as Record<string, any>;
    assert.equal(env.ret, 'HDRS');
    assert.equal(env.envid, 'env42');
    assert.deepEqual(env.recipients, [{ address: 'b@example.net', notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;b@example.net' }]);
    assert.equal(env.client.address, '127.0.0.1');
    assert.equal(env.client.helo, 'client.test');
    assert.equal(env.client.protocol, 'ESMTP');
    assert.ok(Date.now() - Date.parse(env.arrived) < 60_000);
  });

  it('denies relaying for an untrusted, unauthenticated client, and logs NOQUEUE', async () => {
    const c = await RawSmtp.connect(untrusted);
    await c.read();
    await c.cmd('EHLO client.test');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).code, 250);
    const r = await c.cmd('RCPT TO:<victim@example.net>');
    assert.equal(r.text, '554 5.7.1 <victim@example.net>: Relay access denied');
    // local domains are still accepted from anyone
    assert.equal((await c.cmd('RCPT TO:<postmaster@relay.test>')).code, 250);
    await c.cmd('QUIT');
    await d.waitForLog(/NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 <victim@example\.net>: Relay access denied; from=<a@example\.com> to=<victim@example\.net> proto=ESMTP helo=<client\.test>/);
  });

  it('answers a pipelined MAIL, RCPT, DATA group in one write', async () => {
    // one write means one segment on loopback, so the three replies arrive in one read;
    // written one by one, they arrive apart in most of these 20 tries
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port: trusted, host: '127.0.0.1' }, () => resolve(s));
      s.once('error', reject);
    });
    const reads: string[] = [];
    let buffered = '';
    const waiters: Array<() => void> = [];
    socket.on('data', (c: Buffer) => { reads.push(c.toString('latin1')); buffered += c.toString('latin1'); waiters.splice(0).forEach((w) => w()); });
    const until = (re: RegExp) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re}: ${JSON.stringify(buffered)}`)), 5000);
      const check = () => { if (re.test(buffered)) { clearTimeout(timer); resolve(); } else waiters.push(check); };
      check();
    });
    try {
      await until(/^220 .*\r\n/m);
      socket.write('EHLO client.example\r\n');
      await until(/^250 .*\r\n/m);
      for (let i = 0; i < 20; i++) {
        reads.length = 0;
        buffered = '';
        socket.write(`MAIL FROM:<a${i}@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n`);
        await until(/^354 .*\r\n/m);
        assert.deepEqual(reads, ['250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n'], `try ${i}`);
        socket.write('Subject: pipelined\r\n\r\nbody\r\n.\r\n');
        await until(/^250 2\.0\.0 Ok: queued as .*\r\n/m);
      }
    } finally {
      socket.destroy();
    }
  });

  it('accepts mail from swaks', () => {
    const r = spawnSync('swaks', ['--server', `127.0.0.1:${trusted}`, '--from', 'cron@relay.test', '--to', 'ops@example.net', '--body', 'from swaks'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /<- {2}250 2\.0\.0 Ok: queued as [0-9A-F]{18}/);
  });

  it('shows the queue with mailq, --json and show', async () => {
    const c = await RawSmtp.connect(trusted);
    await c.read();
    await c.cmd('EHLO q.test');
    const r = await sendRaw(c, 'queue@example.com', ['one@example.net', 'two@example.net'], 'Subject: q\r\n\r\nq\r\n.\r\n');
    const id = /queued as (\w+)/.exec(r.text)![1]!;
    await c.cmd('QUIT');

    // no DNS in tests (helpers/daemon.ts NO_DNS): the MX lookup fails and both recipients are deferred
    await d.waitForLog(new RegExp(`${id}: to=<two@example\\.net>, relay=none, .*status=deferred`));
    const list = d.cli(['queue']);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^-Queue ID-/);
    assert.match(list.stdout, new RegExp(`${id} +\\d+ \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d +queue@example\\.com\\n +\\(Host or domain name not found\\. Name service error for name=example\\.net type=MX: .*\\)\\n +one@example\\.net\\n +two@example\\.net`));
    assert.match(list.stdout, /-- \d+ Kbytes in \d+ Requests\./);

    let entry: Record<string, any> | undefined;
    const read = () => (entry = (JSON.parse(d.cli(['queue', 'list', '--json']).stdout) as Array<Record<string, any>>).find((e) => e.id === id));
    await waitFor(() => read()?.recipients[0].attempts === 1, 'attempts = 1 in the state file (it follows the log line)', 50, 50);
    assert.equal(entry!.from, 'queue@example.com');
    assert.equal(entry!.held, false);
    assert.ok(entry!.size > 0);
    assert.equal(entry!.recipients[0].address, 'one@example.net');
    assert.equal(entry!.recipients[0].state, 'deferred');
    assert.equal(entry!.recipients[0].attempts, 1);
    assert.ok(Date.parse(entry!.recipients[0].next_attempt) > Date.now(), entry!.recipients[0].next_attempt);
    assert.match(entry!.recipients[0].last_reply, /^Host or domain name not found/);

    const show = d.cli(['queue', 'show', id]);
    assert.match(show.stdout, /from: +<queue@example\.com>/);
    assert.match(show.stdout, /<two@example\.net> deferred, attempts=1, next try \d{4}-.*\n +last reply: Host or domain name not found/);

    assert.equal(d.cli(['queue', 'hold', id]).status, 0);
    assert.match(d.cli(['queue']).stdout, new RegExp(`${id}!`));
    assert.equal(d.cli(['queue', 'release', id]).status, 0);

    const missing = d.cli(['queue', 'show', 'FFFFFFFFFFFFFFFFFF']);
    assert.equal(missing.status, 67);
    assert.match(missing.stderr, /no message FFFFFFFFFFFFFFFFFF in the queue/);

    assert.equal(d.cli(['queue', 'delete', id]).status, 0);
    assert.ok(!spoolMessages(d.dataDir).some((s) => s.id === id));
  });
});

describe('logs as JSON lines', () => {
  it('emits the same events with --log-format json', async () => {
    const d = await startDaemon({ toml: '[[listen]]\naddress = "127.0.0.1:0"\n', args: ['--log-format', 'json'], listeners: 1 }).catch((e) => { throw e; });
    try {
      const c = await RawSmtp.connect(d.ports[0]!);
      await c.read();
      await c.cmd('EHLO j.test');
      const r = await sendRaw(c, 'j@example.com', ['k@example.net'], 'Subject: j\r\n\r\nj\r\n.\r\n');
      const id = /queued as (\w+)/.exec(r.text)![1]!;
      await c.cmd('QUIT');
      await d.waitForLog(/"event":"disconnect"/);
      const events = d.logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const queued = events.find((e) => e.event === 'queued')!;
      assert.equal(queued.queue_id, id);
      assert.equal(queued.from, 'j@example.com');
      assert.equal(queued.nrcpt, 1);
      assert.equal(queued.program, 'smarthost/qmgr');
      const client = events.find((e) => e.event === 'client')!;
      assert.equal(client.client_ip, '127.0.0.1');
      assert.equal(client.message, 'client=localhost[127.0.0.1]');
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });
});
