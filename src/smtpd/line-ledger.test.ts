// LineLedger: the ending of each command line, whatever the chunking, with message
// content skipped by smtp-server's own end-of-data rule.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineLedger } from './line-ledger.js';

/**
 * Feeds `text` cut at `cuts`, then takes one ending per command line as the guard would
 * (startContent after each "DATA"); `want` is what smtp-server's parser saw for those lines.
 */
function run(text: string, cuts: number[] = []): { got: Array<boolean | undefined>; want: boolean[] } {
  const l = new LineLedger();
  const bytes = Buffer.from(text, 'latin1');
  let from = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < bytes.length).sort((a, b) => a - b), bytes.length]) {
    l.feed(bytes.subarray(from, c));
    from = c;
  }
  // the commands, as smtp-server's parser would hand them over
  const got: Array<boolean | undefined> = [];
  const want: boolean[] = [];
  let inData = false;
  let first = false;
  let prevCrlf = true;
  for (const m of text.matchAll(/([^\n]*?)(\r?)\n/g)) {
    const [, line, cr] = m;
    if (inData) {
      if (line === '.' && cr && (first || prevCrlf)) inData = false;
      first = false;
      prevCrlf = !!cr;
      continue;
    }
    got.push(l.nextIsBare());
    want.push(!cr);
    prevCrlf = !!cr;
    if (line === 'DATA') { l.startContent(); inData = true; first = true; }
  }
  return { got, want };
}
const endings = (text: string, cuts: number[] = []) => run(text, cuts).got;

describe('LineLedger', () => {
  it('tells CRLF from a bare LF, line by line', () => {
    assert.deepEqual(endings('EHLO a\r\nNOOP\nRSET\r\n'), [false, true, false]);
  });

  it('a CRLF cut between two chunks is still a CRLF; an empty bare line is bare', () => {
    assert.deepEqual(endings('EHLO a\r\nNOOP\r\n\n', [7, 13]), [false, false, true]);
  });

  it('skips message content up to "." after a CRLF, and reads the commands after it', () => {
    assert.deepEqual(endings('DATA\r\nline\nNOOP\n\n.\nx\r\n.\r\nNOOP\n'), [false, true]);
    assert.deepEqual(endings('DATA\r\n.\r\nRSET\r\n'), [false, false], 'an empty message');
  });

  it('content that came before the 354 (pipelined too early) is skipped too', () => {
    const l = new LineLedger();
    l.feed(Buffer.from('DATA\r\nSubject: x\n\r\n.\r\nQUIT\n'));
    assert.equal(l.nextIsBare(), false);
    l.startContent();
    assert.equal(l.nextIsBare(), true);
  });

  it('reset() forgets what was sent in plaintext after STARTTLS', () => {
    const l = new LineLedger();
    l.feed(Buffer.from('STARTTLS\r\nEHLO injected\n'));
    assert.equal(l.nextIsBare(), false);
    l.reset();
    l.feed(Buffer.from('EHLO a\r\n'));
    assert.equal(l.nextIsBare(), false);
    assert.equal(l.nextIsBare(), undefined);
  });

  it('agrees with the parser on every command line, for any chunking (property)', () => {
    const line = fc.constantFrom('EHLO a', 'NOOP', 'DATA', '.', '', 'x.y', '..');
    const ending = fc.constantFrom('\r\n', '\n');
    fc.assert(fc.property(fc.array(fc.tuple(line, ending), { maxLength: 30 }), fc.array(fc.nat(400), { maxLength: 10 }), (lines, cuts) => {
      const text = lines.map(([a, b]) => a + b).join('');
      const { got, want } = run(text, cuts);
      assert.deepEqual(got, want);
    }), { numRuns: 500 });
  });
});
