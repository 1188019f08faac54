// The DATA parser against the line-by-line reference (test/fuzz/data-model.ts):
// every smuggling variant by name, the terminator and stuffed dots cut at every
// byte, and fast-check properties over random messages in random chunks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { dataModel, dotStuff } from '../../test/fuzz/data-model.js';
import { DataParser } from './data-parser.js';

interface Outcome { content: string; rest?: string }

/** Runs the parser over `chunks`; stops at the end of DATA like smtp-server does. */
function parse(chunks: Buffer[]): Outcome {
  const p = new DataParser();
  const content: Buffer[] = [];
  for (const c of chunks) {
    const r = p.push(Buffer.from(c)); // a copy: the parser must not depend on the caller keeping it
    content.push(...r.content.map((b) => Buffer.from(b)));
    if (r.rest) return { content: Buffer.concat(content).toString('latin1'), rest: Buffer.concat([r.rest, ...chunks.slice(chunks.indexOf(c) + 1)]).toString('latin1') };
  }
  return { content: Buffer.concat(content).toString('latin1') };
}

function model(input: Buffer): Outcome {
  const m = dataModel(input);
  return m ? { content: m.content.toString('latin1'), rest: m.rest.toString('latin1') } : { content: '' };
}

const bytes = (s: string) => Buffer.from(s, 'latin1');
/** Every way to cut `s` in two, plus one byte at a time. */
function cuts(s: string): Buffer[][] {
  const b = bytes(s);
  const all = Array.from({ length: b.length + 1 }, (_, i) => [b.subarray(0, i), b.subarray(i)]);
  all.push(Array.from(b, (x) => Buffer.from([x])));
  return all;
}
/** The parser for all cuts of `s` gives `want`, and so does the model. */
function expectAll(s: string, want: Outcome): void {
  assert.deepEqual(model(bytes(s)), want, 'the reference model');
  for (const chunks of cuts(s)) assert.deepEqual(parse(chunks), want, `cut as ${JSON.stringify(chunks.map((c) => c.toString('latin1')))}`);
}

const SMUGGLE = 'MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nsmuggled\r\n';

describe('DataParser: each smuggling variant, cut at every byte', () => {
  for (const [name, seq, kept] of [
    ['bare LF', 'x\ny', 'x\ny'],
    ['bare CR', 'x\ry', 'x\ry'],
    ['\\n.\\n', '\n.\n', '\n'],          // a "." line with bare LFs is dropped, not the end
    ['\\r.\\r', '\r.\r', '\r.\r'],       // a bare CR ends no line
    ['\\r\\n.\\n', '\r\n.\n', '\r\n'],
    ['\\n.\\r\\n', '\n.\r\n', '\n'],
    ['\\r\\n.\\r', '\r\n.\r', '\r\n\r'], // ".\r" + "MAIL…": a line starting with a dot loses it
    ['NUL before the dot', '\r\n\0.\r\n', '\r\n\0.\r\n'],
    ['NUL after the dot', '\r\n.\0\r\n', '\r\n\0\r\n'],
  ] as const) {
    it(`${name}: the message goes on, the smuggled commands are content`, () => {
      const input = `first${seq}${SMUGGLE}.\r\nQUIT\r\n`;
      expectAll(input, { content: `first${kept}${SMUGGLE}`, rest: 'QUIT\r\n' });
    });
  }

  it('ends at CRLF.CRLF, with the CRLF before the dot as content', () => {
    expectAll('a\r\n.\r\nQUIT\r\n', { content: 'a\r\n', rest: 'QUIT\r\n' });
  });

  it('ends at once on ".\\r\\n" first (an empty message), but not on "..\\r\\n"', () => {
    expectAll('.\r\nQUIT\r\n', { content: '', rest: 'QUIT\r\n' });
    expectAll('..\r\n.\r\nQUIT\r\n', { content: '.\r\n', rest: 'QUIT\r\n' });
  });

  it('removes one dot from each line that starts with one (RFC 5321 §4.5.2), also after a bare LF', () => {
    expectAll('.x\r\n..y\r\n...z\r\n. \r\nq.\r\na\n.b\r\n.\r\n', { content: 'x\r\n.y\r\n..z\r\n \r\nq.\r\na\nb\r\n', rest: '' });
  });

  it('keeps dots that follow a bare CR', () => {
    expectAll('a\r.x\r\n.\r\n', { content: 'a\r.x\r\n', rest: '' });
  });
});

// Pieces that make every interesting neighbourhood likely: dots, CR, LF, NUL, terminators.
const piece = fc.constantFrom('a', 'bc', ' ', '\0', '.', '..', '\r', '\n', '\r\n', '\r\n.', '\n.', '\r.', '.\r', '.\n', '\r\n.\r\n', '\n.\n', '\r.\r', '\r\n.\n', '\n.\r\n', '\xff');
const message = fc.array(piece, { maxLength: 60 }).map((p) => p.join(''));
/** Cut points for a buffer of length n: sorted unique offsets. */
const chunked = (s: string) => fc.uniqueArray(fc.nat({ max: Math.max(0, s.length) }), { maxLength: 12 })
  .map((offs) => { const b = bytes(s); const at = [0, ...offs.sort((x, y) => x - y), b.length]; return at.slice(1).map((e, i) => b.subarray(at[i], e)); });

describe('DataParser: properties (fast-check)', () => {
  it('equals the reference model for any input in any chunks', () => {
    fc.assert(fc.property(message.chain((s) => fc.tuple(fc.constant(s + '\r\n.\r\nQUIT\r\n'), chunked(s + '\r\n.\r\nQUIT\r\n'))), ([s, chunks]) => {
      assert.deepEqual(parse(chunks), model(bytes(s)));
    }), { numRuns: 3000 });
  });

  it('gives back exactly what a client dot-stuffed, for any bytes in any chunks', () => {
    fc.assert(fc.property(fc.oneof(message, fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a).toString('latin1'))).chain((m) => {
      const wire = dotStuff(bytes(m)).toString('latin1') + 'RSET\r\n';
      return fc.tuple(fc.constant(m), chunked(wire));
    }), ([m, chunks]) => {
      const got = parse(chunks);
      const want = m === '' || m.endsWith('\r\n') ? m : m + '\r\n';
      assert.deepEqual(got, { content: want, rest: 'RSET\r\n' });
    }), { numRuns: 3000 });
  });
});

/** smtp-server's own DATA parser over `chunks`: the content and the commands after the dot. */
async function library(chunks: Buffer[]): Promise<Outcome> {
  const s = new SMTPStream();
  const commands: string[] = [];
  s.oncommand = (cmd: Buffer, cb?: () => void) => { commands.push(cmd.toString('latin1') + '\r\n'); cb?.(); };
  const parts: Buffer[] = [];
  const data = s.startDataMode();
  const ended = new Promise<void>((resolve) => data.on('end', () => { s.continue(); resolve(); }));
  data.on('data', (c: Buffer) => parts.push(c));
  for (const c of chunks) await new Promise<void>((resolve) => s.write(c, () => resolve()));
  await ended;
  await new Promise<void>((resolve) => s.end(() => resolve()));
  return { content: Buffer.concat(parts).toString('latin1'), rest: commands.join('') };
}

describe('DataParser against smtp-server\'s parser (differential)', () => {
  // One divergence, smtp-server's: its scan starts at offset 2 of the first chunk, so a stuffed
  // dot right after a bare LF that opens DATA ("\n..x") keeps both dots there. Ours removes one.
  it('smtp-server misses the stuffed dot of "\\n..x" at the start of DATA; we do not', async () => {
    const chunks = [bytes('\n..x\r\n.\r\nRSET\r\n')];
    assert.deepEqual(await library(chunks), { content: '\n..x\r\n', rest: 'RSET\r\n' });
    assert.deepEqual(parse(chunks), { content: '\n.x\r\n', rest: 'RSET\r\n' });
  });

  it('agrees on whatever else a conforming client sends (every line-start dot doubled), in any chunks', async () => {
    await fc.assert(fc.asyncProperty(message.filter((m) => !m.startsWith('\n.')).chain((m) => {
      const wire = dotStuff(bytes(m)).toString('latin1') + 'RSET\r\n';
      return fc.tuple(fc.constant(m), chunked(wire));
    }), async ([, chunks]) => {
      assert.deepEqual(parse(chunks), await library(chunks));
    }), { numRuns: 2000 });
  });
});
