// The `smarthost` command as npm installs it (a link to dist/src/cli/main.js,
// run through its "#!/usr/bin/env -S node ..." line) starts the daemon with
// the node options that line names, and `npm start` names the same ones.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, ROOT, removeDir, tempDir, writeConfig } from '../helpers/daemon.js';

const shebangOptions = (): string[] => {
  const m = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(fs.readFileSync(CLI, 'utf8').split('\n', 1)[0]!);
  assert.ok(m, 'main.js starts with "#!/usr/bin/env -S node [options]"');
  return m[1]!.trim().split(/\s+/).filter(Boolean);
};

describe('the smarthost command', () => {
  const dir = tempDir();
  after(() => removeDir(dir));

  it('runs the daemon under node with the options of its #! line', async () => {
    const options = shebangOptions();
    assert.ok(options.includes('--single-threaded-gc'));
    fs.chmodSync(CLI, 0o755); // what npm does to a bin when it links it
    const bin = path.join(dir, 'smarthost');
    fs.symlinkSync(CLI, bin);
    const config = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:0"\n');
    const child = spawn(bin, ['start', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" line within 10 s:\n${out}`)), 10_000);
        child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (/listening on 127\.0\.0\.1:\d+/.test(out)) { clearTimeout(timer); resolve(); } });
        child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited (${code}):\n${out}`)); });
      });
      const argv = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      assert.match(argv[0]!, /node/);
      assert.deepEqual(argv.slice(1, 1 + options.length), options, `node started as: ${argv.join(' ')}`);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('npm start passes the same node options', () => {
    const start = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    assert.equal(start, `node ${shebangOptions().join(' ')} dist/src/cli/main.js start`);
  });
});
