import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, replyMatches } from '../config/presets.js';
import { replied } from './classify.js';
import { dsnOf, outcomeOf } from './failure.js';
import { providerReading } from './provider-replies.js';
import type { SmtpResult } from './session.js';

const at = (reply: string, command = 'end of DATA'): SmtpResult => {
  const failure = replied(reply, 'smtp.example[192.0.2.1]', command);
  return { rcpt: 'bob@example.net', relay: 'smtp.example[192.0.2.1]:587', connectMs: 0, transmitMs: 0, outcome: outcomeOf(failure), dsn: dsnOf(failure), failure };
};
const rules = (name: string) => ({ throttle: PRESETS[name]!.throttle, temporary: PRESETS[name]!.temporary });

describe('replyMatches (the rules of presets.ts)', () => {
  const cases: Array<[string, string, 'throttle' | 'temporary', boolean]> = [
    ['gmail', '421 4.7.28 Gmail has detected an unusual rate of unsolicited mail', 'throttle', true],
    ['gmail', '451 4.7.0 Temporary System Problem. Try again later', 'throttle', true],
    ['gmail', '451 4.3.0 Mail server temporarily rejected message', 'throttle', false],
    ['gmail', '550 5.4.5 Daily user sending limit exceeded', 'temporary', true],
    ['google-relay', '550 5.7.1 Daily SMTP relay limit exceeded for customer', 'temporary', true],
    ['google-relay', '550 5.7.1 Relaying denied', 'temporary', false],
    ['microsoft365', '432 4.3.2 Concurrent connections limit exceeded', 'throttle', true],
    ['microsoft365', '451 4.7.500 Server busy. Please try again later', 'throttle', true],
    ['microsoft365', '554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message', 'temporary', true],
    ['microsoft365', '550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP', 'temporary', false],
    ['sendgrid', '451 4.7.0 Try again later', 'throttle', false],
  ];
  for (const [preset, reply, kind, want] of cases) {
    it(`${preset} ${kind}: ${want ? 'matches' : 'not'} ${reply}`, () => assert.equal(replyMatches(reply, PRESETS[preset]![kind]), want));
  }
});

describe('providerReading', () => {
  it('defers a documented quota reply instead of bouncing it, and slows down', () => {
    const { results, throttled } = providerReading([at('554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException')], rules('microsoft365'));
    assert.equal(results[0]!.outcome, 'deferred');
    assert.equal(results[0]!.dsn.status, '4.2.0');
    assert.match(results[0]!.dsn.reason, /SubmissionQuotaExceeded.*deferred, not bounced/);
    assert.equal(throttled, true);
  });

  it('4.7.x at DATA from Gmail slows down; a real 5.7.1 refusal still bounces', () => {
    assert.equal(providerReading([at('451 4.7.28 unusual rate of unsolicited mail')], rules('gmail')).throttled, true);
    const refused = providerReading([at('550 5.7.1 Relaying denied', 'RCPT TO')], rules('google-relay'));
    assert.equal(refused.results[0]!.outcome, 'bounced');
    assert.equal(refused.throttled, false);
  });

  it('without a preset nothing changes', () => {
    const r = at('554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException');
    assert.deepEqual(providerReading([r], { throttle: [], temporary: [] }), { results: [r], throttled: false });
  });
});
