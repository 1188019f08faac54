import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineEnds } from './line-ends.js';

const CR = 0x0d;
const LF = 0x0a;

/** Runs chunks through a fresh LineEnds, including end(). */
function run(...chunks: Array<string | Buffer>): Buffer {
  const le = new LineEnds();
  const out = chunks.map((c) => le.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c));
  out.push(le.end());
  return Buffer.concat(out);
}

const str = (b: Buffer) => b.toString('latin1');

/** The reference: every CRLF, lone CR and lone LF becomes CRLF. */
function reference(input: Buffer): Buffer {
  return Buffer.from(input.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

/** Index of a CR not followed by LF or an LF not preceded by CR, or -1. */
function badLineEnd(b: Buffer): number {
  for (let i = 0; i < b.length; i++) {
    if (b[i] === CR && b[i + 1] !== LF) return i;
    if (b[i] === LF && (i === 0 || b[i - 1] !== CR)) return i;
  }
  return -1;
}

/** xorshift32: deterministic, so a failing case can be reproduced from its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

describe('LineEnds', () => {
  it('turns a bare LF into CRLF', () => {
    assert.equal(str(run('a\nb\n')), 'a\r\nb\r\n');
    assert.equal(str(run('\n')), '\r\n');
    assert.equal(str(run('\n\n')), '\r\n\r\n');
  });

  it('turns a bare CR into CRLF', () => {
    assert.equal(str(run('a\rb\r')), 'a\r\nb\r\n');
    assert.equal(str(run('\r\r')), '\r\n\r\n');
  });

  it('leaves CRLF alone (same bytes, same buffer on the fast path)', () => {
    const input = Buffer.from('Subject: x\r\n\r\nbody\r\n.\r\n', 'latin1');
    const le = new LineEnds();
    const out = le.push(input);
    assert.ok(out.equals(input));
    assert.equal(le.end().length, 0);
    assert.ok(run(input).equals(input));
  });

  it('does not touch other bytes, including NUL and 8-bit', () => {
    const input = Buffer.from([0x00, 0x41, 0xff, 0x80, 0x2e, 0x09]);
    assert.ok(run(input).equals(input));
  });

  it('joins a CR at the end of one chunk with an LF at the start of the next into one CRLF', () => {
    assert.equal(str(run('line one\r', '\nline two\r\n')), 'line one\r\nline two\r\n');
    // and the CR is not emitted twice when the next chunk is clean CRLF
    assert.equal(str(run('a\r', '\nb\r\n', 'c\r\n')), 'a\r\nb\r\nc\r\n');
  });

  it('a CR at the end of one chunk followed by something other than LF is a bare CR', () => {
    assert.equal(str(run('a\r', 'b\r\n')), 'a\r\nb\r\n');
    assert.equal(str(run('a\r', '\r', '\n')), 'a\r\n\r\n');
    assert.equal(str(run('a\r', '', '\nb')), 'a\r\nb', 'an empty chunk in between keeps the pending CR');
  });

  it('flushes a lone CR at the end of the message from end()', () => {
    const le = new LineEnds();
    const first = le.push(Buffer.from('last line\r'));
    assert.equal(str(first), 'last line', 'the CR is held back until the next byte is known');
    assert.equal(str(le.end()), '\r\n');
    assert.equal(le.end().length, 0, 'end() twice does not emit it again');
  });

  for (const [name, seq] of [
    ['\\n.\\r\\n', 'a\n.\r\nb'],
    ['\\r.\\r', 'a\r.\rb'],
    ['\\r\\n.\\r', 'a\r\n.\rb'],
    ['\\n.\\n', 'a\n.\nb'],
    ['\\r\\n.\\n', 'a\r\n.\nb'],
  ] as const) {
    it(`neutralises the smuggling sequence ${name}`, () => {
      const out = run(seq);
      assert.equal(str(out), 'a\r\n.\r\nb');
      assert.equal(badLineEnd(out), -1);
      // and the same split at every position
      for (let cut = 0; cut <= seq.length; cut++) {
        const split = run(seq.slice(0, cut), seq.slice(cut));
        assert.equal(str(split), 'a\r\n.\r\nb', `split at ${cut}`);
      }
    });
  }

  it('property: random bytes in random chunks give the same output as one chunk, with only CRLF line ends', () => {
    const alphabet = [CR, LF, 0x2e, 0x41, 0x00, 0xff];
    for (let seed = 1; seed <= 500; seed++) {
      const rand = rng(seed);
      const len = Math.floor(rand() * 200);
      const input = Buffer.alloc(len);
      for (let i = 0; i < len; i++) {
        // mostly line-end characters and dots, sometimes any byte
        input[i] = rand() < 0.8 ? alphabet[Math.floor(rand() * alphabet.length)]! : Math.floor(rand() * 256);
      }
      const chunks: Buffer[] = [];
      let pos = 0;
      while (pos < len) {
        const n = Math.min(len - pos, Math.floor(rand() * 8)); // includes empty chunks
        chunks.push(input.subarray(pos, pos + n));
        pos += n;
      }
      const whole = run(input);
      const pieces = run(...chunks);
      const ctx = `seed ${seed}, input ${JSON.stringify(str(input))}`;
      assert.ok(pieces.equals(whole), `chunked output differs (${ctx})`);
      assert.equal(badLineEnd(whole), -1, `bad line end in output (${ctx})`);
      assert.ok(whole.equals(reference(input)), `output differs from reference (${ctx})`);
    }
  });

  it('property: already-clean CRLF input is returned unchanged however it is split', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = rng(seed * 7919);
      const lines: string[] = [];
      const n = Math.floor(rand() * 20);
      for (let i = 0; i < n; i++) lines.push('x'.repeat(Math.floor(rand() * 5)) + (rand() < 0.3 ? '.' : ''));
      const input = Buffer.from(lines.map((l) => l + '\r\n').join(''), 'latin1');
      const chunks: Buffer[] = [];
      for (let pos = 0; pos < input.length;) {
        const k = 1 + Math.floor(rand() * 6);
        chunks.push(input.subarray(pos, pos + k));
        pos += k;
      }
      assert.ok(run(...chunks).equals(input), `seed ${seed}`);
    }
  });
});
