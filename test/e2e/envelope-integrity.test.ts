// Issue 21, envelope integrity: the addresses a client gives are the addresses that are
// judged, logged, queued and relayed, byte for byte. A-labels stay A-labels, SMTPUTF8 is used
// only when the client asked for it (and bounced like Postfix when the upstream lacks it),
// 8-bit bytes without SMTPUTF8 are refused, and a quoted local part is carried or refused,
// never cut into another address.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, spoolMessages, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startPostfixProvider } from '../peers/postfix.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function setup(upstream: UpstreamOptions = {}): Promise<{ up: Upstream; d: RunningDaemon }> {
  const up = await startUpstream(upstream);
  cleanups.push(() => up.close());
  const d = await startDaemon({
    toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n[local]\ndomains = ["local.example"]\n` +
      '[queue]\nretry_min = "1s"\nretry_max = "2s"\n',
  });
  cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
  return { up, d };
}

/** A UTF-8 string as the bytes RawSmtp sends (it writes strings as latin1). */
const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const body = 'From: <alice@client.test>\r\nSubject: envelope\r\n\r\nHello.\r\n.';

/** One session: EHLO, then each line in turn; returns the replies. Lines starting "DATA" send `body` after a 354. */
async function dialog(port: number, lines: string[], ehlo = 'client.test'): Promise<string[]> {
  const c = await RawSmtp.connect(port);
  try {
    await c.read();
    await c.cmd(`EHLO ${ehlo}`);
    const out: string[] = [];
    for (const line of lines) {
      const r = await c.cmd(line);
      out.push(r.lines.at(-1)!);
      if (line === 'DATA' && r.code === 354) out.push((await c.cmd(body)).lines.at(-1)!);
    }
    await c.cmd('QUIT');
    return out;
  } finally {
    c.close();
  }
}

const envelopeLines = (up: Upstream) => up.sessions.flatMap((s) => s.envelopeLines.map((b) => b.toString('latin1')));

describe('envelope integrity (issue 21)', () => {
  for (const offers of [false, true]) {
    it(`ASCII in, the same bytes out: A-labels and case kept, no SMTPUTF8 (upstream ${offers ? 'offers' : 'does not offer'} SMTPUTF8)`, async () => {
      const { up, d } = await setup({ smtputf8: offers });
      const from = 'Alice@xn--mller-kva.example', to = 'Bob.Smith@xn--bcher-kva.example';
      const r = await dialog(d.ports[0]!, [`MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA']);
      assert.match(r[3]!, /^250 2\.0\.0 Ok: queued as (\w+)/);
      const id = /queued as (\w+)/.exec(r[3]!)![1]!;
      const [m] = await up.waitForMessages(1);
      const lines = envelopeLines(up);
      assert.match(lines[0]!, new RegExp(`^MAIL FROM:<${esc(from)}>( SIZE=\\d+)?$`), 'no SMTPUTF8, nothing converted');
      assert.equal(lines[1], `RCPT TO:<${to}>`);
      assert.match(m!.data.toString('latin1'), new RegExp(`\\tfor <${esc(to)}>; `), 'Received names the recipient as given');
      assert.doesNotMatch(m!.data.toString('latin1'), /[\x80-\xff]/);
      await d.waitForLog(new RegExp(`${id}: from=<${esc(from)}>, size=`));
      await d.waitForLog(new RegExp(`${id}: to=<${esc(to)}>, relay=127\\.0\\.0\\.1.*status=sent`));
    });
  }

  it('written to the queue and listed as sent: A-label and case kept, quoted local part whole', async () => {
    const { up, d } = await setup({ faults: [{ stage: 'dot', action: 'reply', reply: '451 4.3.0 Try again later' }] });
    const from = 'Alice@xn--mller-kva.example', to = ['Bob.Smith@xn--bcher-kva.example', '"J.\\Q"@Example.NET'];
    const r = await dialog(d.ports[0]!, [`MAIL FROM:<${from}>`, ...to.map((t) => `RCPT TO:<${t}>`), 'DATA']);
    const id = /queued as (\w+)/.exec(r[4]!)![1]!;
    await d.waitForLog(new RegExp(`${id}: to=<${esc(to[1]!)}>, .*status=deferred`));
    const [stored] = spoolMessages(d.dataDir);
    assert.equal(stored!.envelope.sender, from);
    assert.deepEqual((stored!.envelope.recipients as Array<{ address: string }>).map((x) => x.address), to);
    assert.ok(!('smtputf8' in stored!.envelope));
    const listed = d.cli(['queue', '--json']).stdout;
    assert.ok(listed.includes(from) && listed.includes(to[0]!), listed);
    assert.deepEqual(envelopeLines(up).slice(1, 3), to.map((t) => `RCPT TO:<${t}>`));
  });

  it('SMTPUTF8 asked for and offered: MAIL FROM carries it, the UTF-8 address goes out as sent', async () => {
    const { up, d } = await setup({ smtputf8: true });
    const r = await dialog(d.ports[0]!, ['MAIL FROM:<alice@client.test> SMTPUTF8', utf8('RCPT TO:<jörg@bücher.example>'), 'DATA']);
    assert.match(r[3]!, /^250 /);
    await up.waitForMessages(1);
    const lines = envelopeLines(up);
    assert.match(lines[0]!, /^MAIL FROM:<alice@client\.test>.* SMTPUTF8/);
    assert.equal(lines[1], utf8('RCPT TO:<jörg@bücher.example>'));
  });

  it('SMTPUTF8 needed but not offered by the upstream: bounced 5.6.7 in Postfix\'s words, nothing sent as raw 8-bit', async () => {
    const { up, d } = await setup({ smtputf8: false });
    const r = await dialog(d.ports[0]!, ['MAIL FROM:<alice@client.test> SMTPUTF8', utf8('RCPT TO:<jörg@bücher.example>'), 'DATA']);
    const id = /queued as (\w+)/.exec(r[3]!)![1]!;
    await d.waitForLog(new RegExp(`${id}: to=<jörg@bücher\\.example>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${up.port}, .*dsn=5\\.6\\.7, status=bounced ` +
      `\\(SMTPUTF8 is required, but was not offered by host 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]\\)`));
    const [bounce] = await up.waitForMessages(1);
    assert.equal(bounce!.from, '', 'only the notice to the sender went out');
    assert.deepEqual(bounce!.to, ['alice@client.test']);
    assert.ok(envelopeLines(up).every((l) => !/[\x80-\xff]/.test(l)), envelopeLines(up).join('\n'));
  });

  it('SMTPUTF8 asked for with an ASCII envelope: relayed to an upstream without SMTPUTF8 (nothing needs it)', async () => {
    const { up, d } = await setup({ smtputf8: false });
    const r = await dialog(d.ports[0]!, ['MAIL FROM:<alice@client.test> SMTPUTF8', 'RCPT TO:<bob@example.net>', 'DATA']);
    assert.match(r[3]!, /^250 /);
    await up.waitForMessages(1);
    assert.doesNotMatch(envelopeLines(up)[0]!, /SMTPUTF8/);
  });

  it('8-bit bytes in an address without SMTPUTF8 get 553 5.6.7; invalid UTF-8 with SMTPUTF8 gets 501', async () => {
    const { up, d } = await setup();
    const r = await dialog(d.ports[0]!, [
      'MAIL FROM:<j\xf6rg@client.test>',
      utf8('MAIL FROM:<jörg@client.test>'),
      'MAIL FROM:<j\xf6rg@client.test> SMTPUTF8',
      'MAIL FROM:<alice@client.test>',
      utf8('RCPT TO:<user@bücher.example>'),
      'RCPT TO:<bob@example.net>',
      'DATA',
    ]);
    assert.deepEqual(r.slice(0, 6), [
      '553 5.6.7 Must declare SMTPUTF8 to send unicode address',
      '553 5.6.7 Must declare SMTPUTF8 to send unicode address',
      '501 5.1.7 Bad sender address syntax',
      '250 2.1.0 Ok',
      '553 5.6.7 Must declare SMTPUTF8 to send unicode address',
      '250 2.1.5 Ok',
    ]);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.from, 'alice@client.test');
    assert.deepEqual(m!.to, ['bob@example.net']);
  });

  it('a quoted local part is carried exactly, or refused with 501 5.1.3 when it holds what smtp-server would cut', async () => {
    const { up, d } = await setup();
    const r = await dialog(d.ports[0]!, [
      'MAIL FROM:<alice@client.test>',
      'RCPT TO:<"bob@evil.example> x"@local.example>',
      'RCPT TO:<"bob@evil.example>"@local.example>',
      'RCPT TO:<"john doe"@example.net>',
      'RCPT TO:<"John.Q\\"Public"@example.net>',
      'DATA',
    ]);
    assert.deepEqual(r.slice(0, 4), [
      '250 2.1.0 Ok',
      '501 5.1.3 Bad recipient address syntax',
      '501 5.1.3 Bad recipient address syntax',
      '501 5.1.3 Bad recipient address syntax',
    ]);
    assert.match(r[4]!, /^250 /);
    const [m] = await up.waitForMessages(1);
    assert.deepEqual(m!.to, ['"John.Q\\"Public"@example.net']);
    assert.deepEqual(envelopeLines(up).filter((l) => l.startsWith('RCPT')), ['RCPT TO:<"John.Q\\"Public"@example.net>']);
    await waitFor(() => /removed/.test(d.logs()), 'delivery done');
    assert.doesNotMatch(d.logs(), /evil\.example/, 'no other recipient was judged, queued or relayed');
  });

  it('Received: an 8-bit HELO name in a message without SMTPUTF8 is written as its A-label', async () => {
    const { up, d } = await setup();
    const r = await dialog(d.ports[0]!, ['MAIL FROM:<alice@client.test>', 'RCPT TO:<bob@example.net>', 'DATA'], utf8('bücher.example'));
    assert.match(r[3]!, /^250 /);
    const [m] = await up.waitForMessages(1);
    assert.match(m!.data.toString('latin1'), /^Received: from xn--bcher-kva\.example \(/);
  });
});

describe('envelope integrity through a real Postfix (issue 21)', () => {
  it('Postfix takes what smarthost sends and passes it on unchanged: the A-label as ASCII, the UTF-8 address with SMTPUTF8', async () => {
    const up = await startUpstream({ smtputf8: true });
    cleanups.push(() => up.close());
    const pf = await startPostfixProvider({ relayTo: { host: up.host, port: up.port } });
    cleanups.push(() => pf.stop());
    const d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "smtp://127.0.0.1:${pf.plainPort}"\ntls = "none"\n` });
    cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
    const ascii = await dialog(d.ports[0]!, ['MAIL FROM:<Alice@client.test>', 'RCPT TO:<Bob.Smith@xn--bcher-kva.example>', 'DATA']);
    assert.match(ascii[3]!, /^250 /);
    await up.waitForMessages(1, 20_000);
    const utf = await dialog(d.ports[0]!, ['MAIL FROM:<alice@client.test> SMTPUTF8', utf8('RCPT TO:<jörg@bücher.example>'), 'DATA']);
    assert.match(utf[3]!, /^250 /);
    await up.waitForMessages(2, 20_000);
    const lines = envelopeLines(up);
    assert.match(lines[0]!, /^MAIL FROM:<Alice@client\.test>/);
    assert.doesNotMatch(lines[0]!, /SMTPUTF8/);
    assert.match(lines[1]!, /^RCPT TO:<Bob\.Smith@xn--bcher-kva\.example>( ORCPT=rfc822;Bob\.Smith@xn--bcher-kva\.example)?$/); // Postfix adds ORCPT
    assert.match(lines[2]!, /^MAIL FROM:<alice@client\.test>.* SMTPUTF8/);
    assert.match(lines[3]!, new RegExp(`^${esc(utf8('RCPT TO:<jörg@bücher.example>'))}`));
    assert.match(pf.log(), /to=<Bob\.Smith@xn--bcher-kva\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent/);
  });
});
