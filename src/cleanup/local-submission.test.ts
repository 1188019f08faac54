import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { displayName, prepareSubmission, readLocalMessage, type SubmissionFacts } from './local-submission.js';
import { rfc5322Date } from './received.js';

const NOW = new Date(Date.UTC(2026, 10, 22, 9, 0, 1));
const FACTS: SubmissionFacts = { hostname: 'host.example', sender: 'root@host.example', now: NOW };
const DATE = `Date: ${rfc5322Date(NOW)}\r\n`;
const MSGID = /^Message-ID: <20261122090001\.[0-9a-f]{16}@host\.example>\r\n/m;

const b = (s: string) => Buffer.from(s, 'latin1');
const str = (buf: Buffer) => buf.toString('latin1');

/** readLocalMessage then prepareSubmission, as `smarthost sendmail` runs them. */
function submit(input: string | Buffer, o: { t?: boolean; i?: boolean; facts?: Partial<SubmissionFacts> } = {}) {
  const raw = typeof input === 'string' ? b(input) : input;
  const facts = { ...FACTS, ...o.facts };
  return prepareSubmission(readLocalMessage(raw, o.i ?? false), { extractRecipients: o.t ?? false, facts });
}

/** The message with the random part of an added Message-ID made fixed, for whole-message compares. */
function fixedId(buf: Buffer): string {
  return str(buf).replace(/^Message-ID: <20261122090001\.[0-9a-f]{16}@host\.example>/m, 'Message-ID: <ID@host.example>');
}

const ADDED = `From: root@host.example\r\n${DATE}Message-ID: <ID@host.example>\r\n`;

describe('readLocalMessage', () => {
  const cases: readonly { name: string; input: string; i: boolean; want: string }[] = [
    { name: 'bare LF becomes CRLF', input: 'Subject: a\nx\n', i: false, want: 'Subject: a\r\nx\r\n' },
    { name: 'bare CR becomes CRLF', input: 'Subject: a\rx\r', i: false, want: 'Subject: a\r\nx\r\n' },
    { name: 'CRLF stays', input: 'Subject: a\r\n\r\nx\r\n', i: false, want: 'Subject: a\r\n\r\nx\r\n' },
    { name: 'mixed line ends', input: 'a\r\nb\nc\rd', i: true, want: 'a\r\nb\r\nc\r\nd\r\n' },
    { name: 'a last line without a line end gets one', input: 'x', i: false, want: 'x\r\n' },
    { name: 'empty stays empty', input: '', i: false, want: '' },
    { name: 'lone "." ends the message without -i', input: 'a\n.\nlost\n', i: false, want: 'a\r\n' },
    { name: 'lone "." as the last line without a line end', input: 'a\n.', i: false, want: 'a\r\n' },
    { name: 'lone "." first: empty message', input: '.\nlost\n', i: false, want: '' },
    { name: 'lone "." kept with -i', input: 'a\n.\nkept\n', i: true, want: 'a\r\n.\r\nkept\r\n' },
    { name: '".." and ". " do not end it', input: 'a\n..\n. \nb\n', i: false, want: 'a\r\n..\r\n. \r\nb\r\n' },
    { name: 'mbox "From " line dropped', input: 'From root Sun Nov 22 10:00:01 2026\nSubject: a\n\nFrom me\n', i: false,
      want: 'Subject: a\r\n\r\nFrom me\r\n' },
    { name: 'mbox "From " line with CR line end', input: 'From root x\rSubject: a\r', i: false, want: 'Subject: a\r\n' },
    { name: '"From:" header is not an mbox line', input: 'From: a@b\n', i: false, want: 'From: a@b\r\n' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(str(readLocalMessage(b(c.input), c.i)), c.want));
  }

  it('keeps 8-bit bytes exactly (latin1 0xE9 and UTF-8 é)', () => {
    const input = Buffer.concat([b('Subject: a\n\ncaf'), Buffer.from([0xe9]), b(' caf'), Buffer.from([0xc3, 0xa9]), b('\n')]);
    const want = Buffer.concat([b('Subject: a\r\n\r\ncaf'), Buffer.from([0xe9]), b(' caf'), Buffer.from([0xc3, 0xa9]), b('\r\n')]);
    assert.deepEqual(readLocalMessage(input, true), want);
  });
});

describe('prepareSubmission: header section', () => {
  const cases: readonly { name: string; input: string; want: string }[] = [
    { name: 'no headers at all: added headers, a blank line, then the input', input: 'Hello,\nthe backup failed.\n',
      want: `${ADDED}\r\nHello,\r\nthe backup failed.\r\n` },
    { name: 'a first line with a space before the colon is body', input: 'Note : this\n',
      want: `${ADDED}\r\nNote : this\r\n` },
    { name: 'a first line that is folded is body', input: ' Subject: x\n', want: `${ADDED}\r\n Subject: x\r\n` },
    { name: 'only a body after a blank line: the blank line is the separator', input: '\nHello\n',
      want: `${ADDED}\r\nHello\r\n` },
    { name: 'empty input: only the added fields', input: '', want: ADDED },
    { name: 'some headers: the missing ones go at the end of the section', input: 'Subject: hi\nTo: a@b\n\nbody\n',
      want: `Subject: hi\r\nTo: a@b\r\n${ADDED}\r\nbody\r\n` },
    { name: 'headers only, no body', input: 'Subject: hi\n', want: `Subject: hi\r\n${ADDED}` },
    { name: 'a non-header line ends the section and becomes body', input: 'Subject: hi\nHello there\nmore\n',
      want: `Subject: hi\r\n${ADDED}\r\nHello there\r\nmore\r\n` },
    { name: 'header names are case-insensitive', input: 'FROM: a@b\ndate: x\nmessage-id: <m@x>\n\nbody\n',
      want: 'FROM: a@b\r\ndate: x\r\nmessage-id: <m@x>\r\n\r\nbody\r\n' },
    { name: 'only Date missing', input: 'From: a@b\nMessage-Id: <m@x>\n\nb\n', want: `From: a@b\r\nMessage-Id: <m@x>\r\n${DATE}\r\nb\r\n` },
    { name: 'a body line that looks like a header is left alone', input: 'Subject: a\n\nBcc: c@d\n',
      want: `Subject: a\r\n${ADDED}\r\nBcc: c@d\r\n` },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(fixedId(submit(c.input).message), c.want));
  }

  it('all headers present: nothing added, bytes identical apart from line ends', () => {
    const input = 'Received: by x\n\t(folded)\nFrom: Ann <ann@x>\nDate: Sun, 22 Nov 2026 10:00:01 +0100\n' +
      'Message-ID: <a@x>\nSubject: =?UTF-8?Q?caf=C3=A9?=\n   continued\n\nbody\n';
    assert.equal(str(submit(input).message), input.replace(/\n/g, '\r\n'));
  });

  it('adds a Message-ID with a UTC stamp and random hex, different each time', () => {
    const one = str(submit('\nx\n').message);
    const two = str(submit('\nx\n').message);
    assert.match(one, MSGID);
    assert.notEqual(one.match(MSGID)![0], two.match(MSGID)![0]);
  });
});

describe('prepareSubmission: added From', () => {
  const cases: readonly { name: string; facts: Partial<SubmissionFacts>; want: string }[] = [
    { name: 'sender alone', facts: {}, want: 'From: root@host.example' },
    { name: 'with a plain name', facts: { fullName: 'Cron Daemon' }, want: 'From: Cron Daemon <root@host.example>' },
    { name: 'a name with a comma is quoted', facts: { fullName: 'Doe, John' }, want: 'From: "Doe, John" <root@host.example>' },
    { name: 'quotes and backslashes escaped', facts: { fullName: 'A "B" \\C' }, want: 'From: "A \\"B\\" \\\\C" <root@host.example>' },
    { name: 'a dot is a special', facts: { fullName: 'John Q. Public' }, want: 'From: "John Q. Public" <root@host.example>' },
    { name: 'non-ASCII is RFC 2047 encoded', facts: { fullName: 'José Müller' },
      want: `From: =?UTF-8?B?${Buffer.from('José Müller').toString('base64')}?= <root@host.example>` },
    { name: 'CR LF in the name cannot start a field', facts: { fullName: 'Eve\r\nBcc: x@y' }, want: 'From: "Eve Bcc: x@y" <root@host.example>' },
    { name: 'an empty name is no name', facts: { fullName: '  ' }, want: 'From: root@host.example' },
    { name: 'null sender', facts: { sender: '' }, want: 'From: MAILER-DAEMON@host.example' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const from = str(submit('Subject: a\n\nb\n', { facts: c.facts }).message).split('\r\n')[1];
      assert.equal(from, c.want);
    });
  }

  it('a long non-ASCII name splits into encoded-words of at most 75 characters, between characters', () => {
    const name = 'Zoë '.repeat(30).trim();
    const shown = displayName(name);
    const words = shown.split('\r\n ');
    assert.ok(words.length > 1);
    for (const w of words) assert.ok(w.length <= 75, w);
    const decoded = words.map((w) => Buffer.from(/^=\?UTF-8\?B\?(.*)\?=$/.exec(w)![1]!, 'base64').toString('utf8')).join('');
    assert.equal(decoded, name);
  });

  it('throws on a sender that would break the header (a caller bug)', () => {
    assert.throws(() => submit('\nx\n', { facts: { sender: 'a@b\r\nBcc: c@d' } }), /cannot go into a header/);
  });
});

describe('prepareSubmission: -t recipients and Bcc removal', () => {
  const cases: readonly { name: string; input: string; want: string[]; kept?: string }[] = [
    { name: 'To, Cc, Bcc in order; Bcc removed',
      input: 'To: a@x, B <b@x>\nCc: c@x\nBcc: d@x\nSubject: s\n\nbody\n', want: ['a@x', 'b@x', 'c@x', 'd@x'],
      kept: 'To: a@x, B <b@x>\r\nCc: c@x\r\nSubject: s\r\n' },
    { name: 'a folded Bcc with two addresses is removed completely',
      input: 'To: a@x\nBcc: d@x,\n e@x\nSubject: s\n\nbody\n', want: ['a@x', 'd@x', 'e@x'], kept: 'To: a@x\r\nSubject: s\r\n' },
    { name: 'a folded To is unfolded', input: 'To: "Doe,\n\tJohn" <j@x>,\n  k@x\n\nb\n', want: ['j@x', 'k@x'] },
    { name: 'Resent- fields win over To/Cc/Bcc; Resent-Bcc removed',
      input: 'Resent-From: r@x\nResent-To: n@x\nResent-Bcc: hidden@x\nTo: old@x\nCc: old2@x\nBcc: old3@x\n\nb\n',
      want: ['n@x', 'hidden@x'], kept: 'Resent-From: r@x\r\nResent-To: n@x\r\nTo: old@x\r\nCc: old2@x\r\n' },
    { name: 'undisclosed-recipients group gives nothing', input: 'To: undisclosed-recipients:;\nBcc: d@x\n\nb\n', want: ['d@x'] },
    { name: 'a group is flattened', input: 'To: friends: a@b, c@d;, e@f\n\nb\n', want: ['a@b', 'c@d', 'e@f'] },
    { name: 'duplicates collapse case-insensitively, first spelling kept', input: 'To: Ann@X.example\nCc: ann@x.example, b@x\n\nb\n',
      want: ['Ann@X.example', 'b@x'] },
    { name: 'field names are case-insensitive', input: 'TO: a@x\ncc: b@x\nBCC: c@x\n\nb\n', want: ['a@x', 'b@x', 'c@x'], kept: 'TO: a@x\r\ncc: b@x\r\n' },
    { name: 'unqualified local users (logwatch "To: root")', input: 'To: root, Admin <admin>, (comment) <ops>\n\nb\n',
      want: ['root', 'admin', 'ops'] },
    { name: 'a bare local user with a comment, and in a group', input: 'To: root (Cron Daemon)\nCc: staff: web-master, a@x;\n\nb\n',
      want: ['root', 'web-master', 'a@x'] },
    { name: 'display names without an address are skipped', input: 'To: Just A Name, "quoted", a@x, (only a comment)\n\nb\n',
      want: ['a@x'] },
    { name: 'specials inside quotes and comments do not split', input: 'To: "x, y: z;" <a@x>, b@x (see: c, d)\n\nb\n',
      want: ['a@x', 'b@x'] },
    { name: 'other fields and the body are not read', input: 'Reply-To: r@x\nTo: a@x\n\nTo: body@x\n', want: ['a@x'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = submit(c.input, { t: true });
      assert.deepEqual(s.headerRecipients, c.want);
      const text = str(s.message);
      assert.doesNotMatch(text.split('\r\n\r\n')[0]!, /^(resent-)?bcc:/im);
      if (c.kept !== undefined) assert.ok(text.startsWith(c.kept), text);
    });
  }

  it('without -t: no recipients, but Bcc still removed', () => {
    const s = submit('To: a@x\nBcc: secret@x,\n other@x\nFrom: f@x\nDate: d\nMessage-ID: <m@x>\n\nb\n');
    assert.deepEqual(s.headerRecipients, []);
    assert.equal(str(s.message), 'To: a@x\r\nFrom: f@x\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\nb\r\n');
  });

  it('a Bcc that ends the input without a line end goes, and added fields start on their own line', () => {
    const s = prepareSubmission(b('To: a@x\r\nBcc: d@x'), { extractRecipients: true, facts: FACTS });
    assert.deepEqual(s.headerRecipients, ['a@x', 'd@x']);
    assert.equal(fixedId(s.message), `To: a@x\r\n${ADDED}`);
  });

  it('a field that ends the input without a line end gets one before the added fields', () => {
    const s = prepareSubmission(b('Subject: x'), { extractRecipients: false, facts: FACTS });
    assert.equal(fixedId(s.message), `Subject: x\r\n${ADDED}`);
  });

  it('reads UTF-8 addresses and names in To (RFC 6532)', () => {
    const s = submit(Buffer.from('To: José <josé@exämple.org>\n\nb\n', 'utf8'), { t: true });
    assert.deepEqual(s.headerRecipients, ['josé@exämple.org']);
  });
});

describe('prepareSubmission: 8-bit', () => {
  const HEAD = 'From: f@x\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\n';
  const cases: readonly { name: string; body: Buffer; eightBit: boolean }[] = [
    { name: 'ASCII', body: b('plain\r\n'), eightBit: false },
    { name: 'one 0x80 byte', body: Buffer.from([0x61, 0x80, 0x0d, 0x0a]), eightBit: true },
    { name: '0x7F is still 7-bit', body: Buffer.from([0x61, 0x7f, 0x0d, 0x0a]), eightBit: false },
    { name: 'latin1 0xE9', body: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0d, 0x0a]), eightBit: true },
    { name: 'UTF-8 é', body: Buffer.from('café\r\n', 'utf8'), eightBit: true },
    { name: 'an invalid UTF-8 sequence', body: Buffer.from([0xc3, 0x28, 0xff, 0x0d, 0x0a]), eightBit: true },
  ];
  for (const c of cases) {
    it(`${c.name}: flagged ${c.eightBit}, body byte-identical`, () => {
      const input = Buffer.concat([b(HEAD), c.body]);
      const s = prepareSubmission(readLocalMessage(input, false), { extractRecipients: false, facts: FACTS });
      assert.equal(s.eightBit, c.eightBit);
      assert.deepEqual(s.message, input);
    });
  }

  it('8-bit body with no header section is kept byte-identical after the added fields', () => {
    const body = Buffer.from([0x48, 0xe9, 0xc3, 0xa9, 0x0d, 0x0a]);
    const s = submit(body);
    assert.equal(s.eightBit, true);
    assert.deepEqual(s.message.subarray(-body.length), body);
  });

  it('8-bit only in a removed Bcc does not flag the message', () => {
    const s = prepareSubmission(Buffer.from(`Bcc: José <j@x>\r\n${HEAD}plain\r\n`, 'utf8'), { extractRecipients: false, facts: FACTS });
    assert.equal(s.eightBit, false);
  });
});
