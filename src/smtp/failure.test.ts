// The decisions about an outbound failure, each a pure function of the Failure value.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replied } from './classify.js';
import { credentialsMayBeCause, dsnOf, fallsBackToPlaintext, marksDestinationDead, outcomeOf, slowsDown, triesNextPeer, type Failure } from './failure.js';

const H = 'smtp.example[192.0.2.1]';
const base: Failure = { stage: 'tls', kind: 'tls', status: '4.7.5', temporary: true, text: 'the certificate of x has expired', fix: 'renew it' };

test('retry or bounce: only a permanent failure bounces; the reason is text then fix', () => {
  assert.equal(outcomeOf(base), 'deferred');
  assert.equal(outcomeOf(replied('550 5.1.1 unknown', H, 'RCPT TO')), 'bounced');
  assert.deepEqual(dsnOf(base), { status: '4.7.5', reason: 'the certificate of x has expired; renew it' });
  assert.equal(dsnOf(replied('550-5.7.1 a\n550 5.7.1 b', H, 'end of DATA')).diagnostic, '550-5.7.1 a 550 5.7.1 b');
});

test('plaintext fallback: a TLS handshake failure at tls = "may" only', () => {
  assert.equal(fallsBackToPlaintext(base, 'may'), true);
  for (const level of ['none', 'encrypt', 'verify'] as const) assert.equal(fallsBackToPlaintext(base, level), false, level);
  assert.equal(fallsBackToPlaintext({ ...base, stage: 'starttls', status: '4.7.4' }, 'may'), false);
  assert.equal(fallsBackToPlaintext({ ...base, kind: 'network', stage: 'connect', status: '4.4.1' }, 'may'), false);
});

test('slow down: a throttle reply to the greeting, EHLO, AUTH or MAIL FROM; later stages only by the preset\'s rules', () => {
  assert.equal(slowsDown(replied('421 4.7.0 Too many connections', H, 'MAIL FROM')), true);
  assert.equal(slowsDown(replied('451 4.7.1 rate limit exceeded', H, 'RCPT TO')), false);
  assert.equal(slowsDown(replied('451 4.7.28 unusual rate', H, 'end of DATA'), [{ enhanced: '4.7.' }]), true);
  assert.equal(slowsDown(base), false);
});

test('dead destination: anything but a slow-down; next peer: anything but a login failure', () => {
  assert.equal(marksDestinationDead(base), true);
  assert.equal(marksDestinationDead(replied('421 4.7.0 Too many connections', H, 'EHLO')), false);
  assert.equal(triesNextPeer(base), true);
  assert.equal(triesNextPeer({ ...base, stage: 'auth', kind: 'auth', status: '4.7.0' }), false);
});

test('credentials are named only where they can be the cause', () => {
  assert.equal(credentialsMayBeCause(replied('530 5.7.0 Authentication required', H, 'MAIL FROM')), true);
  assert.equal(credentialsMayBeCause(replied('553 5.7.1 Sender address rejected: not owned by user', H, 'MAIL FROM')), false);
  assert.equal(credentialsMayBeCause(replied('554 5.7.1 spam', H, 'end of DATA')), false);
  assert.equal(credentialsMayBeCause({ ...base, stage: 'auth', kind: 'auth', status: '4.7.0' }), true);
});
