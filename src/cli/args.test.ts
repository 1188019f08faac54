// smarthost's own option parsing: options before the verb, per-verb tables,
// and messages for people (issue 20: "a rejected option shows Node's raw text
// with an unclosed quote"; "-c FILE check" was "unknown command").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseVerbArgs, splitLeading, usageOf } from './args.js';
import { UsageError } from './common.js';
import { OPTIONS } from './verbs.js';

const USAGE = 'usage: smarthost queue [list] [--json]\n       smarthost queue show ID\nMore words.';

describe('splitLeading', () => {
  it('takes -c FILE, --config=FILE, -cFILE, --version, -V and --help before the verb', () => {
    assert.deepEqual(splitLeading(['-c', 'a.toml', 'check']), { config: 'a.toml', version: false, help: false, verb: 'check', rest: [] });
    assert.deepEqual(splitLeading(['--config=b.toml', 'queue', 'list', '--json']), { config: 'b.toml', version: false, help: false, verb: 'queue', rest: ['list', '--json'] });
    assert.equal(splitLeading(['-cc.toml', 'user', 'list']).config, 'c.toml');
    assert.equal(splitLeading(['--version']).version, true);
    assert.equal(splitLeading(['-V']).version, true);
    assert.equal(splitLeading(['--help']).help, true);
    assert.deepEqual(splitLeading(['queue', '-c', 'x']), { version: false, help: false, verb: 'queue', rest: ['-c', 'x'] });
  });

  it('refuses other options before the verb and a -c without a file', () => {
    assert.throws(() => splitLeading(['--json', 'queue']), (e: Error) => e instanceof UsageError && /unknown option --json \(before the command only -c FILE/.test(e.message));
    assert.throws(() => splitLeading(['-c']), { message: /^option -c needs a value: -c FILE$/ });
  });
});

describe('parseVerbArgs', () => {
  it('reads the verb\'s options anywhere, -c included, and leaves positionals', () => {
    const r = parseVerbArgs('queue', ['show', '-c', 'f.toml', 'ID1', '--raw'], OPTIONS.queue!, USAGE);
    assert.deepEqual(r.positionals, ['show', 'ID1']);
    assert.equal(r.values.config, 'f.toml');
    assert.equal(r.values.raw, true);
    const m = parseVerbArgs('queue', ['--from', 'a@x', '--from=@y', '--state', 'held'], OPTIONS.queue!, USAGE);
    assert.deepEqual(m.values.from, ['a@x', '@y']);
  });

  it('words an unknown option for a person: no raw Node text, quotes closed, a suggestion and the usage lines', () => {
    try {
      parseVerbArgs('queue', ['--frm', 'x'], OPTIONS.queue!, USAGE);
      assert.fail('no error');
    } catch (e) {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /^unknown option --frm \(did you mean --from\?\)\nusage: smarthost queue \[list\] \[--json\]\n {7}smarthost queue show ID\n\(smarthost queue --help for more\)$/);
      assert.doesNotMatch(e.message, /positional|To specify/);
      assert.equal((e.message.match(/'/g) ?? []).length % 2, 0);
    }
  });

  it('an option of another verb is unknown here (check takes no --json; user takes no --from)', () => {
    assert.throws(() => parseVerbArgs('check', ['--json'], OPTIONS.check!, 'usage: smarthost check'), /unknown option --json/);
    assert.throws(() => parseVerbArgs('user', ['list', '--from', 'x'], OPTIONS.user!, 'usage: smarthost user'), /unknown option --from/);
  });

  it('a missing value and a value given to a switch', () => {
    assert.throws(() => parseVerbArgs('start', ['--log-format'], OPTIONS.start!, 'usage: smarthost start'), { message: /^option --log-format needs a value: --log-format postfix\|json\n/ });
    assert.throws(() => parseVerbArgs('queue', ['-c'], OPTIONS.queue!, USAGE), { message: /^option -c needs a value: -c FILE/ });
    assert.throws(() => parseVerbArgs('queue', ['--json=yes'], OPTIONS.queue!, USAGE), { message: /^option --json takes no value \(remove "=yes"\)/ });
  });

  it('-- ends the options', () => {
    assert.deepEqual(parseVerbArgs('queue', ['show', '--', '--raw'], OPTIONS.queue!, USAGE).positionals, ['show', '--raw']);
  });

  it('usageOf keeps the usage line and the indented lines under it', () => {
    assert.equal(usageOf(USAGE), 'usage: smarthost queue [list] [--json]\n       smarthost queue show ID');
  });
});
