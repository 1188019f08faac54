import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authInfoFor, daemonOptions, parseAuthInfo, parseMc, readArgs, stripComments, unquote } from './sendmail-mc.js';

describe('sendmail.mc', () => {
  it('drops dnl and # comments, but not inside quotes, and keeps line numbers', () => {
    const src = "dnl define(`SMART_HOST', `old')\ndefine(`A', `x # y dnl z')dnl trailing\n# define(`B', `b')\n";
    const out = stripComments(src);
    assert.equal(out.split('\n').length, src.split('\n').length);
    assert.doesNotMatch(out, /old|trailing|`B'/);
    assert.match(out, /define\(`A', `x # y dnl z'\)/);
  });

  it('reads arguments with nested quotes and parentheses', () => {
    assert.deepEqual(readArgs("`a, b', c(d, e), `x `y' z')", 0)?.args, ['a, b', 'c(d, e)', "x `y' z"]);
    assert.equal(unquote("  `hash /etc/mail/authinfo'  "), 'hash /etc/mail/authinfo');
  });

  it('collects define (last wins, undefine removes), FEATURE and other calls with lines', () => {
    const mc = parseMc([
      'divert(-1)', '# Copyright (c) it\'s old', 'divert(0)',
      "define(`SMART_HOST', `your.isp.mail.server')",
      "define(`SMART_HOST', `[127.0.0.1]')",
      "define(`RELAY_MAILER_ARGS', `TCP $h 2525')dnl",
      "define(`confLOG_LEVEL', `20')dnl", "undefine(`confLOG_LEVEL')",
      "FEATURE(`authinfo', `hash /etc/mail/auth/authinfo.db')",
      'FEATURE(access_db, `hash -o -T<TMPF> /etc/mail/access\')',
      "DAEMON_OPTIONS(`Name=IPv6, Family=inet6, Modifiers=O')",
    ].join('\n'));
    assert.equal(mc.defines.get('SMART_HOST'), '[127.0.0.1]');
    assert.equal(mc.defines.get('RELAY_MAILER_ARGS'), 'TCP $h 2525');
    assert.equal(mc.defines.has('confLOG_LEVEL'), false);
    assert.deepEqual(mc.features.get('authinfo'), ['hash /etc/mail/auth/authinfo.db']);
    assert.deepEqual(mc.features.get('access_db'), ['hash -o -T<TMPF> /etc/mail/access']);
    const d = mc.calls.find((c) => c.name === 'DAEMON_OPTIONS')!;
    assert.equal(d.line, 11);
    assert.deepEqual([...daemonOptions(d.args[0]!)], [['name', 'IPv6'], ['family', 'inet6'], ['modifiers', 'O']]);
    assert.equal(daemonOptions('Port=587, Name=MSA, M=Ea').get('modifiers'), 'Ea');
  });
});

describe('AuthInfo', () => {
  const text = [
    'AuthInfo:smtp.att.yahoo.com "U:myname@sbcglobal.net" "I:myname@sbcglobal.net" "P:s3cret" "M:LOGIN PLAIN"',
    'AuthInfo:127.0.0.2 "U:byaddress" "P=' + Buffer.from('b64 pass').toString('base64') + '"',
    'AuthInfo: "U:default" "P:dpass" "M:PLAIN"',
    'Connect:10.0.0 RELAY',
  ].join('\n');
  const entries = parseAuthInfo(text);

  it('parses U/I/P/M fields, base64 P=, and the line without a host', () => {
    assert.deepEqual(entries.map((e) => e.host), ['smtp.att.yahoo.com', '127.0.0.2', '']);
    assert.equal(entries[0]!.fields.get('M'), 'LOGIN PLAIN');
    assert.equal(entries[1]!.fields.get('P'), 'b64 pass');
    assert.equal(entries[2]!.line, 3);
  });

  it('looks up by server name, then address, then the line without a host', () => {
    assert.equal(authInfoFor(entries, ['SMTP.ATT.yahoo.com'])?.fields.get('U'), 'myname@sbcglobal.net');
    assert.equal(authInfoFor(entries, ['relay.example', '127.0.0.2'])?.fields.get('U'), 'byaddress');
    assert.equal(authInfoFor(entries, ['127.0.0.1'])?.fields.get('U'), 'default');
    assert.equal(authInfoFor(entries.slice(0, 2), ['127.0.0.1']), undefined);
  });
});
