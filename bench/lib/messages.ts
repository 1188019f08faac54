// Test messages for the intake bench: plausible RFC 5322 text of an exact
// size (headers + body, before dot-stuffing), lines of up to ~76 characters
// with CRLF, some starting with "." so the wire form exercises dot-stuffing.
// Built once per size; the wire form ends with the final "\r\n.\r\n".

const WORDS = (
  'the relay accepts mail from local programs and hands it to the provider over tls ' +
  'queue message delivery retry bounce header body sender recipient domain server client ' +
  'report invoice meeting project schedule update please find attached below thanks regards ' +
  'tomorrow morning review draft budget quarter numbers team office weekly status notes ' +
  'a an of to in on for with from by at as is are was be this that it we you they'
).split(' ');

/** A small deterministic PRNG (mulberry32), so every run sends the same bytes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function textLine(rnd: () => number, max: number): string {
  let line = '';
  for (;;) {
    const w = WORDS[Math.floor(rnd() * WORDS.length)]!;
    if (line.length + w.length + 1 > max) return line;
    line = line ? `${line} ${w}` : w;
  }
}

function headerLines(size: number): string[] {
  return [
    'From: Bench Sender <bench@client.test>',
    'To: Sink <sink@example.com>',
    `Subject: intake benchmark, ${size} byte message`,
    'Date: Mon, 02 Jun 2025 10:00:00 +0000',
    `Message-ID: <bench-${size}@client.test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
  ];
}

/** The message as lines (no CRLF) whose CRLF-joined form is exactly `size` bytes. */
export function messageLines(size: number): string[] {
  const rnd = prng(size);
  const lines = headerLines(size);
  let total = lines.reduce((n, l) => n + l.length + 2, 0);
  for (let i = 0; ; i++) {
    const left = size - total - 2;          // room for one more line's text
    if (left < 0) throw new Error(`message size ${size} is smaller than its headers`);
    let line = textLine(rnd, Math.min(76, left));
    if (i % 25 === 7 && line.length < left) line = `.${line}`; // like a quoted "..." or ".signature"
    if (left <= 76) line = line.padEnd(left, '.');             // last line: hit the size exactly
    lines.push(line);
    total += line.length + 2;
    if (total === size) return lines;
  }
}

/** DATA payload: dot-stuffed lines, CRLF ends, then the terminating ".\r\n". */
export function wireMessage(size: number): Buffer {
  const stuffed = messageLines(size).map((l) => (l.startsWith('.') ? `.${l}` : l));
  return Buffer.from(`${stuffed.join('\r\n')}\r\n.\r\n`, 'latin1');
}
