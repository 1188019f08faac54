// A preset's reading of its provider's replies (config/presets.ts): Google and Microsoft
// answer 4.7.x when a sender goes too fast, at any stage of the dialogue, and document some
// 5xx replies as limits that pass (Microsoft's daily SubmissionQuotaExceeded, Google's "Daily
// SMTP relay limit exceeded"). Those are deferred instead of bounced, and both slow the route down.
import { replyMatches, type ReplyRule } from '../config/presets.js';
import { limitThatPasses } from './classify.js';
import { dsnOf, outcomeOf, replyLine } from './failure.js';
import type { SmtpResult } from './session.js';

export interface ProviderRules { readonly throttle: readonly ReplyRule[]; readonly temporary: readonly ReplyRule[] }

/** The results with documented temporary 5xx replies deferred; `throttled` when any reply asked to slow down. */
export function providerReading(results: readonly SmtpResult[], rules: ProviderRules): { results: SmtpResult[]; throttled: boolean } {
  let throttled = false;
  const out = results.map((r) => {
    const reply = r.outcome === 'sent' || !r.failure?.reply ? undefined : replyLine(r.failure.reply);
    if (reply === undefined) return r;
    if (r.outcome === 'deferred' && replyMatches(reply, rules.throttle)) throttled = true;
    if (r.outcome !== 'bounced' || !replyMatches(reply, rules.temporary)) return r;
    throttled = true;
    const failure = limitThatPasses(r.failure!);
    return { ...r, outcome: outcomeOf(failure), dsn: dsnOf(failure), failure };
  });
  return { results: out, throttled };
}
