// DKIM signing cost on a 100 KB message (issue 19): CPU per message for what the delivery
// thread does before it sends (dkim/sign.ts signOutgoing, with the message read out as the
// transport would), with no key, an RSA-2048 key, an Ed25519 key and both; and the relaxed
// body hash alone against mailauth 4.13.3's dkimSign, the signer we did not use. CPU time
// (process.cpuUsage), not wall time, so other load on the machine disturbs it less.
// Run: npx tsc -p tsconfig.json && node dist/bench/dkim.js
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { DEFAULT_SIGNED_HEADERS } from '../src/config/dkim-section.js';
import type { DkimAlgorithm } from '../src/dkim/key.js';
import { signOutgoing, type DkimSigner } from '../src/dkim/sign.js';
import { RelaxedBodyHash } from '../src/dkim/signer.js';
import type { OutgoingMessage } from '../src/mail/delivery.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 400);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-bench-dkim-'));
const file = path.join(dir, 'message');
const lines = Array.from({ length: 1000 }, (_, i) => `line ${i} ${'x'.repeat(90)}\r\n`).join('');
const message = Buffer.from(`From: ann@example.com\r\nTo: bob@example.net\r\nSubject: bench\r\nDate: Mon, 7 Dec 2026 05:00:00 +0000\r\nMessage-ID: <b@example.com>\r\n\r\n${lines}`);
fs.writeFileSync(file, message);
const body = message.subarray(message.indexOf('\r\n\r\n') + 4);

const keys = { rsa: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, ed25519: crypto.generateKeyPairSync('ed25519').privateKey };
const signer = (t: 'rsa' | 'ed25519'): DkimSigner => ({
  domain: 'example.com', selector: t, algorithm: (t === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256') as DkimAlgorithm,
  privateKey: keys[t].export({ format: 'pem', type: 'pkcs8' }).toString(), headers: DEFAULT_SIGNED_HEADERS,
});
const msg: OutgoingMessage = { id: 'X', sender: 'ann@example.com', recipients: [], size: message.length, eightBit: false, body: () => fs.createReadStream(file, { highWaterMark: 64 * 1024 }) };

async function sendOut(signers: readonly DkimSigner[]): Promise<void> {
  for await (const chunk of (await signOutgoing(msg, signers)).body()) void chunk;
}

async function cpuMs(fn: () => unknown): Promise<number> {
  for (let i = 0; i < 30; i++) await fn();
  const start = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / RUNS;
}

const rows: Array<[string, number]> = [];
const rsa = signer('rsa');
const ed = signer('ed25519');
rows.push(['no [[dkim]]: message read out', await cpuMs(() => sendOut([]))]);
rows.push(['rsa-sha256 (2048)', await cpuMs(() => sendOut([rsa]))]);
rows.push(['ed25519-sha256', await cpuMs(() => sendOut([ed]))]);
rows.push(['rsa-sha256 + ed25519-sha256', await cpuMs(() => sendOut([rsa, ed]))]);
rows.push(['relaxed body hash alone (ours)', await cpuMs(() => { const h = new RelaxedBodyHash(); h.update(body); h.digest(); })]);
rows.push(['mailauth dkimSign, ed25519, buffer', await cpuMs(() => dkimSign(message, { canonicalization: 'relaxed/relaxed', signatureData: [{ signingDomain: 'example.com', selector: 'e', privateKey: ed.privateKey }] } as unknown as Parameters<typeof dkimSign>[1]))]);
fs.rmSync(dir, { recursive: true, force: true });

console.log(`DKIM signing, ${message.length} byte message, CPU ms per message (${RUNS} runs; load average ${os.loadavg()[0]!.toFixed(1)})`);
for (const [name, ms] of rows) console.log(`  ${name.padEnd(38)} ${ms.toFixed(2)}`);
console.log(JSON.stringify({ bench: 'dkim', bytes: message.length, runs: RUNS, cpuMs: Object.fromEntries(rows.map(([n, ms]) => [n, Number(ms.toFixed(3))])) }));
