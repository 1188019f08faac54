import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { mailauthVerdicts, pythonVerdicts } from '../../test/helpers/dkim-verify.js';
import { DEFAULT_SIGNED_HEADERS } from '../config/dkim-section.js';
import type { OutgoingMessage } from '../mail/delivery.js';
import { parsePrivateKey, recordText, type DkimAlgorithm } from './key.js';
import { signersFor, signOutgoing, type DkimSigner } from './sign.js';

function signer(domain: string, selector: string, type: 'rsa' | 'ed25519'): { signer: DkimSigner; record: [string, string] } {
  const pair = type === 'rsa' ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }) : crypto.generateKeyPairSync('ed25519');
  const privateKey = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const parsed = parsePrivateKey(privateKey);
  assert.ok(!('error' in parsed));
  const algorithm: DkimAlgorithm = parsed.algorithm;
  return { signer: { domain, selector, algorithm, privateKey, headers: DEFAULT_SIGNED_HEADERS }, record: [`${selector}._domainkey.${domain}`, recordText(parsed)] };
}

function outgoing(text: Buffer): OutgoingMessage {
  return { id: 'X', sender: 'a@example.com', recipients: [{ address: 'b@example.net' }], size: text.length, eightBit: true, body: () => Readable.from([text.subarray(0, 7), text.subarray(7)]) };
}

async function bytes(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const rsa = signer('example.com', 'r1', 'rsa');
const ed = signer('example.com', 'e1', 'ed25519');
const records = Object.fromEntries([rsa.record, ed.record]);
// folded headers, 8-bit body, trailing blank lines and trailing whitespace
const MESSAGE = Buffer.concat([
  Buffer.from('From: "Ann Example" <ann@Example.COM>\r\nTo: bob@example.net,\r\n\tcarol@example.net\r\nSubject: a folded\r\n  subject line\r\nDate: Mon, 7 Dec 2026 05:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n'),
  Buffer.from('Grüße aus Köln  \r\nline with \t tabs\r\n\r\n\r\n\r\n', 'utf8'),
]);

describe('DKIM signing', () => {
  it('signs with RSA and Ed25519 at once; mailauth and python3-dkim both verify each signature', async () => {
    const out = await signOutgoing(outgoing(MESSAGE), [rsa.signer, ed.signer]);
    const signed = await bytes(out.body());
    assert.equal(signed.length, out.size);
    assert.ok(signed.subarray(signed.length - MESSAGE.length).equals(MESSAGE), 'the message itself is unchanged');
    assert.match(signed.toString('latin1'), /^DKIM-Signature: [^]*a=rsa-sha256[^]*\r\nDKIM-Signature: [^]*a=ed25519-sha256/);
    assert.match(signed.toString('latin1'), /c=relaxed\/relaxed/);
    const expected = [{ domain: 'example.com', selector: 'r1', result: 'pass' }, { domain: 'example.com', selector: 'e1', result: 'pass' }];
    assert.deepEqual(await mailauthVerdicts(signed, records), expected);
    assert.deepEqual(pythonVerdicts(signed, records), expected);
  });

  it('a changed body or Subject fails both verifiers (the verifiers are not saying pass to anything)', async () => {
    const signed = await bytes((await signOutgoing(outgoing(MESSAGE), [rsa.signer])).body());
    const tampered = Buffer.from(signed.toString('latin1').replace('a folded', 'A folded'), 'latin1');
    assert.equal((await mailauthVerdicts(tampered, records))[0]!.result, 'fail');
    assert.equal(pythonVerdicts(tampered, records)[0]!.result, 'fail');
  });

  it('oversigns From: a From added above the signed one fails both verifiers', async () => {
    const signed = await bytes((await signOutgoing(outgoing(MESSAGE), [rsa.signer, ed.signer])).body());
    assert.match(signed.toString('latin1'), /h=from:from:/);
    const forged = Buffer.concat([Buffer.from('From: ceo@example.com\r\n'), signed]);
    assert.deepEqual((await mailauthVerdicts(forged, records)).map((v) => v.result), ['fail', 'fail']);
    assert.deepEqual(pythonVerdicts(forged, records).map((v) => v.result), ['fail', 'fail']);
  });

  it('signs a UTF-8 Subject with byte 0xA0 ("voilà") so that python3-dkim verifies it', async () => {
    // mailauth 4.13.3 folds 0xA0 as whitespace (see signer.ts), so only dkimpy can judge this one
    const text = Buffer.from('From: ann@example.com\r\nSubject: voilà, déjà vu\r\n\r\nbody\r\n', 'utf8');
    const signed = await bytes((await signOutgoing(outgoing(text), [rsa.signer, ed.signer])).body());
    assert.deepEqual(pythonVerdicts(signed, records).map((v) => v.result), ['pass', 'pass']);
  });

  it('picks signers by the exact From: domain, skips d=/s= pairs already signed and mail from several domains', () => {
    const head = (h: string) => Buffer.from(`${h}\r\n\r\n`);
    const all = [rsa.signer, ed.signer];
    assert.deepEqual(signersFor(head('From: a@example.com'), all).map((s) => s.selector), ['r1', 'e1']);
    assert.deepEqual(signersFor(head('From: a@sub.example.com'), all), []);
    assert.deepEqual(signersFor(head('From: a@example.org'), all), []);
    assert.deepEqual(signersFor(head('From: a@example.com, b@example.org'), all), []);
    assert.deepEqual(signersFor(head('DKIM-Signature: v=1; a=rsa-sha256; d=Example.com;\r\n s=r1; b=abc\r\nFrom: a@example.com'), all).map((s) => s.selector), ['e1']);
  });

  it('leaves mail without a matching From as it was', async () => {
    const msg = outgoing(Buffer.from('From: a@example.org\r\n\r\nhi\r\n'));
    assert.equal(await signOutgoing(msg, [rsa.signer]), msg);
  });
});
