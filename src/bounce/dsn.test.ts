import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDsn, dsnSubject, rfc5322Date, type DsnInput, type DsnRecipient } from './dsn.js';
import type { Envelope } from '../mail/envelope.js';

// ---------------------------------------------------------------- a small MIME reader for the checks

interface Parsed { headers: Map<string, string>; body: Buffer }

/** Header section -> lower-cased name -> unfolded value (first occurrence), and the body bytes. */
function parse(msg: Buffer): Parsed {
  const end = msg.indexOf('\r\n\r\n');
  const head = end < 0 ? msg.toString('utf8') : msg.subarray(0, end).toString('utf8');
  const headers = new Map<string, string>();
  for (const field of head.split(/\r\n(?![ \t])/)) {
    const colon = field.indexOf(':');
    const name = field.slice(0, colon).toLowerCase();
    if (!headers.has(name)) headers.set(name, field.slice(colon + 1).replace(/\r\n[ \t]/g, ' ').trim());
  }
  return { headers, body: end < 0 ? Buffer.alloc(0) : msg.subarray(end + 4) };
}

function boundaryOf(contentType: string): string {
  const m = /boundary="([^"]+)"/.exec(contentType);
  assert.ok(m, `no boundary in ${contentType}`);
  return m[1]!;
}

/** The top-level headers and the parts of a multipart message, each part parsed. */
function partsOf(msg: Buffer): { top: Parsed; parts: Parsed[] } {
  const top = parse(msg);
  const boundary = boundaryOf(top.headers.get('content-type') ?? '');
  const body = top.body.toString('latin1');
  const close = body.indexOf(`\r\n--${boundary}--\r\n`);
  assert.ok(close >= 0, 'closing boundary missing');
  assert.equal(close + `\r\n--${boundary}--\r\n`.length, body.length, 'nothing after the closing boundary');
  const chunks = body.slice(0, close).split(`\r\n--${boundary}\r\n`).slice(1); // [0] is the preamble
  return { top, parts: chunks.map((c) => parse(Buffer.from(c, 'latin1'))) };
}

/** RFC 3464 §2.1: per-message group, then one group per recipient; blank lines between. Fields unfolded. */
function statusGroups(part: Parsed): Array<Map<string, string>> {
  return part.body.toString('utf8').replace(/\r\n$/, '').split('\r\n\r\n').map((g) => parse(Buffer.from(g + '\r\n\r\n')).headers);
}

/** The notice text with Postfix-style wrapped lines joined again. */
const unwrapped = (text: string) => text.replace(/\r\n    /g, ' ');

function assertCrlfOnly(msg: Buffer): void {
  const s = msg.toString('latin1');
  assert.equal(/\r(?!\n)|(?<!\r)\n/.test(s), false, 'bare CR or LF in output');
  for (const line of s.split('\r\n')) assert.ok(line.length <= 998, `line of ${line.length} octets`);
}

// ---------------------------------------------------------------- fixtures

const ORIGINAL = Buffer.from([
  'Received: from client.example.com (client.example.com [203.0.113.7])',
  '\tby relay.example.com (smarthost) with ESMTPS id 7F3A9C21',
  'From: Alice <alice@example.com>',
  'To: Bob <bob@example.net>',
  'Subject: Quarterly numbers',
  'Message-ID: <q3@example.com>',
  '',
  'Hello Bob,',
  '',
  'the numbers are attached.',
  '',
].join('\r\n'));
const ORIGINAL_HEADERS = ORIGINAL.subarray(0, ORIGINAL.indexOf('\r\n\r\n') + 2);

function envelope(extra: Partial<Envelope> = {}): Envelope {
  return {
    id: '18B2F1A9C0E000A1B2',
    sender: 'alice@example.com',
    recipients: [{ address: 'bob@example.net' }],
    client: { address: '203.0.113.7', hostname: 'client.example.com', helo: 'client', protocol: 'ESMTPS' },
    arrived: '2026-11-22T10:00:01.000Z',
    size: ORIGINAL.length,
    ...extra,
  };
}

const BOUNCED: DsnRecipient = {
  address: 'bob@example.net',
  action: 'failed',
  status: '5.1.1',
  remoteMta: 'smtp.example.net',
  diagnostic: '550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown',
  reason: 'host smtp.example.net[192.0.2.25] said: 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown (in reply to RCPT TO command)',
  lastAttempt: new Date('2026-11-22T10:00:02Z'),
};

function input(extra: Partial<DsnInput> = {}, env: Partial<Envelope> = {}): DsnInput {
  return {
    hostname: 'relay.example.com',
    envelope: envelope(env),
    recipients: [BOUNCED],
    original: ORIGINAL,
    now: new Date('2026-11-22T10:00:03Z'),
    boundaryId: 'B0UNDARY.1/relay.example.com',
    ...extra,
  };
}

// ---------------------------------------------------------------- tests

test('failure with RET=HDRS: headers, three parts, header section returned', () => {
  const msg = buildDsn(input({}, { ret: 'HDRS' }));
  assertCrlfOnly(msg);
  const { top, parts } = partsOf(msg);
  assert.equal(top.headers.get('from'), 'Mail Delivery System <MAILER-DAEMON@relay.example.com>');
  assert.equal(top.headers.get('to'), '<alice@example.com>');
  assert.equal(top.headers.get('subject'), 'Undelivered Mail Returned to Sender');
  assert.equal(top.headers.get('date'), 'Sun, 22 Nov 2026 10:00:03 +0000');
  assert.match(top.headers.get('message-id') ?? '', /^<[^<>\s]+@relay\.example\.com>$/);
  assert.equal(top.headers.get('auto-submitted'), 'auto-replied');
  assert.equal(top.headers.get('mime-version'), '1.0');
  assert.equal(top.headers.get('content-type'), 'multipart/report; report-type=delivery-status; boundary="B0UNDARY.1/relay.example.com"');
  assert.equal(top.headers.get('content-transfer-encoding'), '7bit');

  assert.equal(parts.length, 3);
  assert.deepEqual(parts.map((p) => p.headers.get('content-type')), ['text/plain; charset=us-ascii', 'message/delivery-status', 'text/rfc822-headers']);
  const text = parts[0]!.body.toString('utf8');
  assert.ok(text.startsWith("This is the mail system at host relay.example.com.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients."), text);
  assert.match(text, /\r\n<bob@example\.net>: host smtp\.example\.net\[192\.0\.2\.25\] said: 550 5\.1\.1\r\n    <bob@example\.net>: Recipient address rejected: User unknown \(in reply to\r\n    RCPT TO command\)\r\n$/);
  assert.deepEqual(parts[2]!.body, ORIGINAL_HEADERS);
});

test('delivery-status fields: per message and per recipient', () => {
  const { parts } = partsOf(buildDsn(input({}, { ret: 'HDRS' })));
  const [msg, rcpt, ...more] = statusGroups(parts[1]!);
  assert.equal(more.length, 0);
  assert.deepEqual(Object.fromEntries(msg!), {
    'reporting-mta': 'dns; relay.example.com',
    'x-smarthost-queue-id': '18B2F1A9C0E000A1B2',
    'x-smarthost-sender': 'rfc822; alice@example.com',
    'arrival-date': 'Sun, 22 Nov 2026 10:00:01 +0000',
  });
  assert.deepEqual(Object.fromEntries(rcpt!), {
    'final-recipient': 'rfc822; bob@example.net',
    action: 'failed',
    status: '5.1.1',
    'remote-mta': 'dns; smtp.example.net',
    'diagnostic-code': 'smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown',
    'last-attempt-date': 'Sun, 22 Nov 2026 10:00:02 +0000',
  });
});

test('ENVID and ORCPT become Original-Envelope-Id and Original-Recipient; absent ones leave no field', () => {
  const withBoth = partsOf(buildDsn(input({ recipients: [{ ...BOUNCED, orcpt: 'rfc822;Bob.Original@example.org' }] }, { envid: 'QQ314159' })));
  const [msg, rcpt] = statusGroups(withBoth.parts[1]!);
  assert.equal(msg!.get('original-envelope-id'), 'QQ314159');
  assert.equal(rcpt!.get('original-recipient'), 'rfc822; Bob.Original@example.org');
  assert.match(withBoth.parts[0]!.body.toString(), /<bob@example\.net> \(expanded from <Bob\.Original@example\.org>\): host/);

  const without = partsOf(buildDsn(input()));
  const [msg2, rcpt2] = statusGroups(without.parts[1]!);
  assert.equal(msg2!.has('original-envelope-id'), false);
  assert.equal(rcpt2!.has('original-recipient'), false);
  assert.doesNotMatch(without.parts[0]!.body.toString(), /expanded from/);
});

test('failure with RET=FULL returns the whole message as message/rfc822', () => {
  const msg = buildDsn(input({}, { ret: 'FULL' }));
  assertCrlfOnly(msg);
  const { parts } = partsOf(msg);
  assert.equal(parts[2]!.headers.get('content-type'), 'message/rfc822');
  assert.equal(parts[2]!.headers.get('content-description'), 'Undelivered Message');
  assert.deepEqual(parts[2]!.body, ORIGINAL);
});

test('failure without RET returns the whole message, as Postfix does', () => {
  const { parts } = partsOf(buildDsn(input()));
  assert.equal(parts[2]!.headers.get('content-type'), 'message/rfc822');
  assert.deepEqual(parts[2]!.body, ORIGINAL);
});

test('an original over 100 KiB comes back as headers only, and the notice says so', () => {
  const big = Buffer.concat([ORIGINAL, Buffer.from(('z'.repeat(78) + '\r\n').repeat(1300))]);
  assert.ok(big.length > 100 * 1024);
  for (const ret of [undefined, 'FULL'] as const) {
    const msg = buildDsn(input({ original: big }, ret ? { ret } : {}));
    assertCrlfOnly(msg);
    const { parts } = partsOf(msg);
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.deepEqual(parts[2]!.body, ORIGINAL_HEADERS);
    assert.match(parts[0]!.body.toString(), new RegExp(`The message was ${big.length} bytes, more than the 102400 bytes this system\\r\\nreturns, so only its headers are attached below\\.`));
  }
  // just under the limit: returned whole
  const { parts } = partsOf(buildDsn(input({ original: big, returnLimit: big.length })));
  assert.equal(parts[2]!.headers.get('content-type'), 'message/rfc822');
});

test('a body line longer than 998 octets is not returned whole', () => {
  const original = Buffer.concat([ORIGINAL, Buffer.from('w'.repeat(1200) + '\r\n')]);
  const msg = buildDsn(input({ original }));
  assertCrlfOnly(msg);
  const { parts } = partsOf(msg);
  assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
  assert.match(parts[0]!.body.toString(), /longer than 998 bytes/);
});

test('delay warning: subject, warning box, retry time, headers only even with RET=FULL', () => {
  const delayed: DsnRecipient = {
    address: 'bob@example.net', action: 'delayed', status: '4.4.1',
    reason: 'connect to smtp.example.net[192.0.2.25]:25: Connection timed out',
    lastAttempt: new Date('2026-11-22T14:00:00Z'),
    willRetryUntil: new Date('2026-11-27T10:00:01Z'),
  };
  const msg = buildDsn(input({ recipients: [delayed], now: new Date('2026-11-22T14:05:00Z') }, { ret: 'FULL' }));
  assertCrlfOnly(msg);
  const { top, parts } = partsOf(msg);
  assert.equal(top.headers.get('subject'), 'Delayed Mail (still being retried)');
  const text = parts[0]!.body.toString();
  assert.match(text, /# THIS IS A WARNING ONLY\. YOU DO NOT NEED TO RESEND YOUR MESSAGE\. #/);
  assert.match(text, /Your message could not be delivered for 4 hours\.\r\nIt will be retried until Fri, 27 Nov 2026 10:00:01 \+0000\./);
  assert.match(unwrapped(text), /<bob@example\.net>: connect to smtp\.example\.net\[192\.0\.2\.25\]:25: Connection timed out/);
  const [, rcpt] = statusGroups(parts[1]!);
  assert.equal(rcpt!.get('action'), 'delayed');
  assert.equal(rcpt!.get('status'), '4.4.1');
  assert.equal(rcpt!.get('will-retry-until'), 'Fri, 27 Nov 2026 10:00:01 +0000');
  assert.equal(rcpt!.has('diagnostic-code'), false);
  assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
  assert.deepEqual(parts[2]!.body, ORIGINAL_HEADERS);
});

test('relayed and delivered: success report with headers only', () => {
  const relayed: DsnRecipient = {
    address: 'bob@example.net', action: 'relayed', status: '2.0.0', remoteMta: 'smtp.example.net[192.0.2.25]:25',
    diagnostic: '250 2.0.0 Ok: queued as 4AB1', reason: 'delivery via smtp.example.net[192.0.2.25]:25: 250 2.0.0 Ok: queued as 4AB1',
  };
  const delivered: DsnRecipient = { address: 'carol@example.net', action: 'delivered', status: '2.0.0', reason: 'delivered to maildir' };
  const msg = buildDsn(input({ recipients: [relayed, delivered] }, { ret: 'FULL' }));
  assertCrlfOnly(msg);
  const { top, parts } = partsOf(msg);
  assert.equal(top.headers.get('subject'), 'Successful Mail Delivery Report');
  assert.match(parts[0]!.body.toString(), /Your message was successfully delivered to the destination\(s\)\r\nlisted below\./);
  const [, r1, r2] = statusGroups(parts[1]!);
  assert.equal(r1!.get('action'), 'relayed');
  assert.equal(r1!.get('remote-mta'), 'dns; smtp.example.net');
  assert.equal(r2!.get('action'), 'delivered');
  assert.equal(r2!.get('final-recipient'), 'rfc822; carol@example.net');
  assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
});

test('dsnSubject: any failure makes a bounce, else any delay a warning', () => {
  const ok: DsnRecipient = { address: 'c@example.net', action: 'delivered', status: '2.0.0', reason: 'ok' };
  const late: DsnRecipient = { address: 'd@example.net', action: 'delayed', status: '4.4.1', reason: 'later' };
  assert.equal(dsnSubject([ok, late, BOUNCED]), 'Undelivered Mail Returned to Sender');
  assert.equal(dsnSubject([ok, late]), 'Delayed Mail (still being retried)');
  assert.equal(dsnSubject([ok]), 'Successful Mail Delivery Report');
});

test('a long diagnostic is folded under 78 octets and unfolds to the same text', () => {
  const diagnostic = '550-5.7.1 ' + Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ') + ' ' + 'https://support.example.net/' + 'p'.repeat(120);
  const unbreakable = 'q'.repeat(2500);
  const msg = buildDsn(input({ recipients: [{ ...BOUNCED, diagnostic }, { ...BOUNCED, address: 'eve@example.net', diagnostic: unbreakable, reason: unbreakable }] }));
  assertCrlfOnly(msg);
  const { parts } = partsOf(msg);
  const report = parts[1]!.body.toString();
  const diagLines = report.slice(report.indexOf('Diagnostic-Code:')).split('\r\n');
  const first = diagLines.findIndex((l, i) => i > 0 && !l.startsWith(' '));
  for (const line of diagLines.slice(0, first)) {
    if (!line.slice(1).includes(' ')) continue; // a single word longer than a line cannot be folded
    assert.ok(line.length <= 78, `long line: ${line}`);
  }
  assert.ok(first > 2, 'expected folding');
  const [, r1, r2] = statusGroups(parts[1]!);
  assert.equal(r1!.get('diagnostic-code'), `smtp; ${diagnostic}`);
  assert.equal(r2!.get('diagnostic-code')!.replace(/ /g, ''), `smtp;${unbreakable}`);
});

test('multi-line replies and control characters cannot break the report', () => {
  const diagnostic = '550-5.1.1 first line\r\n550-5.1.1 second\tline\r\n550 5.1.1 last\r\nInjected: header';
  const msg = buildDsn(input({ recipients: [{ ...BOUNCED, diagnostic, reason: diagnostic }] }));
  assertCrlfOnly(msg);
  const [, rcpt] = statusGroups(partsOf(msg).parts[1]!);
  assert.equal(rcpt!.get('diagnostic-code'), 'smtp; 550-5.1.1 first line 550-5.1.1 second line 550 5.1.1 last Injected: header');
  assert.equal(rcpt!.has('injected'), false);
});

test('bare LF in the original becomes CRLF', () => {
  const original = Buffer.from('From: a@example.com\nSubject: lf\n\nbody\nmore');
  const msg = buildDsn(input({ original }));
  assertCrlfOnly(msg);
  assert.deepEqual(partsOf(msg).parts[2]!.body.toString(), 'From: a@example.com\r\nSubject: lf\r\n\r\nbody\r\nmore\r\n');
});

test('8-bit content is declared 8bit; ASCII stays 7bit', () => {
  const original = Buffer.concat([Buffer.from('Subject: caf'), Buffer.from([0xe9]), Buffer.from('\r\n\r\nna\xefve body\r\n', 'latin1')]);
  const msg = buildDsn(input({ original }));
  assertCrlfOnly(msg);
  const { top, parts } = partsOf(msg);
  assert.equal(top.headers.get('content-transfer-encoding'), '8bit');
  assert.deepEqual(parts.map((p) => p.headers.get('content-transfer-encoding')), ['7bit', '7bit', '8bit']);
  assert.deepEqual(parts[2]!.body, original);
});

test('SMTPUTF8 addresses: global report types (RFC 6533), utf-8 address type, 8bit', () => {
  const original = Buffer.from('From: José <josé@exämple.com>\r\nSubject: ¡hola!\r\n\r\nbody\r\n', 'utf8');
  const rcpt: DsnRecipient = { ...BOUNCED, address: 'jürgen@bücher.example', orcpt: 'utf-8;jürgen@bücher.example', reason: 'host said: 550 5.1.1 unbekannt: jürgen' };
  const msg = buildDsn(input({ original, recipients: [rcpt] }, { sender: 'josé@exämple.com', smtputf8: true }));
  assertCrlfOnly(msg);
  const { top, parts } = partsOf(msg);
  assert.equal(top.headers.get('to'), '<josé@exämple.com>');
  assert.equal(top.headers.get('content-transfer-encoding'), '8bit');
  assert.deepEqual(parts.map((p) => p.headers.get('content-type')), ['text/plain; charset=utf-8', 'message/global-delivery-status', 'message/global']);
  assert.deepEqual(parts.map((p) => p.headers.get('content-transfer-encoding')), ['8bit', '8bit', '8bit']);
  const [msgGroup, group] = statusGroups(parts[1]!);
  assert.equal(msgGroup!.get('x-smarthost-sender'), 'utf-8; josé@exämple.com');
  assert.equal(group!.get('final-recipient'), 'utf-8; jürgen@bücher.example');
  assert.equal(group!.get('original-recipient'), 'utf-8; jürgen@bücher.example');
  assert.match(parts[0]!.body.toString('utf8'), /<jürgen@bücher\.example>: host said: 550 5\.1\.1 unbekannt: jürgen/);
  assert.deepEqual(parts[2]!.body, original);

  const hdrs = partsOf(buildDsn(input({ original, recipients: [rcpt] }, { sender: 'josé@exämple.com', smtputf8: true, ret: 'HDRS' })));
  assert.equal(hdrs.parts[2]!.headers.get('content-type'), 'message/global-headers');
});

test('a non-ASCII upstream reply stays ASCII in a plain delivery-status', () => {
  const diagnostic = '550 5.1.1 Benutzer unbekannt: müller';
  const { parts } = partsOf(buildDsn(input({ recipients: [{ ...BOUNCED, diagnostic, reason: diagnostic }] })));
  assert.equal(parts[1]!.headers.get('content-type'), 'message/delivery-status');
  assert.equal(parts[1]!.headers.get('content-transfer-encoding'), '7bit');
  assert.equal(statusGroups(parts[1]!)[1]!.get('diagnostic-code'), 'smtp; 550 5.1.1 Benutzer unbekannt: m\\x{FC}ller');
  assert.equal(parts[0]!.headers.get('content-type'), 'text/plain; charset=utf-8'); // people may read UTF-8
});

test('the boundary never occurs in the content', () => {
  const original = Buffer.from('Subject: trap\r\n\r\n--B0UNDARY.1/relay.example.com\r\n');
  const { top, parts } = partsOf(buildDsn(input({ original })));
  const boundary = boundaryOf(top.headers.get('content-type')!);
  assert.notEqual(boundary, 'B0UNDARY.1/relay.example.com');
  assert.equal(parts.length, 3);
  assert.deepEqual(parts[2]!.body, original);
});

test('default boundary comes from the queue id and time; Message-IDs are unique', () => {
  const { boundaryId: _, ...rest } = input();
  const a = parse(buildDsn(rest));
  const b = parse(buildDsn(rest));
  assert.equal(boundaryOf(b.headers.get('content-type')!), '18B2F1A9C0E000A1B2.1795341603/relay.example.com');
  assert.notEqual(a.headers.get('message-id'), b.headers.get('message-id'));
});

test('no DSN to the null sender, and none without recipients', () => {
  assert.throws(() => buildDsn(input({}, { sender: '' })), /null sender/);
  assert.throws(() => buildDsn(input({ recipients: [] })), /no recipients/);
});

test('rfc5322Date is in UTC', () => {
  assert.equal(rfc5322Date(new Date('2026-01-05T03:04:05Z')), 'Mon, 5 Jan 2026 03:04:05 +0000');
});
