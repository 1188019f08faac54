// A listener's onAuth: the failure throttles first (limits.auth_failures per client
// address, limits.auth_failures_per_account per account), then the password check
// (auth/users-file.ts), a failure counted before its 535 goes out.
import type { SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerOptions } from 'smtp-server';
import { formatDuration, type Rate } from '../config/units.js';
import { replies } from '../mail/replies.js';
import type { Reply } from '../mail/reply.js';
import type { Peer } from '../maillog/maillog.js';
import { replyError, type ListenerScope, type SessionMeta } from './listener-scope.js';
import { isTrusted } from './relay-policy.js';
import type { SmtpdDeps } from './smtpd-deps.js';

type AuthDone = (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void;

export function authHooks(scope: ListenerScope): Pick<SMTPServerOptions, 'onAuth'> {
  const { deps } = scope;
  return {
    onAuth(auth, session, cb) {
      const m = scope.sessions.meta(session);
      const ip = session.remoteAddress;
      // limits.auth_failures_exempt: never counted, never blocked (monitoring, a NAT of known users)
      const counted = !isTrusted(ip, deps.limits.authFailuresExempt);
      const username = auth.username ?? '';
      // counts kept by a shared store may be out of reach: then AUTH is refused for now (454), never let through unchecked
      (counted ? throttled(deps, m.peer, ip, username) : Promise.resolve(undefined)).then((refusal) => {
        if (refusal) return cb(replyError(refusal));
        authenticate(deps, auth, m, { ip, username, counted }, cb);
      }, () => cb(replyError(replies.authTemporaryFailure())));
    },
  };
}

interface Attempt { readonly ip: string; readonly username: string; /** not exempt from the throttles */ readonly counted: boolean }

/** After the throttles let the client try: the password check, and a failure counted before the 535 goes out. */
function authenticate(deps: SmtpdDeps, auth: SMTPServerAuthentication, m: SessionMeta, attempt: Attempt, cb: AuthDone): void {
  const { log } = deps;
  const { ip, username, counted } = attempt;
  // RFC 4616: "act as someone else" needs a policy we do not have; Postfix/Cyrus refuse it too
  const actAs = auth.method === 'PLAIN' && auth.authzid && auth.authcid && auth.authzid !== auth.authcid ? auth.authzid : undefined;
  if (actAs !== undefined && !deps.auth?.allowAuthzid) {
    log.authFailed(m.peer, auth.method, username, `authorization identity "${actAs}" differs from the user ([auth] allow_authzid)`);
    return cb(replyError(replies.authFailed()));
  }
  deps.users.check(username, auth.password ?? '').then((good) => {
    if (!good) {
      deps.observe?.authFailed();
      log.authFailed(m.peer, auth.method, username, 'authentication failure');
      // a count the store could not take is lost, not the reply: the next check asks the store again
      const counting = counted ? countFailure(deps, m.peer, ip, username).catch(() => undefined) : Promise.resolve();
      return void counting.then(() => cb(replyError(replies.authFailed())));
    }
    void Promise.resolve(deps.accounts?.succeeded(username, ip)).catch(() => undefined);
    m.authMethod = auth.method;
    cb(null, { user: username });
  }, (e: Error) => {
    log.warning(`cannot read users file: ${e.message}`, 'smtpd');
    cb(replyError(replies.authTemporaryFailure()));
  });
}

const rateText = (r: Rate) => ({ count: r.count, window: formatDuration(r.windowMs) });

/** limits.auth_failures (421, per address), then limits.auth_failures_per_account (454, unknown addresses): the refusal, logged. */
async function throttled(deps: SmtpdDeps, peer: Peer, ip: string, username: string): Promise<Reply | undefined> {
  const waitMs = await deps.throttle.retryAfterMs(ip);
  if (waitMs > 0) {
    deps.log.authBlocked(peer, waitMs, rateText(deps.throttle.rate), false);
    return replies.authThrottled(waitMs);
  }
  const accountMs = (await deps.accounts?.retryAfterMs(username, ip)) ?? 0;
  if (accountMs === 0) return undefined;
  deps.log.accountBlocked(peer, username, accountMs, rateText(deps.accounts!.rate), false);
  // no reason given: the client, maybe a guesser, learns nothing about the account
  return replies.authTemporaryFailure();
}

async function countFailure(deps: SmtpdDeps, peer: Peer, ip: string, username: string): Promise<void> {
  // the address and the account are counted apart (on a shared store, each a round trip): at once
  const account = async () => {
    const before = (await deps.accounts?.blockedForMs(username)) ?? 0;
    return { before, after: (await deps.accounts?.fail(username)) ?? 0 };
  };
  const [blockedMs, { before, after }] = await Promise.all([deps.throttle.fail(ip), account()]);
  if (blockedMs > 0) deps.log.authBlocked(peer, blockedMs, rateText(deps.throttle.rate), true);
  if (after > 0 && before === 0) deps.log.accountBlocked(peer, username, after, rateText(deps.accounts!.rate), true);
}
