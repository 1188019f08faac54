// The DATA parser (pure, fast): random bytes rich in smuggling material, cut
// into random chunks, must give exactly what the line-by-line reference model
// gives: the same content and the same bytes after the end of DATA.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataParser } from '../../src/smtpd/data-parser.js';
import { dataModel } from './data-model.js';
import { body, cutAt, cutsFor } from './gen.js';

export const dataInput = fc.oneof(body, fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a).toString('latin1')))
  .map((b) => Buffer.from(b + (b.length % 3 ? '\r\n.\r\nQUIT\r\n' : ''), 'latin1'))
  .chain((wire) => fc.tuple(fc.constant(wire), cutsFor(wire.length)));

export function checkData([wire, cuts]: [Buffer, number[]]): void {
  const p = new DataParser();
  const content: Buffer[] = [];
  let rest: Buffer | undefined;
  const chunks = cutAt(wire, cuts);
  for (let i = 0; i < chunks.length && !rest; i++) {
    const r = p.push(chunks[i]!);
    content.push(...r.content);
    if (r.rest) rest = Buffer.concat([r.rest, ...chunks.slice(i + 1)]);
  }
  const want = dataModel(wire);
  if (!want) {
    assert.equal(rest, undefined, 'ended where the model does not');
    // without an end, the parser may hold back at most ".\r" of what the model has so far
    return;
  }
  assert.ok(rest, 'the model ends DATA, the parser does not');
  assert.deepEqual(Buffer.concat(content), want.content, 'content');
  assert.deepEqual(rest, want.rest, 'the bytes after the end');
}
