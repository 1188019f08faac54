// Issue 21 / 16: the DATA phase against a real Postfix with
// `smtpd_forbid_bare_newline = normalize`, the rules data-parser.ts says it
// follows. The same raw DATA (every smuggling variant, lines with leading dots)
// goes to Postfix and to smarthost, each delivering into a Maildir; both must
// keep the same text and take exactly one message per DATA. Variants with a
// bare CR are left to the unit tests: past the DATA phase, smarthost's cleanup
// makes a bare CR a line end where Postfix writes a space.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startPostfixProvider, type PostfixProvider } from '../peers/postfix.js';

const SMUGGLE = 'MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nsmuggled\r\n';
const VARIANTS: Array<[string, string]> = [
  ['bare LF', 'x\ny'], ['\\n.\\n', '\n.\n'], ['\\r\\n.\\n', '\r\n.\n'], ['\\n.\\r\\n', '\n.\r\n'], ['NUL', '\r\n\0.\r\n'], ['dots', '\r\n.single\r\n..double\r\n. \r\nx.\r\n'],
  ['bare-LF dots', '\n.x\n..y\n'],
];

let pf: PostfixProvider;
let d: RunningDaemon;

before(async () => {
  pf = await startPostfixProvider({ mainCf: ['smtpd_forbid_bare_newline = normalize', 'smtpd_forbid_bare_newline_exclusions ='] });
  d = await startDaemon({ toml: '[[listen]]\naddress = "127.0.0.1:0"\n[local]\ndomains = ["localhost"]\nusers = ["alice"]\n' });
});
after(async () => { await d.stop(); removeDir(d.dir); await pf.stop(); });

async function send(port: number, to: string, raw: string): Promise<string> {
  const c = await RawSmtp.connect(port);
  await c.read();
  await c.cmd('EHLO client.test');
  const r = await sendRaw(c, 'carol@client.test', [to], raw);
  const bye = await c.cmd('QUIT'); // a smuggled transaction would answer here instead
  c.close();
  assert.equal(bye.code, 221, `QUIT after the message got ${bye.text}`);
  return r.text;
}

/** Each message's body, by Subject (Postfix adds Date, From, Message-Id). */
function bySubject(files: Buffer[]): Map<string, string> {
  return new Map(files.map((f) => {
    const t = f.toString('latin1');
    const body = t.slice(t.indexOf('\n\nfirst') + 2);
    return [/\nSubject: (\S+)/.exec(t)![1]!, body];
  }));
}

describe('the DATA phase matches Postfix (smtpd_forbid_bare_newline = normalize)', () => {
  it('keeps the same text for every smuggling variant and dot line, one message per DATA', async () => {
    for (const [i, [, seq]] of VARIANTS.entries()) {
      const raw = `Subject: v${i}\r\n\r\nfirst${seq}${SMUGGLE}end\r\n.\r\n`;
      assert.match(await send(pf.plainPort, `alice@${pf.domain}`, raw), /^250 /);
      assert.match(await send(d.ports[0]!, 'alice@localhost', raw), /^250 /);
    }
    const ours = path.join(d.dataDir, 'mail', 'alice', 'new');
    await waitFor(() => fs.existsSync(ours) && fs.readdirSync(ours).length >= VARIANTS.length, () => `our Maildir; log:\n${d.logs()}`, 500);
    const theirs = bySubject(await pf.waitForMail('alice', VARIANTS.length));
    const mine = bySubject(fs.readdirSync(ours).map((f) => fs.readFileSync(path.join(ours, f))));
    assert.equal(theirs.size, VARIANTS.length, 'Postfix: one message per DATA');
    assert.equal(mine.size, VARIANTS.length, 'smarthost: one message per DATA');
    for (const [i, [name]] of VARIANTS.entries()) assert.equal(mine.get(`v${i}`), theirs.get(`v${i}`), `${name}: the same text as Postfix`);
  });
});
