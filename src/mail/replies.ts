// The catalogue of every reply smarthost sends, in Postfix's wording and codes
// (Postfix smtpd.c and smtpd_check.c), so that existing habits and log
// greps keep working.
import { reply, type Reply } from './reply.js';

/** A wait as people say it, rounded up: "40 seconds", "9 minutes", "3 hours". */
export function waitText(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  const minutes = Math.ceil(seconds / 60);
  const hours = Math.ceil(minutes / 60);
  const [n, unit] = seconds < 60 ? [seconds, 'second'] : minutes < 120 ? [minutes, 'minute'] : [hours, 'hour'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

export const replies = {
  queued: (id: string): Reply => reply(250, '2.0.0', `Ok: queued as ${id}`),
  relayDenied: (rcpt: string): Reply => reply(554, '5.7.1', `<${rcpt}>: Relay access denied`),
  authRequired: (): Reply => reply(530, '5.7.0', 'Authentication required'),
  mustStartTls: (): Reply => reply(530, '5.7.0', 'Must issue a STARTTLS command first'),
  authFailed: (): Reply => reply(535, '5.7.8', 'Error: authentication failed'),
  /** `waitMs`: until the oldest counted failure leaves `limits.auth_failures`' window. */
  authThrottled: (waitMs: number): Reply =>
    reply(421, '4.7.0', `Error: too many failed authentication attempts, try again in ${waitText(waitMs)}`),
  /** Any SASL trouble that is not the client's password: the users file cannot be read, or the account is throttled. */
  authTemporaryFailure: (): Reply => reply(454, '4.7.0', 'Temporary authentication failure'),
  authNotEnabled: (): Reply => reply(503, '5.5.1', 'Error: authentication not enabled'),
  sizeExceeded: (): Reply => reply(552, '5.3.4', 'Message size exceeds fixed limit'),
  headerTooLarge: (): Reply => reply(552, '5.3.4', 'Message header size exceeds fixed limit'),
  tooManyRecipients: (): Reply => reply(452, '4.5.3', 'Error: too many recipients'),
  tooManyConnections: (): Reply => reply(421, '4.7.0', 'Error: too many connections'),
  tooManyConnectionsFrom: (ip: string): Reply =>
    reply(421, '4.7.0', `Error: too many connections from ${ip}`),
  tooManyErrors: (host: string): Reply => reply(421, '4.7.0', `${host} Error: too many errors`),
  /** limits.messages_per_session MAIL commands were given (Exim smtp_accept_max_per_connection). */
  tooManyMessages: (host: string): Reply => reply(421, '4.7.0', `${host} Error: too many messages in this session`),
  /** Postfix smtpd_forbid_bare_newline = reject, with its default smtpd_forbid_bare_newline_reject_code (550); then the session ends. */
  bareNewline: (host: string): Reply => reply(550, '5.5.2', `${host} Error: bare <LF> received`),
  /** Postfix reject_sender_login_mismatch: an authenticated user sending as an address it does not own. */
  senderNotOwned: (sender: string, user: string): Reply =>
    reply(553, '5.7.1', `<${sender}>: Sender address rejected: not owned by user ${user}`),
  timeout: (host: string): Reply => reply(421, '4.4.2', `${host} Error: timeout exceeded`),
  lineTooLong: (host: string): Reply => reply(421, '4.7.0', `${host} Error: command line too long`),
  shuttingDown: (host: string): Reply =>
    reply(421, '4.3.2', `${host} Service shutting down, closing transmission channel`),
  controlCharacters: (command: string): Reply =>
    reply(501, '5.5.2', `Syntax error: control characters are not allowed in ${command}`),
  commandNotRecognized: (): Reply => reply(502, '5.5.2', 'Error: command not recognized'),
  insufficientStorage: (): Reply => reply(452, '4.3.1', 'Insufficient system storage'),
  /** The queue could not take the message (its database is down or restarting): Postfix cleanup's answer when it cannot write. */
  queueWriteError: (): Reply => reply(451, '4.3.0', 'Error: queue file write error'),
  tooManyHops: (): Reply => reply(554, '5.4.6', 'Too many hops'),
  badSenderSyntax: (): Reply => reply(501, '5.1.7', 'Bad sender address syntax'),
  badRecipientSyntax: (): Reply => reply(501, '5.1.3', 'Bad recipient address syntax'),
  /** 8-bit bytes in a MAIL or RCPT address of a transaction without SMTPUTF8 (Postfix strict_smtputf8). */
  smtputf8Undeclared: (): Reply => reply(553, '5.6.7', 'Must declare SMTPUTF8 to send unicode address'),
  unknownLocalUser: (rcpt: string): Reply =>
    reply(550, '5.1.1', `<${rcpt}>: Recipient address rejected: User unknown in local recipient table`),
  lookupFailed: (rcpt: string): Reply =>
    reply(451, '4.3.0', `<${rcpt}>: Temporary lookup failure`),
  transactionAborted: (): Reply => reply(451, '4.3.0', 'Error: message transaction aborted'),
  /** Postfix smtpd's answer to an HTTP request or proxy CONNECT sent to the SMTP port, before it hangs up. */
  nonSmtpCommand: (): Reply => reply(221, '2.7.0', 'Error: I can break rules, too. Goodbye.'),
  /** Postfix postscreen's reply to a client that spoke before the greeting (postscreen_greet_action = drop). */
  protocolError: (): Reply => reply(521, '5.5.1', 'Protocol error'),
} as const;
