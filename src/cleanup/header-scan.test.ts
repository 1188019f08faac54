import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeaderScan } from './header-scan.js';

function scan(...chunks: string[]): HeaderScan {
  const hs = new HeaderScan();
  for (const c of chunks) hs.push(Buffer.from(c, 'latin1'));
  return hs;
}

/** Splits a string at every position into two chunks, and into one-byte chunks. */
function splits(s: string): string[][] {
  const out: string[][] = [[s], s.split('')];
  for (let i = 1; i < s.length; i++) out.push([s.slice(0, i), s.slice(i)]);
  return out;
}

const MESSAGE =
  'Received: from a.example (a.example [192.0.2.1])\r\n' +
  '\tby b.example with ESMTP id 1; Mon, 1 Jan 2024 00:00:00 +0000\r\n' +
  'received: from c.example\r\n' +
  'RECEIVED: from d.example\r\n' +
  'X-Received: not counted\r\n' +
  'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n' +
  'From: a@example.com\r\n' +
  'Message-ID: <abc.123@example.com>\r\n' +
  'Subject: hi\r\n' +
  '\r\n' +
  'Received: from body.example (this is the body)\r\n' +
  'Message-ID: <body@example.com>\r\n';

describe('HeaderScan', () => {
  it('counts Received headers case-insensitively, and not look-alikes', () => {
    const hs = scan(MESSAGE);
    assert.equal(hs.facts.received, 3);
  });

  it('stops at the blank line: a Received line in the body is not counted', () => {
    const hs = scan(MESSAGE);
    assert.equal(hs.facts.complete, true);
    assert.equal(hs.facts.received, 3);
    assert.equal(hs.facts.messageId, '<abc.123@example.com>');
    hs.push(Buffer.from('Received: from later.example\r\n\r\n'));
    assert.equal(hs.facts.received, 3, 'nothing counted after the header section');
  });

  it('is not complete until the blank line arrives', () => {
    const hs = scan('Received: from x\r\nSubject: y\r\n');
    assert.equal(hs.facts.complete, false);
    assert.equal(hs.facts.received, 1);
    hs.push(Buffer.from('\r\nbody'));
    assert.equal(hs.facts.complete, true);
  });

  it('notes Date and From', () => {
    const hs = scan(MESSAGE);
    assert.equal(hs.facts.hasDate, true);
    assert.equal(hs.facts.hasFrom, true);
    const bare = scan('Subject: x\r\nReceived: from y\r\n\r\nFrom: body@example.com\r\nDate: x\r\n');
    assert.equal(bare.facts.hasDate, false);
    assert.equal(bare.facts.hasFrom, false);
    assert.equal(bare.facts.messageId, undefined);
  });

  it('gives the same facts however the header section is split into chunks', () => {
    for (const chunks of splits(MESSAGE)) {
      const hs = scan(...chunks);
      assert.deepEqual(hs.facts, {
        received: 3, hasDate: true, hasFrom: true, complete: true, messageId: '<abc.123@example.com>',
        bytes: MESSAGE.indexOf('\r\n\r\n') + 4, // the header section and its blank line, however it came
      }, `chunks ${JSON.stringify(chunks.length > 2 ? 'bytewise' : chunks)}`);
    }
  });

  it('does not count folded continuation lines as headers', () => {
    const hs = scan(
      'Subject: a long subject\r\n' +
      ' Received: this is a continuation, not a header\r\n' +
      '\tReceived: neither is this\r\n' +
      'Received: from x\r\n' +
      '\r\n');
    assert.equal(hs.facts.received, 1);
    assert.equal(hs.facts.complete, true);
  });

  it('does not take a blank-looking continuation line (whitespace only) as the end of the header', () => {
    const hs = scan('Subject: x\r\n \r\nReceived: from y\r\n\r\n');
    assert.equal(hs.facts.received, 1);
    assert.equal(hs.facts.complete, true);
  });

  it('captures the first Message-ID, trimmed', () => {
    const hs = scan('message-id:    <first@example.com>  \r\nMessage-Id: <second@example.com>\r\n\r\n');
    assert.equal(hs.facts.messageId, '<first@example.com>');
  });

  it('captures a Message-ID folded onto the next line', () => {
    // RFC 5322 allows folding white space before msg-id; some MUAs write it so.
    const hs = scan('Message-ID:\r\n <folded@example.com>\r\nSubject: x\r\n\r\n');
    assert.equal(hs.facts.messageId, '<folded@example.com>');
  });

  it('handles bare LF line ends as well (before normalisation)', () => {
    const hs = scan('Received: from x\nReceived: from y\n\nReceived: body\n');
    assert.equal(hs.facts.received, 2);
    assert.equal(hs.facts.complete, true);
  });

  it('skips an over-long header line instead of buffering it, and keeps scanning', () => {
    const hs = new HeaderScan();
    hs.push(Buffer.from('X-Long: '));
    for (let i = 0; i < 20; i++) hs.push(Buffer.alloc(8 * 1024, 0x61));
    hs.push(Buffer.from('\r\nReceived: from x\r\n\r\n'));
    assert.equal(hs.facts.received, 1);
    assert.equal(hs.facts.complete, true);
  });
});
