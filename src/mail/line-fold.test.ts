// LineFold against a whole-message reference: any CRLF message, cut into any
// chunks, comes out with every line at most 998 octets, broken with CRLF SPACE
// exactly where the reference breaks it, UTF-8 characters whole.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable, type Transform } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DataParser } from '../smtpd/data-parser.js';
import { fastDotStuffing, type TransformFn } from '../smtp/dot-stuff.js';
import { foldLongLines, LineFold, LINE_LIMIT } from './line-fold.js';

const require = createRequire(import.meta.url);
// nodemailer's DATA writer (dot-stuffing and the final dot), as session.ts uses it; not in its exports map
const DataStream = require(path.join(path.dirname(require.resolve('nodemailer')), 'smtp-connection/data-stream.js')).default as new () => Transform;

/** The reference: line by line, 998 octets, then 997 after each inserted space; never inside a UTF-8 character. */
function reference(input: Buffer, limit = LINE_LIMIT): Buffer {
  const out: Buffer[] = [];
  const lines = input.toString('latin1').split('\r\n').map((l) => Buffer.from(l, 'latin1'));
  lines.forEach((line, n) => {
    let rest = line;
    let room = limit;
    while (rest.length > room) {
      let at = room;
      for (let k = 0; k < 3 && at > 1 && (rest[at]! & 0xc0) === 0x80; k++) at--;
      if ((rest[at]! & 0xc0) === 0x80) at = room;
      out.push(rest.subarray(0, at), Buffer.from('\r\n '));
      rest = rest.subarray(at);
      room = limit - 1;
    }
    out.push(rest);
    if (n < lines.length - 1) out.push(Buffer.from('\r\n'));
  });
  return Buffer.concat(out);
}

function fold(chunks: Buffer[], limit?: number): Buffer {
  const f = new LineFold(limit);
  return Buffer.concat(chunks.flatMap((c) => f.push(c)));
}

const maxLine = (b: Buffer) => Math.max(...b.toString('latin1').split('\r\n').map((l) => l.length));

describe('LineFold', () => {
  it('leaves lines of up to 998 octets alone, and breaks 999 into 998 + CRLF SPACE + 1', () => {
    const ok = Buffer.from(`${'a'.repeat(998)}\r\n${'b'.repeat(10)}\r\n`);
    assert.deepEqual(fold([ok]), ok);
    assert.equal(fold([Buffer.from(`${'a'.repeat(999)}\r\n`)]).toString(), `${'a'.repeat(998)}\r\n a\r\n`);
  });

  it('breaks 5,000 and 200,000-octet lines, headers and body alike, in any chunks', () => {
    const msg = Buffer.from(`Subject: ${'s'.repeat(5000)}\r\nTo: x@example.net\r\n\r\n${'<p>'.repeat(66_667)}\r\n.dot line\r\n`);
    const whole = fold([msg]);
    assert.ok(maxLine(whole) <= 998, `longest line ${maxLine(whole)}`);
    assert.deepEqual(whole, reference(msg));
    assert.deepEqual(whole.toString().replaceAll('\r\n ', ''), msg.toString(), 'removing the breaks gives the message back');
    const pieces: Buffer[] = [];
    for (let i = 0; i < msg.length; i += 997) pieces.push(msg.subarray(i, i + 997));
    assert.deepEqual(fold(pieces), whole);
  });

  it('never cuts a UTF-8 character in two', () => {
    const line = Buffer.from('é'.repeat(1500)); // 3,000 octets of 2-octet characters
    const out = fold([line]).toString('utf8');
    assert.ok(!out.includes('\ufffd'), 'no broken character');
    assert.equal(out.replaceAll('\r\n ', ''), line.toString());
  });

  it('equals the reference for any CRLF message; in any chunks, lines <= the limit and nothing lost (fast-check)', () => {
    const lineArb = fc.oneof(
      fc.nat({ max: 30 }).map((n) => 'x'.repeat(n)),
      fc.integer({ min: 990, max: 2100 }).map((n) => 'y'.repeat(n)),
      fc.integer({ min: 300, max: 1200 }).map((n) => 'é€'.repeat(n)),
      fc.constantFrom('.', '..', '', '.'.repeat(1500)),
    );
    const input = fc.array(lineArb, { maxLength: 8 }).map((ls) => Buffer.from(ls.join('\r\n') + '\r\n'));
    fc.assert(fc.property(input.chain((b) => fc.tuple(fc.constant(b), fc.uniqueArray(fc.nat({ max: b.length }), { maxLength: 10 }))),
      fc.constantFrom(LINE_LIMIT, 10, 3), ([b, offs], limit) => {
        const at = [0, ...offs.sort((x, y) => x - y), b.length];
        const chunks = at.slice(1).map((e, i) => b.subarray(at[i], e));
        const got = fold(chunks, limit);
        assert.ok(maxLine(got) <= limit, `longest line ${maxLine(got)}`);
        // no input line starts with a space, so every CRLF SPACE was inserted
        assert.equal(got.toString('latin1').replaceAll('\r\n ', ''), b.toString('latin1'));
        // cut where the reference cuts, except that a UTF-8 character at a chunk's start may be split
        if (chunks.length <= 1 || !/[^\x00-\x7f]/.test(b.toString('latin1'))) assert.deepEqual(got, reference(b, limit));
      }), { numRuns: 500 });
  });

  it('foldLongLines: a stream in, folded stream out', async () => {
    const out: Buffer[] = [];
    for await (const c of foldLongLines(Readable.from([Buffer.from('a'.repeat(2000)), Buffer.from('\r\n')]))) out.push(c as Buffer);
    assert.equal(Buffer.concat(out).toString(), `${'a'.repeat(998)}\r\n ${'a'.repeat(997)}\r\n ${'a'.repeat(5)}\r\n`);
  });

  it('folded, then dot-stuffed by nodemailer, a receiver gets exactly the folded message and the end only at its end (fast-check)', async () => {
    const line = fc.oneof(fc.constantFrom('', '.', '..', '.x', ' .', '\0'), fc.integer({ min: 990, max: 3100 }).chain((n) => fc.constantFrom('.', 'y', ' ').map((c) => c + 'z'.repeat(n))));
    await fc.assert(fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 6 }), async (lines) => {
      const msg = Buffer.from(lines.join('\r\n') + '\r\n');
      const stuffer = new DataStream() as Transform & { _transform: TransformFn };
      stuffer._transform = fastDotStuffing(stuffer._transform);
      const wire: Buffer[] = [];
      stuffer.on('data', (c: Buffer) => wire.push(c));
      const done = new Promise((r) => stuffer.on('end', r));
      foldLongLines(Readable.from([msg])).pipe(stuffer);
      await done;
      const parsed = new DataParser().push(Buffer.concat(wire));
      assert.deepEqual(parsed.rest, Buffer.alloc(0), 'DATA ends exactly at the end');
      assert.deepEqual(Buffer.concat(parsed.content), fold([msg]));
    }), { numRuns: 300 });
  });
});
