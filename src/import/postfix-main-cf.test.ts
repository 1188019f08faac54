import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { expand, logicalLines, MainCf, parseMainCf, splitList } from './postfix-main-cf.js';

const mainOf = (text: string, defaults: Record<string, string> = {}) => new MainCf(parseMainCf(text).params, defaults);

describe('main.cf', () => {
  it('joins continuation lines, drops comments (also indented ones) and blank lines', () => {
    const lines = logicalLines('a = 1\n# comment\n   # indented comment\n\ndebugger_command =\n\t PATH=/bin\n\t ddd $x & sleep 5\nb = 2\n');
    assert.deepEqual(lines, [
      { text: 'a = 1', line: 1 },
      { text: 'debugger_command = PATH=/bin ddd $x & sleep 5', line: 5 },
      { text: 'b = 2', line: 8 },
    ]);
  });

  it('keeps the last definition and its line', () => {
    const { params } = parseMainCf('myhostname = a.example\n#myhostname = b.example\nmyhostname = c.example\n');
    assert.deepEqual(params.get('myhostname'), { value: 'c.example', line: 3 });
  });

  it('reports a line that is not name = value', () => {
    const { problems } = parseMainCf('relayhost [x]:25\n');
    assert.match(problems[0]!, /line 1: "relayhost \[x\]:25" is not "name = value"/);
  });

  it('keeps an empty value as set (myhostname =)', () => {
    const m = mainOf('myhostname =\n', { myhostname: 'sys' });
    assert.equal(m.isSet('myhostname'), true);
    assert.equal(m.get('myhostname'), '');
  });

  it('expands $name, ${name}, $(name), recursively, and unknown names to nothing', () => {
    const m = mainOf('mydomain = example.com\nmyhostname = alpha.$mydomain\nmydestination = $myhostname, localhost.${mydomain}, $(mydomain), $nothing\n');
    assert.equal(m.get('mydestination'), 'alpha.example.com, localhost.example.com, example.com, ');
    assert.deepEqual(m.list('mydestination'), ['alpha.example.com', 'localhost.example.com', 'example.com']);
  });

  it('expands ${name?text} and ${name:text}', () => {
    const lookup = (n: string) => ({ set: 'x', empty: '' } as Record<string, string>)[n];
    assert.equal(expand('${set?yes}|${empty?yes}|${set:no}|${empty:no}', lookup), 'yes|||no');
  });

  it('keeps $$ as a dollar, and stops a loop', () => {
    assert.equal(expand('a$$b', () => undefined), 'a$b');
    assert.throws(() => expand('$a', (n) => (n === 'a' ? '$b' : '$a')), /loops/);
  });

  it('expands defaults, and a key file defaulting to the cert file', () => {
    const m = mainOf('smtp_tls_cert_file = /etc/postfix/c.pem\nsmtp_tls_key_file = $smtp_tls_cert_file\n', { myhostname: 'sys.example' });
    assert.equal(m.get('smtp_tls_key_file'), '/etc/postfix/c.pem');
    assert.equal(m.get('myhostname'), 'sys.example');
    assert.equal(m.shown('myhostname'), 'myhostname (default)');
  });

  it('sees master.cf -o overrides in a service view, and shares what was read', () => {
    const m = mainOf('smtpd_tls_security_level = may\n');
    const svc = m.withOverrides(new Map([['smtpd_tls_security_level', 'encrypt']]));
    assert.equal(svc.get('smtpd_tls_security_level'), 'encrypt');
    assert.equal(m.get('smtpd_tls_security_level'), 'may');
    svc.get('smtpd_sasl_auth_enable');
    assert.ok(m.used.has('smtpd_sasl_auth_enable'));
  });

  it('reads booleans and lists as Postfix does', () => {
    const m = mainOf('a = YES\nb = no\nc = maybe\nl = x,y  z,\n\tw\n');
    assert.equal(m.bool('a'), true);
    assert.equal(m.bool('b', true), false);
    assert.equal(m.bool('c', true), true);
    assert.deepEqual(m.list('l'), ['x', 'y', 'z', 'w']);
    assert.deepEqual(splitList(' , '), []);
  });
});
