// End to end (issue 20): [log] file can be rotated. After `mv maillog maillog.1`, SIGUSR1 (what
// contrib/logrotate.d/smarthost sends) or SIGHUP makes the daemon open a new maillog; every line
// is in exactly one of the two files. [log] changes apply at SIGHUP, and `start` says on stderr
// where it logs.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, ROOT, removeDir, tempDir, writeConfig } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); dirs.forEach(removeDir); });

const SYSLOG_LINE = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d relay smarthost\/[a-z]+\[\d+\]: \S/;
const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');

/** test/helpers/wait.ts's waitFor, 10 s in 50 ms steps, with the reason first as these calls read. */
const until = (what: string, test: () => boolean) => waitFor(test, what, 200, 50);

interface Logged { child: ChildProcess; port: number; stderr: () => string; stop(): Promise<void> }

/** Starts the daemon with [log] file = `log` (nothing on stdout): the port comes from the file. */
async function startLogged(dir: string, log: string, extra = ''): Promise<{ d: Logged; config: string }> {
  const config = writeConfig(dir, `[[listen]]\naddress = "127.0.0.1:0"\n\n[log]\nfile = "${log}"\n${extra}`);
  const child = spawn(process.execPath, [CLI, 'start', '-c', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(read(log)), () => `"listening on" in ${log}; stderr: ${stderr}`, 200, 50);
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(read(log))![1]);
  assert.equal(stdout, '', 'with [log] file, nothing is logged on stdout');
  return { config, d: { child, port, stderr: () => stderr, async stop() { child.kill('SIGTERM'); await exited; } } };
}

/** Submits `n` messages, `parallel` at a time; `midway` runs once half of them are queued. */
async function submitMany(port: number, n: number, midway: () => void | Promise<void>): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  let fired: Promise<void> | undefined;
  const worker = async () => {
    while (next < n) {
      next++;
      ids.push(await submit(port, 'a@client.test', ['b@example.net']));
      if (ids.length >= n / 2 && !fired) fired = Promise.resolve(midway());
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  await fired;
  return ids;
}

/** Every queue id's "(queue active)" line is in exactly one file, once; every line is whole. */
async function assertEachOnce(files: string[], ids: string[]): Promise<void> {
  const count = (id: string) => files.map(read).join('').split('\n').filter((l) => l.includes(`${id}: from=<a@client.test>`)).length;
  await until('every message logged', () => ids.every((id) => count(id) >= 1));
  for (const id of ids) assert.equal(count(id), 1, `${id} logged ${count(id)} times`);
  for (const f of files) {
    const text = read(f);
    assert.ok(text.endsWith('\n'), `${f} ends with a whole line`);
    for (const line of text.split('\n').slice(0, -1)) assert.match(line, SYSLOG_LINE, `a whole line in ${f}`);
  }
}

describe('[log] file rotation', () => {
  it('start says where it logs; mv + SIGUSR1: a new file, every line in exactly one of the two', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const log = path.join(dir, 'maillog');
    const { d } = await startLogged(dir, log);
    const told = new RegExp(`^smarthost: logging to ${log.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(format postfix\\); SIGUSR1 reopens it`, 'm');
    await until('stderr to say where the log goes', () => told.test(d.stderr()));
    const ids = await submitMany(d.port, 30, () => {
      fs.renameSync(log, `${log}.1`);
      d.child.kill('SIGUSR1');
    });
    await assertEachOnce([`${log}.1`, log], ids);
    const before = read(`${log}.1`);
    const now = read(log);
    assert.match(before, /daemon started/);
    assert.doesNotMatch(now, /daemon started/);
    assert.ok(ids.some((id) => now.includes(`${id}: from=<`)), 'mail after the signal is logged in the new file');
    assert.doesNotMatch(d.stderr(), /Debugger listening|inspector/i, 'SIGUSR1 does not open Node\'s inspector');
    await d.stop();
    assert.match(read(log), /daemon stopped\n$/);
  });

  it('SIGHUP reopens the file too, and applies a new [log] file and format without a restart', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const log = path.join(dir, 'maillog');
    const { d, config } = await startLogged(dir, log);
    const first = await submit(d.port, 'a@client.test', ['b@example.net']);
    fs.renameSync(log, `${log}.1`);
    d.child.kill('SIGHUP');
    await until('the reload line in the new file', () => /reload -- configuration/.test(read(log)));
    const second = await submit(d.port, 'a@client.test', ['b@example.net']);
    await assertEachOnce([`${log}.1`, log], [first, second]);
    // (delivery lines of the first message may come after the signal: only its queued line is checked)
    assert.ok(read(`${log}.1`).includes(`${first}: from=<`) && read(log).includes(`${second}: from=<`));

    const json = path.join(dir, 'maillog.json');
    fs.writeFileSync(config, read(config).replace(`file = "${log}"`, `file = "${json}"\nformat = "json"`));
    d.child.kill('SIGHUP');
    await until('JSON lines in the new file', () => /"event":"reloaded"/.test(read(json)));
    assert.match(read(log), new RegExp(`log continues in ${json.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(format json\\)\\n$`));
    assert.doesNotMatch(read(log) + read(json), /take effect at the next restart/);
    await until('stderr to name the new file', () => /logging to .*maillog\.json \(format json\)/.test(d.stderr()));
    const third = await submit(d.port, 'a@client.test', ['b@example.net']);
    await until('the JSON queued line', () => read(json).includes(`"queue_id":"${third}"`));
    for (const line of read(json).trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
    await d.stop();
  });

  it('a [log] file that cannot be opened: check says so, start refuses, and a reload to it is refused (the log stays)', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const missing = path.join(dir, 'no-such-folder', 'maillog');
    const bad = writeConfig(dir, `[[listen]]\naddress = "127.0.0.1:0"\n\n[log]\nfile = "${missing}"\n`);
    const check = spawnSync(process.execPath, [CLI, 'check', '-c', bad], { cwd: dir, encoding: 'utf8' });
    assert.equal(check.status, 1);
    assert.match(check.stdout + check.stderr, /\[log\] file .*no-such-folder\/maillog cannot be written \(its folder .* does not exist\)/);
    const start = spawnSync(process.execPath, [CLI, 'start', '-c', bad], { cwd: dir, encoding: 'utf8', timeout: 10_000 });
    assert.equal(start.status, 73);
    assert.match(start.stderr, /fatal: cannot open the log file .*no-such-folder\/maillog \(ENOENT\)/);

    const log = path.join(dir, 'maillog');
    const { d, config } = await startLogged(dir, log);
    fs.writeFileSync(config, read(config).replace(`file = "${log}"`, `file = "${missing}"`));
    d.child.kill('SIGHUP');
    await until('the refusal in the old file', () => /keeping the running one/.test(read(log)));
    assert.match(read(log), /cannot open the log file .*no-such-folder\/maillog \(ENOENT\)/);
    const id = await submit(d.port, 'a@client.test', ['b@example.net']);
    await until('the next message in the old file', () => read(log).includes(`${id}: from=<`));
    await d.stop();
  });

  const logrotate = spawnSync('logrotate', ['--version']).status === 0;
  it('contrib/logrotate.d/smarthost rotates the live file: nothing lost, nothing twice', { skip: !logrotate && 'logrotate is not installed' }, async () => {
    const dir = tempDir();
    dirs.push(dir);
    const log = path.join(dir, 'maillog');
    const { d } = await startLogged(dir, log);
    // the recipe as shipped, pointed at this file; `su`/`create` owners need the smarthost user,
    // and systemctl is a stub that names our daemon's pid as MainPID
    const recipe = read(path.join(ROOT, 'contrib/logrotate.d/smarthost'))
      .replaceAll('/var/log/smarthost/maillog', log).replace(/^\s*su smarthost smarthost\n/m, '').replace('create 0640 smarthost smarthost', 'create 0640');
    assert.match(recipe, /kill -USR1/);
    const conf = path.join(dir, 'logrotate.conf');
    fs.writeFileSync(conf, recipe, { mode: 0o644 });
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'systemctl'), `#!/bin/sh\necho ${d.child.pid}\n`, { mode: 0o755 });
    const ids = await submitMany(d.port, 20, () => {
      const r = spawnSync('logrotate', ['-f', '-s', path.join(dir, 'logrotate.state'), conf], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(fs.existsSync(`${log}.1`), 'logrotate renamed the file');
    });
    await assertEachOnce([`${log}.1`, log], ids);
    assert.ok(ids.some((id) => read(log).includes(`${id}: from=<`)), 'mail after the rotation is logged in the new file');
    assert.equal(fs.existsSync(`${log}.1.gz`), false, 'delaycompress: maillog.1 stays uncompressed');
    await d.stop();
  });
});
