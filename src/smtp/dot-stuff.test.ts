// Property test: for random messages (dots, bare CR and LF included) cut into
// random chunks, the fast transform gives byte for byte what nodemailer's
// DataStream gives, and its counters agree.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import type { Transform } from 'node:stream';
import { fastDotStuffing, type TransformFn } from './dot-stuff.js';

const require = createRequire(import.meta.url);
// DataStream is not in nodemailer's exports map; load its file by path (tests only)
const DataStream = require(path.join(path.dirname(require.resolve('nodemailer')), 'smtp-connection/data-stream.js')).default as new () => Transform;

async function run(chunks: Buffer[], fast: boolean): Promise<{ out: Buffer; inBytes: number; outBytes: number }> {
  const s = new DataStream() as Transform & { _transform: TransformFn; inByteCount: number; outByteCount: number };
  if (fast) s._transform = fastDotStuffing(s._transform);
  const out: Buffer[] = [];
  s.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((r) => s.on('end', r));
  for (const c of chunks) s.write(c);
  s.end();
  await ended;
  return { out: Buffer.concat(out), inBytes: s.inByteCount, outBytes: s.outByteCount };
}

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

test('same bytes as nodemailer for random CRLF-clean and dirty messages, any chunking', async () => {
  const alphabet = ['a', 'b', '.', '\r\n', '\r\n.', '..', ' '];
  const dirty = [...alphabet, '\r', '\n'];
  for (let round = 0; round < 400; round++) {
    const r = rng(round + 1);
    const letters = round % 2 ? alphabet : dirty; // half CRLF-clean (the fast path), half not (the fallback)
    const text = Array.from({ length: 1 + Math.floor(r() * 200) }, () => letters[Math.floor(r() * letters.length)]).join('');
    const bytes = Buffer.from(text, 'latin1');
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length;) { const n = 1 + Math.floor(r() * 40); chunks.push(bytes.subarray(at, at + n)); at += n; }
    const [a, b] = [await run(chunks, false), await run(chunks, true)];
    assert.ok(a.out.equals(b.out), `round ${round}: ${JSON.stringify(text)}\nnodemailer ${JSON.stringify(a.out.toString('latin1'))}\nfast       ${JSON.stringify(b.out.toString('latin1'))}`);
    assert.deepEqual([b.inBytes, b.outBytes], [a.inBytes, a.outBytes]);
  }
});

test('a 100 KB CRLF message with dotted lines', async () => {
  const line = '.a dotted line of text to fill the message up\r\n';
  const body = Buffer.from(line.repeat(Math.ceil(100_000 / line.length)));
  const chunks = [body.subarray(0, 65_536), body.subarray(65_536)];
  const [a, b] = [await run(chunks, false), await run(chunks, true)];
  assert.ok(a.out.equals(b.out));
  assert.ok(b.out.subarray(-5).equals(Buffer.from('\r\n.\r\n')));
});
