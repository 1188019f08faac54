import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OAuthError } from '../oauth/token-source.js';
import { connectFailure, lookupFailure, loginFailure, noGreeting, replied, sendFailure, tlsOnPlainPort, tokenFailure, type Where } from './classify.js';
import { parseReply, reasonOf, replyLine } from './failure.js';

const H = 'mx.example.net[192.0.2.1]';
const W: Where = { label: H, host: 'mx.example.net', port: 25, timeoutMs: 10_000, tls: 'verify', portKnob: 'url', timeoutKnob: 'timeout in [relay]' };
const err = (message: string, props: Record<string, unknown> = {}) => Object.assign(new Error(message), props);

test('parseReply: the enhanced code, or none; the basic class wins over a contradicting enhanced one', () => {
  for (const [reply, code, enhanced] of [
    ['250 2.0.0 Ok', 250, '2.0.0'], ['550 5.1.1 <x>: unknown', 550, '5.1.1'], ['451 4.7.1 greylisted', 451, '4.7.1'],
    ['550 unknown user', 550, undefined], ['550 4.1.1 odd', 550, '5.1.1'], ['452 5.2.2 odd', 452, '4.2.2'],
  ] as const) {
    const r = parseReply(reply)!;
    assert.equal(r.code, code, reply);
    assert.equal(r.enhanced, enhanced, reply);
  }
  assert.equal(parseReply('garbage'), undefined);
});

test('a multi-line reply keeps every line, as Postfix logs it', () => {
  const r = parseReply('550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third')!;
  assert.equal(replyLine(r), '550-5.7.1 first 550-5.7.1 second 550 5.7.1 third');
});

test('replied: Postfix wording, the stage of the command, permanent only for 5xx', () => {
  const f = replied('550 5.1.1 <b@x>: User unknown', H, 'RCPT TO');
  assert.deepEqual([f.stage, f.status, f.temporary, f.kind], ['rcpt', '5.1.1', false, 'protocol']);
  assert.equal(f.text, `host ${H} said: 550 5.1.1 <b@x>: User unknown (in reply to RCPT TO command)`);
  assert.equal(f.remoteMta, 'mx.example.net');
  assert.equal(replied('451 4.3.0 later', H, 'MAIL FROM').temporary, true);
  assert.deepEqual([replied('553 5.7.1 sender', H, 'MAIL FROM').stage, replied('553 5.7.1 sender', H, 'MAIL FROM').kind], ['mail', 'policy']);
  assert.equal(replied('554 5.7.1 spam', H, 'end of DATA').stage, 'data');
});

test('connection failures are temporary, never bounced, with stage, kind, cause and fix', () => {
  const table: Array<[Error, RegExp, string, string, RegExp | undefined]> = [
    [err('connect ECONNREFUSED', { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }), /^connect to mx\.example\.net\[192\.0\.2\.1\]:25: Connection refused; nothing listens on port 25 there$/, '4.4.1', 'connect', /check the port in url/],
    [err('Greeting never received', { code: 'ETIMEDOUT' }), /timed out while receiving the initial server greeting; .*sent no greeting within 10s$/, '4.4.2', 'greeting', /timeout in \[relay\]/],
    [err('Timeout', { code: 'ETIMEDOUT', command: 'CONN', timeoutType: 'SOCKET_TIMEOUT', greeted: false }), /timed out while receiving the initial server greeting/, '4.4.2', 'greeting', /overloaded/],
    [err('Timeout', { code: 'ETIMEDOUT', command: 'EHLO', timeoutType: 'SOCKET_TIMEOUT', greeted: true }), /timed out after EHLO/, '4.4.2', 'ehlo', undefined],
    [err('Connection timeout', { code: 'ETIMEDOUT', command: 'CONN' }), /^connect to .*:25: Connection timed out; .*block outgoing port 25/, '4.4.2', 'connect', /submission port/],
    [err('Error initiating TLS - certificate has expired', { code: 'ETLS' }), /^the certificate of .* has expired$/, '4.7.5', 'tls', /renew it/],
    [err('Error upgrading connection with STARTTLS', { code: 'ETLS', command: 'STARTTLS', response: '502 5.5.1 not implemented' }), /^TLS is required, but host .* did not start TLS: 502/, '4.7.4', 'starttls', /smtps:\/\//],
    [err('Connection closed unexpectedly', { code: 'ECONNECTION' }), /lost connection/, '4.4.2', 'greeting', undefined],
    [err('something new', { code: 'EWHATEVER' }), /something new/, '4.4.1', 'connect', undefined],
    [err('Invalid greeting', { code: 'EPROTOCOL', command: 'CONN', response: '554 5.7.1 go away' }), /refused to talk to me: 554 5\.7\.1 go away/, '4.4.1', 'greeting', /blocked or rate-limited/],
  ];
  for (const [e, text, status, stage, fix] of table) {
    const f = connectFailure(e, W);
    assert.equal(f.temporary, true, e.message);
    assert.equal(f.status, status, e.message);
    assert.equal(f.stage, stage, e.message);
    assert.match(f.text, text);
    if (fix) assert.match(f.fix ?? '', fix, e.message); else assert.equal(f.fix, undefined);
  }
});

test('OpenSSL text never sits inside the sentence: its reason only', () => {
  const f = connectFailure(err('Error initiating TLS - C0764B841A7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/ssl/record/ssl3_record.c:350:', { code: 'ETLS' }), W);
  assert.doesNotMatch(reasonOf(f), /SSL routines|error:0A/);
  assert.match(reasonOf(f), /does not speak TLS from the first byte/);
});

test('smtp:// to an smtps:// port, and smtps:// to a STARTTLS port, name the URL to use', () => {
  assert.match(reasonOf(noGreeting(W, true)), /this port expects TLS from the first byte; use smtps:\/\/mx\.example\.net:25$/);
  assert.match(reasonOf(noGreeting(W, false)), /\(it does not speak TLS on this port either\); check the port \(587 for STARTTLS, 465 for TLS\)/);
  assert.match(reasonOf(tlsOnPlainPort(W, '220 mx ESMTP')), /speaks plain SMTP \(it greeted in plaintext with "220 mx ESMTP"\); use smtp:\/\/mx\.example\.net:25 /);
});

test('failures after MAIL FROM: replies keep their class; a lost connection after the dot may mean a duplicate', () => {
  assert.equal(sendFailure(err('x', { code: 'EENVELOPE', command: 'MAIL FROM', response: '553 5.7.1 sender rejected' }), H, false).temporary, false);
  const lost = sendFailure(err('Connection closed', { code: 'ECONNECTION' }), H, true);
  assert.equal(lost.temporary, true);
  assert.match(lost.text, /while sending end of data -- message may be sent more than once/);
  assert.match(sendFailure(err('Connection closed', { code: 'ECONNECTION' }), H, false).text, /while sending the envelope/);
  assert.equal(sendFailure(err('Message size larger than allowed 1000', { code: 'EMESSAGE' }), H, false).status, '5.3.4');
});

test('logins and lookups: their enhanced codes are chosen here', () => {
  assert.deepEqual([loginFailure('refused', 'x').status, loginFailure('refused', 'x').kind, loginFailure('refused', 'x').stage], ['4.7.0', 'auth', 'auth']);
  assert.equal(loginFailure('unreadable', 'x').status, '4.3.5');
  assert.deepEqual([tokenFailure(new OAuthError('network', 'x')).status, tokenFailure(new OAuthError('network', 'x')).kind], ['4.4.1', 'network']);
  assert.equal(tokenFailure(new OAuthError('provider', 'x')).status, '4.3.0');
  assert.deepEqual([tokenFailure(new OAuthError('refused', 'x')).status, tokenFailure(new OAuthError('refused', 'x')).kind], ['4.7.0', 'auth']);
  for (const [problem, status, temporary] of [['nullMx', '5.1.10', false], ['notFound', '5.1.2', false], ['tempfail', '4.4.3', true], ['noHost', '4.4.4', true], ['noAddress', '4.4.3', true]] as const) {
    const f = lookupFailure(problem, 'x');
    assert.deepEqual([f.status, f.temporary], [status, temporary], problem);
  }
});
