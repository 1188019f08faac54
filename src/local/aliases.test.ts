import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAliases, type AliasTable } from './aliases.js';

// As shipped by Debian's postfix package, plus what admins usually add.
const DEBIAN = `# See man 5 aliases for format
postmaster:    root

# General redirections for pseudo accounts.
mailer-daemon: postmaster
bin:           root
daemon:        root
nobody:        root
abuse:         root
security:      root
webmaster:     root

# Person who should get root's mail
root: admin@example.com, \\root
`;

function targets(table: AliasTable, name: string): readonly string[] | undefined {
  return table.entries.get(name);
}

function messages(table: AliasTable): string[] {
  return table.problems.map((p) => `${p.line}: ${p.message}`);
}

describe('parseAliases: a Debian /etc/aliases', () => {
  const table = parseAliases(DEBIAN);

  it('reads every entry with no problem', () => {
    assert.deepEqual(messages(table), []);
    assert.deepEqual([...table.entries.keys()],
      ['postmaster', 'mailer-daemon', 'bin', 'daemon', 'nobody', 'abuse', 'security', 'webmaster', 'root']);
    assert.deepEqual(targets(table, 'mailer-daemon'), ['postmaster']);
    assert.deepEqual(targets(table, 'postmaster'), ['root']);
  });

  it('keeps a backslash target exactly as written', () => {
    assert.deepEqual(targets(table, 'root'), ['admin@example.com', '\\root']);
  });

  it('gives the same table for CRLF line ends', () => {
    const crlf = parseAliases(DEBIAN.replace(/\n/g, '\r\n'));
    assert.deepEqual([...crlf.entries], [...table.entries]);
    assert.deepEqual(crlf.problems, []);
  });
});

describe('parseAliases: syntax', () => {
  it('lower-cases names but not targets', () => {
    const t = parseAliases('PostMaster: Admin@Example.COM\n');
    assert.deepEqual([...t.entries], [['postmaster', ['Admin@Example.COM']]]);
  });

  it('joins continuation lines, skipping comments and blank lines between them', () => {
    const t = parseAliases([
      'staff: alice@example.com,',
      '\tbob@example.com,',
      '# carol left',
      '',
      '  dave@example.com',
      'other: x@example.com',
    ].join('\n'));
    assert.deepEqual(targets(t, 'staff'), ['alice@example.com', 'bob@example.com', 'dave@example.com']);
    assert.deepEqual(targets(t, 'other'), ['x@example.com']);
    assert.deepEqual(t.problems, []);
  });

  it('continues an entry whose list was split without a trailing comma', () => {
    const t = parseAliases('team: a@example.com\n b@example.com, c@example.com\n');
    // "a@example.com b@example.com" is one target: postalias would read it the same way
    assert.deepEqual(targets(t, 'team'), ['a@example.com b@example.com', 'c@example.com']);
  });

  it('accepts a quoted name, and a colon inside it', () => {
    const t = parseAliases('"John Doe": john@example.com\n"a:b": ab@example.com\n');
    assert.deepEqual(targets(t, 'john doe'), ['john@example.com']);
    assert.deepEqual(targets(t, 'a:b'), ['ab@example.com']);
  });

  it('does not split at commas inside quotes and keeps the quotes', () => {
    const t = parseAliases('jd: "doe, john"@example.com, "john doe"@example.com , other@example.com\n');
    assert.deepEqual(targets(t, 'jd'), ['"doe, john"@example.com', '"john doe"@example.com', 'other@example.com']);
  });

  it('honours a backslash-escaped quote inside quotes', () => {
    const t = parseAliases('q: "a\\",b"@example.com, c@example.com\n');
    assert.deepEqual(targets(t, 'q'), ['"a\\",b"@example.com', 'c@example.com']);
  });

  it('strips one pair of angle brackets and drops empty targets', () => {
    const t = parseAliases('x: <a@example.com>, , b@example.com,,< c@example.com >, <>,\n');
    assert.deepEqual(targets(t, 'x'), ['a@example.com', 'b@example.com', 'c@example.com']);
    assert.deepEqual(t.problems, []);
  });

  it('splits only at the first colon', () => {
    const t = parseAliases('x: a@example.com:25\n');
    assert.deepEqual(targets(t, 'x'), ['a@example.com:25']);
  });

  it('ignores an indented comment and a leading byte order mark', () => {
    const t = parseAliases('\uFEFFa: b\n   # an indented comment\n');
    assert.deepEqual([...t.entries], [['a', ['b']]]);
    assert.deepEqual(t.problems, []);
  });

  it('returns a frozen table', () => {
    const t = parseAliases('a: b, c\n');
    assert.ok(Object.isFrozen(t));
    assert.ok(Object.isFrozen(t.problems));
    assert.ok(Object.isFrozen(t.entries.get('a')));
    assert.throws(() => (t.entries as Map<string, readonly string[]>).set('evil', ['x']), TypeError);
    assert.throws(() => (t.entries as Map<string, readonly string[]>).delete('a'), TypeError);
    assert.throws(() => (t.entries as Map<string, readonly string[]>).clear(), TypeError);
    assert.deepEqual([...t.entries], [['a', ['b', 'c']]]);
  });
});

describe('parseAliases: problems', () => {
  it('drops a command target, keeps the others, and names the start line', () => {
    const t = parseAliases('# x\nlist: a@example.com,\n  |/usr/bin/procmail, b@example.com\n');
    assert.deepEqual(targets(t, 'list'), ['a@example.com', 'b@example.com']);
    assert.deepEqual(messages(t), ['2: alias "list": delivery to a command ("|/usr/bin/procmail") is not supported by smarthost; forward to an address instead']);
  });

  it('treats a quoted command as a command', () => {
    const t = parseAliases('majordomo: "|/usr/lib/majordomo/wrapper majordomo", owner@example.com\n');
    assert.deepEqual(targets(t, 'majordomo'), ['owner@example.com']);
    assert.equal(t.problems.length, 1);
    assert.match(t.problems[0]!.message, /^alias "majordomo": delivery to a command \("\|\/usr\/lib\/majordomo\/wrapper majordomo"\)/);
  });

  it('drops file and include targets', () => {
    const t = parseAliases('log: /var/log/mail.copy, keep@example.com\nstaff: :include:/etc/mail/staff, <:INCLUDE:/etc/mail/more>, boss@example.com\n');
    assert.deepEqual(targets(t, 'log'), ['keep@example.com']);
    assert.deepEqual(targets(t, 'staff'), ['boss@example.com']);
    assert.deepEqual(messages(t), [
      '1: alias "log": delivery to a file ("/var/log/mail.copy") is not supported by smarthost; forward to an address instead',
      '2: alias "staff": an include file (":include:/etc/mail/staff") is not supported by smarthost; list its addresses in the alias itself',
      '2: alias "staff": an include file (":INCLUDE:/etc/mail/more") is not supported by smarthost; list its addresses in the alias itself',
    ]);
  });

  it('does not add an entry left without a target', () => {
    const t = parseAliases('a: |/bin/cat\nb:\nc: , ,\nd: ok@example.com\n');
    assert.deepEqual([...t.entries.keys()], ['d']);
    assert.deepEqual(messages(t), [
      '1: alias "a": delivery to a command ("|/bin/cat") is not supported by smarthost; forward to an address instead',
      '2: alias "b" has no target',
      '3: alias "c" has no target',
    ]);
  });

  it('reports a line without a colon and an empty name, truncating long lines', () => {
    const long = 'x'.repeat(100);
    const t = parseAliases(`root admin@example.com\n: nobody@example.com\n"": a@example.com\n${long}\n`);
    assert.equal(t.entries.size, 0);
    assert.deepEqual(messages(t), [
      '1: expected "name: target, ...", found "root admin@example.com"',
      '2: alias with an empty name: ": nobody@example.com"',
      '3: alias with an empty name: """: a@example.com"',
      `4: expected "name: target, ...", found "${'x'.repeat(59)}…"`,
    ]);
  });

  it('keeps the first of two definitions', () => {
    const t = parseAliases('root: first@example.com\nother: x@example.com\nROOT: second@example.com\n');
    assert.deepEqual(targets(t, 'root'), ['first@example.com']);
    assert.deepEqual(messages(t), ['3: alias "root" is defined twice (line 1); the first definition is used']);
  });

  it('uses a later definition when the first one had no usable target', () => {
    const t = parseAliases('root: |/bin/true\nroot: admin@example.com\n');
    assert.deepEqual(targets(t, 'root'), ['admin@example.com']);
    assert.equal(messages(t).length, 1, 'one problem per cause: the command, not also "no target"');
  });

  it('reports a continuation line with nothing to continue, and an open quote', () => {
    const t = parseAliases('  orphan@example.com\na: "unclosed@example.com, b@example.com\nc: d\n');
    assert.deepEqual([...t.entries], [['c', ['d']]]);
    assert.deepEqual(messages(t), [
      '1: line starts with whitespace, so it continues an entry, but no entry comes before it: "orphan@example.com"',
      '2: a quote is not closed: "a: "unclosed@example.com, b@example.com"',
    ]);
  });

  it('lists problems in line order with CRLF input', () => {
    const t = parseAliases('bad line\r\nok: a@example.com\r\nx: |cmd\r\n');
    assert.deepEqual(messages(t), [
      '1: expected "name: target, ...", found "bad line"',
      '3: alias "x": delivery to a command ("|cmd") is not supported by smarthost; forward to an address instead',
    ]);
    assert.deepEqual(targets(t, 'ok'), ['a@example.com']);
  });
});
