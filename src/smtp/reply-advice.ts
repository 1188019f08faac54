// An upstream's refusal of the mail, explained as probe explains it: a login wanted (and how
// smarthost logged in, or why not), the sender refused as a return address, the message refused
// after DATA. The credentials are named only where they can be the cause, never appended to a
// content rejection. Pure.
import { credentialsMayBeCause, replyLine, type Failure } from './failure.js';
import { BAD_SENDER, dataRefusedAdvice, loginWantedAdvice, senderRefusedAdvice, type Advice } from './wording.js';

/** How the session logged in: for replies that want a login. */
export interface LoginFacts {
  /** "[relay]", "route corp": where username goes. */
  readonly section: string;
  readonly username?: string;
  readonly authenticated: boolean;
  /** The server's EHLO offered AUTH. */
  readonly authOffered: boolean;
  /** 'smarthost logged in as "alice" with the password from password_file /x', never the password. */
  readonly note: string;
}

const add = (f: Failure, a: Advice): Failure => ({ ...f, text: `${f.text}; ${a.diagnosis}`, fix: a.fix });

export function explainReply(f: Failure, login: LoginFacts, sender: string): Failure {
  if (!f.reply) return f;
  const line = replyLine(f.reply);
  if (credentialsMayBeCause(f)) return add(f, loginWantedAdvice(login));
  if (f.stage === 'rcpt' && /relay/i.test(line)) return { ...f, text: `${f.text}; ${login.note}` };
  if (f.stage === 'mail' && f.reply.code >= 500 && BAD_SENDER.test(line)) return add(f, senderRefusedAdvice({ sender, original: sender }));
  if (f.stage === 'data') return add(f, dataRefusedAdvice(line));
  return f;
}
