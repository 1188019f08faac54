// Property test: for random messages (line-starting dots, stuffed dots, bare
// CR and LF, terminators in odd places) cut into random chunks, the fast DATA
// parser gives what smtp-server's own gives: the same content bytes, the same
// byte count, and the same commands after the terminator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { fastFeed, originalFeed } from './data-stream.js';

type Feed = typeof originalFeed;
interface Parsed { data: Buffer; bytes: number; commands: string[] }

async function parse(chunks: Buffer[], feed: Feed): Promise<Parsed> {
  const s = new SMTPStream() as SMTPStream & { _feedDataStream: Feed; dataBytes: number };
  s._feedDataStream = feed;
  const commands: string[] = [];
  s.oncommand = (cmd: Buffer, cb: () => void) => { commands.push(cmd.toString('latin1')); cb(); };
  const data: Buffer[] = [];
  const stream = s.startDataMode();
  let bytes = 0;
  const ended = new Promise<void>((resolve) => stream.on('end', () => { bytes = s.dataBytes; s.continue(); resolve(); }));
  stream.on('data', (c: Buffer) => data.push(c));
  for (const c of chunks) await new Promise<void>((resolve) => s.write(c, () => resolve()));
  await ended;
  await new Promise<void>((resolve) => s.end(() => resolve()));
  return { data: Buffer.concat(data), bytes, commands };
}

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

const PIECES = ['a', 'bc', ' ', '.', '..', '\r\n', '\r\n.', '\r\n..', '\r\n.x', '\r', '\n', '\n.', '\n.\r\n', '\r.\r', '\r\n.\r\n'];
const STARTS = ['', '.', '..', '.\r\n', '..\r\n', '.x', '\r\n.\r\n'];

test('same content, size and following commands as smtp-server for random messages and chunkings', async () => {
  let fast = 0;
  let fallback = 0;
  const counted: Feed = function (this: unknown, chunk, done) { fallback++; return originalFeed.call(this as never, chunk, done); };
  const patched = fastFeed(counted);
  const measured: Feed = function (this: unknown, chunk, done) { fast++; return patched.call(this as never, chunk, done); };
  for (let round = 0; round < 1500; round++) {
    const r = rng(round + 7);
    const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
    const body = Array.from({ length: Math.floor(r() * (round % 10 === 0 ? 3000 : 120)) }, () => pick(PIECES)).join('');
    const bytes = Buffer.from(`${pick(STARTS)}${body}\r\n.\r\nQUIT\r\n`, 'latin1');
    const maxChunk = pick([1, 3, 9, 16, 64, 1000, 70000]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length;) {
      const n = 1 + Math.floor(r() * maxChunk);
      chunks.push(bytes.subarray(i, i + n));
      i += n;
    }
    const want = await parse(chunks, originalFeed);
    const got = await parse(chunks, measured);
    assert.deepEqual(got, want, `round ${round}: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
  }
  // the fast path must really have run, not only the fallback (small chunks and dense dots fall back often)
  assert.ok(fast - fallback > 500, `fast path taken for ${fast - fallback} of ${fast} chunks`);
});

test('a 100 KB message in socket-sized chunks never falls back', async () => {
  let fallback = 0;
  const counted: Feed = function (this: unknown, chunk, done) { fallback++; return originalFeed.call(this as never, chunk, done); };
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n';
  const body = Buffer.from(`${line.repeat(1300)}..stuffed\r\n${line}.\r\n`, 'latin1');
  const chunks = [body.subarray(0, 65536), body.subarray(65536)];
  const got = await parse(chunks, fastFeed(counted));
  assert.equal(fallback, 0);
  assert.equal(got.data.toString('latin1'), `${line.repeat(1300)}.stuffed\r\n${line}`);
  assert.equal(got.bytes, got.data.length);
});
