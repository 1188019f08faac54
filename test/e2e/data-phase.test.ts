// Issue 21, message content end to end (the real daemon, a real upstream, a
// real Maildir): a line starting with a single dot loses it (RFC 5321 §4.5.2),
// and lines longer than 998 octets are broken with CRLF SPACE when relayed, so
// an upstream that refuses long lines takes the message, while the spool keeps
// it as it came.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, spoolMessages, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream, type ReceivedMessage, type Upstream } from '../peers/upstream.js';

let up: Upstream;
let d: RunningDaemon;

before(async () => {
  up = await startUpstream({ maxLineLength: 998 });
  d = await startDaemon({
    toml: [
      '[[listen]]', 'address = "127.0.0.1:0"',
      '[relay]', `url = "${up.url}"`, 'tls = "none"',
      '[local]', 'domains = ["localhost"]', 'users = ["alice"]',
    ].join('\n'),
  });
});
after(async () => { await d.stop(); removeDir(d.dir); await up.close(); });

/** Sends `raw` (DATA as the client writes it, final dot included) and returns the queue id. */
async function submit(to: string, raw: string): Promise<string> {
  const c = await RawSmtp.connect(d.ports[0]!);
  await c.read();
  await c.cmd('EHLO client.test');
  const r = await sendRaw(c, 'carol@client.test', [to], raw);
  c.close();
  assert.match(r.text, /^250 2\.0\.0 Ok: queued as \w+$/);
  return /queued as (\w+)/.exec(r.text)![1]!;
}

/** The message as the upstream got it, from the client's Subject on (our Received header comes first). */
async function relayed(to: string): Promise<string> {
  let m: ReceivedMessage | undefined;
  await waitFor(() => (m = up.messages.find((x) => x.to.includes(to))) !== undefined, () => `a message for ${to} at the upstream; log:\n${d.logs()}`, 500);
  const text = m!.data.toString('latin1');
  return text.slice(text.indexOf('Subject:'));
}

describe('issue 21: a line starting with one dot loses it (RFC 5321 §4.5.2)', () => {
  const raw = 'Subject: dots\r\n\r\n.single\r\n..double\r\n. \r\nx.\r\nend\r\n.\r\n';

  it('relayed: the upstream gets the lines without their transparency dot', async () => {
    await submit('bob@example.net', raw);
    assert.equal(await relayed('bob@example.net'), 'Subject: dots\r\n\r\nsingle\r\n.double\r\n \r\nx.\r\nend\r\n');
  });

  it('delivered to a Maildir: the same lines', async () => {
    await submit('alice@localhost', raw);
    const dir = path.join(d.dataDir, 'mail', 'alice', 'new');
    await waitFor(() => fs.existsSync(dir) && fs.readdirSync(dir).length > 0, () => `a message in ${dir}; log:\n${d.logs()}`, 500);
    const text = fs.readFileSync(path.join(dir, fs.readdirSync(dir)[0]!), 'latin1');
    assert.equal(text.slice(text.indexOf('Subject:')), 'Subject: dots\n\nsingle\n.double\n \nx.\nend\n');
  });
});

describe('issue 21: lines longer than 998 octets', () => {
  it('are broken with CRLF SPACE when relayed (5,000 and 200,000 octets; header and body), and kept whole in the spool', async () => {
    const subject = `Subject: ${'s'.repeat(5000)}`;
    const html = `<p>${'h'.repeat(5000)}</p>`;
    const big = `.${'b'.repeat(199_999)}`; // starts with a dot: stuffed on the wire, not counted
    up.setFaults([{ stage: 'mail', action: 'reply', reply: '451 4.3.0 Try again later', times: 1 }]);
    const id = await submit('dave@example.net', `${subject}\r\n\r\n${html}\r\n.${big}\r\n.\r\n`);
    await d.waitForLog(new RegExp(`${id}: to=<dave@example\\.net>, .*status=deferred`));
    const stored = spoolMessages(d.dataDir).find((m) => m.id === id)!.body.toString('latin1');
    assert.ok(stored.endsWith(`${subject}\r\n\r\n${html}\r\n${big}\r\n`), 'the spool holds the lines unbroken');

    assert.equal(d.cli(['queue', 'flush', id]).status, 0);
    const got = await relayed('dave@example.net');
    const lines = got.split('\r\n');
    assert.ok(Math.max(...lines.map((l) => l.length)) <= 998, `longest line relayed: ${Math.max(...lines.map((l) => l.length))}`);
    assert.equal(lines[0], subject.slice(0, 998), 'broken after 998 octets');
    assert.equal(lines[1], ` ${subject.slice(998, 998 + 997)}`, 'then CRLF SPACE and 997 more');
    assert.equal(got.replaceAll('\r\n ', ''), `${subject}\r\n\r\n${html}\r\n${big}\r\n`, 'nothing but the breaks added');
  });
});
