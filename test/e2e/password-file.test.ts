// End to end (issue 20): a password_file holding a Postfix sasl_passwd line ("[host]:port
// user:password") or "user:password" is recognised by `check` and `probe`, which name the line
// and its shape and say to write the password alone; the password itself is never printed.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, removeDir, runCli, startDaemon, tempDir, writeConfig } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const PASSWORD = 'Sup3r-s3cret';

/** A config whose [relay] logs in as alice with a password file holding `content`. */
function setup(url: string, content: string, extra = ''): { file: string; secret: string } {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  const secret = path.join(dir, 'relay.secret');
  fs.writeFileSync(secret, content, { mode: 0o600 });
  const file = writeConfig(dir, `[relay]\nurl = "${url}"\nusername = "alice"\npassword_file = "${secret}"\n${extra}`);
  return { file, secret };
}

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('a Postfix-style password_file', () => {
  it('check: a sasl_passwd line is an error that shows its shape and the fix, not the password', () => {
    const { file, secret } = setup('smtp://smtp.example.com:587', `[smtp.example.com]:587 alice:${PASSWORD}\n`);
    const r = runCli(['check', '-c', file]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(`error: password_file ${secret} line 1 looks like a line from Postfix's sasl_passwd ([smtp.example.com]:587 alice:PASSWORD)`), r.stderr);
    assert.ok(r.stderr.includes(`fix: write the password alone in ${secret}`), r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(PASSWORD));
  });

  it('check: "username:password" is an error too; a password with a colon is not', () => {
    const bad = setup('smtp://smtp.example.com:587', `alice:${PASSWORD}\n`);
    const r = runCli(['check', '-c', bad.file]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /line 1 looks like a "user:password" pair \(alice:PASSWORD\)/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(PASSWORD));
    const good = setup('smtp://smtp.example.com:587', 'Tr0ub4dor:3\n');
    const ok = runCli(['check', '-c', good.file]);
    assert.doesNotMatch(ok.stderr, /password_file/, ok.stderr);
  });

  it('probe: a sasl_passwd line fails the auth step without trying it, with the fix', async () => {
    const up: Upstream = await startUpstream({ tls: 'starttls', auth: { users: { alice: PASSWORD } } });
    cleanups.push(() => up.close());
    const { file, secret } = setup(up.url, `[127.0.0.1]:${up.port} alice:${PASSWORD}\n`, `tls = "verify"\nca_file = "${up.caFile}"\n`);
    const r = await run(['probe', '-c', file]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    const i = lines.findIndex((l) => l.startsWith('✗ auth '));
    assert.ok(i >= 0, r.stdout);
    assert.match(lines[i + 1]!, new RegExp(`password_file ${secret.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} line 1 looks like a line from Postfix's sasl_passwd \\(\\[127\\.0\\.0\\.1\\]:${up.port} alice:PASSWORD\\)`));
    assert.match(lines[i + 2]!, /fix: write the password alone in/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(PASSWORD));
    assert.deepEqual(up.sessions.flatMap((s) => s.authAttempts), [], 'no login was tried with the whole line');
  });

  it('probe: another address:password is tried, and the 535 comes with the shape', async () => {
    const up: Upstream = await startUpstream({ tls: 'starttls', auth: { users: { alice: PASSWORD } } });
    cleanups.push(() => up.close());
    const { file } = setup(up.url, `bob@example.com:${PASSWORD}\n`, `tls = "verify"\nca_file = "${up.caFile}"\n`);
    const r = await run(['probe', '-c', file]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /535 .*; password_file .* line 1 looks like a "user:password" pair \(bob@example\.com:PASSWORD\)/);
    assert.match(r.stdout, /fix: write the password alone in/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(PASSWORD));
  });

  it('delivery: the deferral after the 535 names the shape, not the password', async () => {
    const up: Upstream = await startUpstream({ tls: 'starttls', auth: { users: { alice: PASSWORD } } });
    cleanups.push(() => up.close());
    const dir = tempDir();
    const secret = path.join(dir, 'relay.secret');
    fs.writeFileSync(secret, `[127.0.0.1]:${up.port} alice:${PASSWORD}\n`, { mode: 0o600 });
    const d = await startDaemon({ dir, toml: `[[listen]]\naddress = "127.0.0.1:0"\n\n[relay]\nurl = "${up.url}"\ntls = "verify"\nca_file = "${up.caFile}"\nusername = "alice"\npassword_file = "${secret}"\n` });
    cleanups.push(async () => { await d.stop(); removeDir(dir); });
    const id = await submit(d.ports[0]!, 'a@client.test', ['b@example.net']);
    const line = await d.waitForLog(new RegExp(`${id}: to=<b@example\\.net>.*status=deferred.*\\n`));
    assert.match(line, /535 .*; password_file .* line 1 looks like a line from Postfix's sasl_passwd \(\[127\.0\.0\.1\]:\d+ alice:PASSWORD\), so all of it would be sent as the password; write the password alone in /);
    assert.doesNotMatch(d.logs(), new RegExp(PASSWORD));
  });
});
