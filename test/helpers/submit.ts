// Sends one message into a running daemon over SMTP and returns its queue id.
import assert from 'node:assert/strict';
import { RawSmtp } from './smtp-client.js';

export interface SubmitOptions {
  readonly mailParams?: string;                         // e.g. 'RET=HDRS ENVID=abc'
  readonly rcptParams?: Readonly<Record<string, string>>; // per recipient: 'NOTIFY=SUCCESS ORCPT=rfc822;x@y'
  readonly body?: string;
}

export async function submit(port: number, from: string, to: readonly string[], opts: SubmitOptions = {}): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    await c.read();
    await c.cmd('EHLO client.test');
    const mail = await c.cmd(`MAIL FROM:<${from}>${opts.mailParams ? ' ' + opts.mailParams : ''}`);
    assert.equal(mail.code, 250, mail.text);
    for (const t of to) {
      const r = await c.cmd(`RCPT TO:<${t}>${opts.rcptParams?.[t] ? ' ' + opts.rcptParams[t] : ''}`);
      assert.equal(r.code, 250, r.text);
    }
    assert.equal((await c.cmd('DATA')).code, 354);
    const body = opts.body ?? `From: <${from}>\r\nTo: <${to.join('>, <')}>\r\nSubject: test\r\nMessage-ID: <${Date.now()}.${Math.random()}@client.test>\r\n\r\nHello.\r\n`;
    const r = await c.cmd(`${body}.`);
    assert.equal(r.code, 250, r.text);
    await c.cmd('QUIT');
    return /queued as (\w+)/.exec(r.text)![1]!;
  } finally {
    c.close();
  }
}
