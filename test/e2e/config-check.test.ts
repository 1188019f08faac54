// `smarthost check` and `smarthost start` against config files. Each bad
// config is stored beside its expected error (chasquid test/t-20-bad_configs):
// test/configs/bad/NAME.toml + NAME.expected, one substring per line, in which
// {FILE} stands for the absolute path of NAME.toml. A "fix:" line must be found
// on the line right after the one the previous expected line was found on.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, ROOT, removeDir, runCli, tempDir } from '../helpers/daemon.js';

const BAD = path.join(ROOT, 'test/configs/bad');
const GOOD = path.join(ROOT, 'test/configs/good.toml');

const badConfigs = fs.readdirSync(BAD).filter((f) => f.endsWith('.toml')).sort();

// The bad configs leave data_dir at its default, ./data beside them; should one
// ever be accepted, check would create test/configs/bad/data: remove it again.
after(() => removeDir(path.join(BAD, 'data')));

/** Checks that every expected substring is in `output`, and each "fix:" on the line after its problem. */
function assertExpected(output: string, expectedFile: string, file: string): void {
  const lines = output.split('\n');
  const expected = fs.readFileSync(expectedFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)
    .map((l) => l.replaceAll('{FILE}', file));
  let previous = -1;
  for (const want of expected) {
    const candidates = want.startsWith('fix:') ? [previous + 1] : lines.map((_, i) => i);
    const found = candidates.find((i) => lines[i]?.includes(want));
    assert.ok(found !== undefined,
      `expected ${want.startsWith('fix:') ? `on the line after ${JSON.stringify(lines[previous])}` : 'a line with'}:\n  ${want}\nin:\n${output}`);
    previous = found;
  }
}

describe('smarthost check: bad configs', () => {
  it('has bad configs to check, each with its .expected file', () => {
    assert.ok(badConfigs.length >= 8, `only ${badConfigs.length} bad configs in ${BAD}`);
    for (const f of badConfigs) assert.ok(fs.existsSync(path.join(BAD, f.replace(/\.toml$/, '.expected'))), `${f} has no .expected`);
    for (const f of fs.readdirSync(BAD).filter((x) => x.endsWith('.expected'))) {
      assert.ok(fs.existsSync(path.join(BAD, f.replace(/\.expected$/, '.toml'))), `${f} has no .toml`);
    }
  });

  for (const name of badConfigs) {
    it(`refuses ${name}`, () => {
      const file = path.join(BAD, name);
      const r = runCli(['check', '-c', file]);
      assert.equal(r.status, 1, `exit status\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:\\d+: `, 'm'), 'problems start with FILE:LINE:');
      assert.doesNotMatch(r.stdout, /: OK$/m, 'a bad config is never reported OK');
      assertExpected(r.stderr, file.replace(/\.toml$/, '.expected'), file);
    });
  }
});

describe('smarthost check: good configs and the environment', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));
  const fresh = () => { const d = tempDir('smarthost-check-'); dirs.push(d); return d; };

  it('passes a good config with exit 0 and prints the effective config', () => {
    const dir = fresh();
    const file = path.join(dir, 'smarthost.toml');
    fs.copyFileSync(GOOD, file);
    const r = runCli(['check', '-c', file]);
    assert.equal(r.status, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp(`configuration ${escapeRe(file)}: OK`));
    assert.match(r.stdout, /listen 127\.0\.0\.1:0 tls=none auth=none trusted=127\.0\.0\.0\/8,::1\/128/);
    assert.match(r.stdout, /listen \[::1\]:0 tls=starttls auth=none trusted=none/);
    assert.match(r.stdout, /relay smtp:\/\/127\.0\.0\.1:10025 tls=none/);
    assert.match(r.stdout, new RegExp(`data_dir ${escapeRe(path.join(dir, 'data'))}`), 'data_dir resolved next to the config file');
    assert.equal(fs.existsSync(path.join(dir, 'data')), false, 'check creates nothing');
  });

  it('reports a data_dir that cannot be written, with exit 1', () => {
    // A regular file where a folder should be: not writable even for root,
    // so this test means the same whoever runs it.
    const dir = fresh();
    fs.writeFileSync(path.join(dir, 'blocker'), 'a file, not a folder\n');
    const file = path.join(dir, 'smarthost.toml');
    const text = fs.readFileSync(GOOD, 'utf8').replace(/^data_dir = "data"$/m, 'data_dir = "blocker/data"');
    assert.match(text, /^data_dir = "blocker\/data"$/m);
    fs.writeFileSync(file, text);
    const r = runCli(['check', '-c', file]);
    assert.equal(r.status, 1, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    const out = r.stdout + r.stderr;
    assert.match(out, new RegExp(`data_dir ${escapeRe(path.join(dir, 'blocker/data'))} is not writable`));
    assert.match(out, /fix: create it/);
    assert.doesNotMatch(out, /: OK$/m);
  });

  it('reports a config file that does not exist, with exit 1', () => {
    const missing = path.join(fresh(), 'nowhere.toml');
    const r = runCli(['check', '-c', missing]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${escapeRe(missing)}: cannot read the config file: no such file`));
    assert.match(r.stderr, /fix: check the path given with -c/);
  });
});

describe('smarthost start: refuses bad configs', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('exits 78 without listening and prints every problem', () => {
    const dir = tempDir('smarthost-start-');
    dirs.push(dir);
    const file = path.join(dir, 'smarthost.toml');
    fs.writeFileSync(file, [
      'hostname = "relay.test"',            // 1
      `data_dir = "${path.join(dir, 'data')}"`, // 2
      '[[listen]]',                         // 3
      'address = "127.0.0.1:0"',            // 4 would bind if started
      '[relay]',                            // 5
      'url = "[127.0.0.1]:2525"',           // 6
      '[limits]',                           // 7
      'message_size = "lots"',              // 8
    ].join('\n'));
    // If it started it would run until killed: the timeout turns that into status null.
    const r = spawnSync(process.execPath, [CLI, 'start', '-c', file], { cwd: dir, encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 78, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /listening on/);
    assert.match(r.stderr, /the configuration has 2 problems:/);
    assert.ok(r.stderr.includes(`${file}:6: relay.url: "[127.0.0.1]:2525" is Postfix's relayhost syntax`), r.stderr);
    assert.ok(r.stderr.includes('fix: write url = "smtp://127.0.0.1:2525"'), r.stderr);
    assert.ok(r.stderr.includes(`${file}:8: limits.message_size: "lots" is not a size`), r.stderr);
    assert.match(r.stderr, /not starting/);
    assert.equal(fs.existsSync(path.join(dir, 'data')), false, 'nothing was created in data_dir');
  });

  for (const name of badConfigs) {
    it(`refuses to start with ${name}`, () => {
      const file = path.join(BAD, name);
      const r = spawnSync(process.execPath, [CLI, 'start', '-c', file], { cwd: ROOT, encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 78, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.doesNotMatch(r.stdout, /listening on/);
      assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:\\d+: `, 'm'));
      assert.match(r.stderr, /not starting/);
    });
  }
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
