import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyConnectError, classifySendError, explainTls, fromReply, oneLine, statusOf } from './classify.js';

const H = 'mx.example.net[192.0.2.1]';
const err = (message: string, props: Record<string, unknown> = {}) => Object.assign(new Error(message), props);

test('statusOf: the enhanced code, or one from the basic code; the basic class wins', () => {
  for (const [reply, status] of [
    ['250 2.0.0 Ok', '2.0.0'], ['550 5.1.1 <x>: unknown', '5.1.1'], ['451 4.7.1 greylisted', '4.7.1'],
    ['550 unknown user', '5.0.0'], ['421 closing', '4.0.0'], ['550 4.1.1 odd', '5.1.1'], ['452 5.2.2 odd', '4.2.2'], ['garbage', '4.0.0'],
  ] as const) assert.equal(statusOf(reply), status, reply);
});

test('oneLine joins multi-line replies like Postfix logs them', () => {
  assert.equal(oneLine('550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third'), '550-5.7.1 first second third');
});

test('fromReply: outcome by class, Postfix wording', () => {
  const c = fromReply('550 5.1.1 <b@x>: User unknown', H, 'RCPT TO');
  assert.equal(c.outcome, 'bounced');
  assert.equal(c.dsn.reason, `host ${H} said: 550 5.1.1 <b@x>: User unknown (in reply to RCPT TO command)`);
  assert.equal(c.dsn.remoteMta, 'mx.example.net');
  assert.equal(fromReply('451 4.3.0 later', H, 'MAIL FROM').outcome, 'deferred');
  assert.equal(fromReply('250 2.0.0 Ok', H, 'end of DATA').outcome, 'sent');
});

test('connection failures are deferred, never bounced, and say what failed', () => {
  const table: Array<[Error, RegExp, string]> = [
    [err('connect ECONNREFUSED', { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }), /^connect to mx\.example\.net\[192\.0\.2\.1\]:25: Connection refused$/, '4.4.1'],
    [err('Greeting never received', { code: 'ETIMEDOUT' }), /timed out while receiving the initial server greeting/, '4.4.2'],
    [err('Error initiating TLS - certificate has expired', { code: 'ETLS' }), /has expired/, '4.7.5'],
    [err('Error upgrading connection with STARTTLS', { code: 'ETLS', command: 'STARTTLS', response: '502 5.5.1 not implemented' }), /^TLS is required, but host .* did not start TLS: 502/, '4.7.4'],
    [err('Connection closed unexpectedly', { code: 'ECONNECTION' }), /lost connection/, '4.4.2'],
    [err('something new', { code: 'EWHATEVER' }), /something new/, '4.4.1'],
  ];
  for (const [e, reason, status] of table) {
    const c = classifyConnectError(e, H, 25);
    assert.equal(c.outcome, 'deferred', e.message);
    assert.equal(c.dsn.status, status, e.message);
    assert.match(c.dsn.reason, reason);
    assert.equal(c.nextPeer, true);
  }
  // a 5xx greeting defers (the next MX, or a later try, may take it); only replies to our mail commands bounce
  const greeting = classifyConnectError(err('Invalid greeting', { code: 'EPROTOCOL', command: 'CONN', response: '554 5.7.1 go away' }), H, 25);
  assert.equal(greeting.dsn.status, '4.4.1');
});

test('failures after MAIL FROM: replies keep their class; a lost connection after the dot may mean a duplicate', () => {
  assert.equal(classifySendError(err('x', { code: 'EENVELOPE', command: 'MAIL FROM', response: '553 5.7.1 sender rejected' }), H, false).outcome, 'bounced');
  const lost = classifySendError(err('Connection closed', { code: 'ECONNECTION' }), H, true);
  assert.equal(lost.outcome, 'deferred');
  assert.match(lost.dsn.reason, /while sending end of data -- message may be sent more than once/);
  assert.match(classifySendError(err('Connection closed', { code: 'ECONNECTION' }), H, false).dsn.reason, /while sending the envelope/);
  assert.equal(classifySendError(err('Message size larger than allowed 1000', { code: 'EMESSAGE' }), H, false).dsn.status, '5.3.4');
});

test('explainTls names the problem and the fix', () => {
  assert.match(explainTls('self-signed certificate', H), /is self-signed .* ca_file/);
  assert.match(explainTls('unable to get local issuer certificate', H), /not signed by a trusted CA/);
  assert.match(explainTls("Hostname/IP x does not match the certificate's names: DNS:a", H), /is for other names/);
});
