// One SMTP session with an upstream: connect, (START)TLS per the policy, AUTH,
// then any number of transactions, each returning one result per recipient.
// Built on nodemailer's SMTPConnection; the only thing it cannot do for us is
// a different NOTIFY/ORCPT per recipient (RFC 3461 §4), see nodemailer-seam.ts.
import { TLSSocket } from 'node:tls';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { OutgoingMessage, RcptResult } from '../mail/delivery.js';
import { connectFailure, loginFailure, noGreeting, replied, sendFailure, sentDsn, smtputf8Missing, tlsOnPlainPort, tokenFailure, type Where } from './classify.js';
import { dsnOf, fallsBackToPlaintext, outcomeOf, replyLine, triesNextPeer, type Failure } from './failure.js';
import { connectionOptions, peerLabel, type Credentials, type Peer, type Policy } from './upstream-policy.js';
import type { PortSense } from './port-sense.js';
import { explainReply, type LoginFacts } from './reply-advice.js';
import { authMechanismsAdvice, authPlaintextAdvice, authRejectedAdvice, starttlsMissingAdvice, tlsReason } from './wording.js';
import { explainMicrosoftReply, oauthContext, tokenClaims, type ReplyContext } from '../oauth/microsoft-replies.js';
import { oauthLogin, type OAuthMechanism } from '../oauth/smtp-login.js';
import type { AccessTokens } from '../oauth/token-source.js';
import { SeamConnection as RelayConnection } from './nodemailer-seam.js';
import { foldLongLines } from '../mail/line-fold.js';
import { describeShape, shapeFix } from './password-file.js';

/** Connection setup failed: every recipient of the attempt gets `failure`. */
export class SetupFailure extends Error {
  constructor(readonly failure: Failure, readonly relay: string) { super(failure.text); }
  /** Another address or URL may do better (not after a login failure). */
  get nextPeer(): boolean { return triesNextPeer(this.failure); }
}

/** A recipient's result with the failure behind it, for the transport's decisions (slow down, provider rules). */
export type SmtpResult = RcptResult & { readonly failure?: Failure };

/** Where a failure happened, and the settings its fix names. */
function whereOf(peer: Peer, policy: Policy): Where {
  const { mx } = policy;
  return { label: `${peer.host}[${peer.ip}]`, host: peer.host, port: peer.port, timeoutMs: policy.timeoutMs, tls: policy.tls,
    portKnob: mx ? '[mx] port' : 'url', timeoutKnob: mx ? '[mx] timeout' : `timeout in ${policy.label}` };
}

/** RFC 3461 xtext for ENVID and ORCPT values. */
export function xtext(s: string): string {
  return Buffer.from(s, 'utf8').reduce((out, b) => out + (b < 33 || b > 126 || b === 43 || b === 61 ? `+${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b)), '');
}

export class UpstreamSession {
  private broken = false;
  /** The last send() lost the connection before the message data went out (a stale cached connection). */
  lostBeforeData = false;
  /** Which credentials this session used, for replies that want a login. Never the password. */
  private login: LoginFacts;
  /** How this session logged in, to explain Microsoft 365's refusals of the mail (SendAsDenied …). */
  private loggedIn: Omit<ReplyContext, 'sender'> | undefined;
  private constructor(private readonly conn: RelayConnection, readonly peer: Peer, readonly relay: string, policy: Policy) {
    this.login = { section: policy.label, authenticated: false, authOffered: conn.allowsAuth, note: 'smarthost did not log in: no username is configured for this upstream' };
    conn.on('error', () => { this.broken = true; });
    conn.on('end', () => { this.broken = true; });
  }

  get usable(): boolean { return !this.broken && !this.conn.destroyed; }
  get secure(): boolean { return this.conn.secure; }
  /**
   * What verified TLS (chain and the peer's host name, TLS 1.2 or later) would have found wrong with
   * this session, or undefined when it passes: for MTA-STS testing mode, whose sessions are opened
   * at [mx] tls, where Node records the verification result without acting on it.
   */
  verifiedTls(): string | undefined {
    const socket = this.conn.socket;
    if (!this.conn.secure || !(socket instanceof TLSSocket)) return 'did not start TLS';
    if (!socket.authorized) return `has a certificate that does not verify (${socket.authorizationError})`;
    const version = socket.getProtocol();
    if (version === 'TLSv1' || version === 'TLSv1.1') return `negotiated ${version}, older than TLS 1.2`;
    return undefined;
  }
  get offersDsn(): boolean { return this.conn.offers('DSN'); }
  get offersSmtputf8(): boolean { return this.conn.offers('SMTPUTF8'); }

  /**
   * Connects, starts TLS as the policy demands, logs in. Throws SetupFailure with the reason.
   * `mailbox`: with auth = "oauth2", the mailbox to log in as (policy.oauth.mailbox of the message's sender).
   */
  static async open(peer: Peer, policy: Policy, ehloName: string, mailbox: string | undefined, sense: PortSense): Promise<UpstreamSession> {
    const relay = peerLabel(peer);
    let conn: RelayConnection;
    try {
      conn = await connect(connectionOptions(peer, policy, ehloName));
    } catch (e) {
      const f = connectFailure(e, whereOf(peer, policy));
      if (!fallsBackToPlaintext(f, policy.tls)) throw new SetupFailure(await portMismatch(e, f, peer, policy, sense), relay);
      try { conn = await connect(connectionOptions(peer, policy, ehloName, { plaintextRetry: true })); } catch (e2) {
        throw new SetupFailure(await portMismatch(e2, connectFailure(e2, whereOf(peer, policy)), peer, policy, sense), relay);
      }
    }
    const session = new UpstreamSession(conn, peer, relay, policy);
    try {
      await session.logIn(policy, whereOf(peer, policy), mailbox);
    } catch (e) {
      conn.close();
      throw e;
    }
    return session;
  }

  private async logIn(policy: Policy, w: Where, mailbox: string | undefined): Promise<void> {
    if (policy.oauth) return this.loginOAuth(policy, policy.oauth.tokens(), mailbox ?? policy.oauth.mailbox(''), w);
    if (!policy.credentials) return;
    let creds: Credentials;
    try { creds = policy.credentials(); } catch (e) {
      throw new SetupFailure(loginFailure('unreadable', `cannot log in to ${w.label} for ${policy.label}: ${(e as Error).message}`), this.relay);
    }
    const method = this.mechanism(policy, w, creds.username);
    if (!method) return;
    await new Promise<void>((resolve, reject) => {
      this.conn.login({ user: creds.username, pass: creds.password, method }, (err) => {
        if (!err) {
          this.login = { ...this.login, username: creds.username, authenticated: true, note: `smarthost logged in as "${creds.username}" with the password from ${creds.source}` };
          this.loggedIn = { login: 'password', mailbox: creds.username, route: policy.label };
          return resolve();
        }
        const said = err.response ? `server ${w.label} said: ${err.response.split(/\r?\n/).join(' ')}` : err.message;
        // the classic migration mistake, named in the log line rather than left to a bare 535
        const ms = err.response ? explainMicrosoftReply(err.response, { login: 'password', mailbox: creds.username, route: policy.label }) : undefined;
        const base = authRejectedAdvice({ username: creds.username, source: creds.source, mechanism: method });
        const advice = creds.postfix ? { diagnosis: `${base.diagnosis}; ${describeShape(creds.postfix.file, creds.postfix.shape)}`, fix: shapeFix(creds.postfix.file) }
          : ms ? { diagnosis: `${base.diagnosis}; ${ms.meaning}`, fix: ms.fix } : base;
        reject(new SetupFailure(loginFailure('refused', `SASL ${method} authentication failed; ${said}`, advice, err.response), this.relay));
      });
    });
  }

  /**
   * The SASL mechanism to log in with, or undefined when the server offers no AUTH (then we send
   * without, as Postfix does). Throws SetupFailure before any credential could cross plaintext.
   */
  private mechanism(policy: Policy, w: Where, username: string): string | undefined {
    this.login = { ...this.login, username };
    if (!this.conn.secure && !policy.allowPlaintextAuth) {
      const advice = policy.tls === 'none' ? authPlaintextAdvice({ tls: 'none', username }) : starttlsMissingAdvice({ host: w.host, tls: policy.tls, username });
      throw new SetupFailure(loginFailure('not-encrypted', `AUTH not attempted for ${w.label}`, advice), this.relay);
    }
    if (!this.conn.allowsAuth) { // nothing to log in to (Postfix sends without AUTH too); a later "login required" reply says so
      this.login = { ...this.login, authOffered: false, note: `smarthost did not log in as "${username}": ${w.label} did not offer AUTH` };
      return undefined;
    }
    const offered = this.conn.authMechanisms;
    const method = policy.mechanisms.find((m) => offered.includes(m));
    if (method) return method;
    throw new SetupFailure(loginFailure('no-mechanism', `no common SASL mechanism with ${w.label}`, authMechanismsAdvice({ offered, configured: policy.mechanisms })), this.relay);
  }

  /** auth = "oauth2": an access token instead of a password; a refused token is refreshed once per connection. */
  private async loginOAuth(policy: Policy, tokens: AccessTokens, mailbox: string, w: Where): Promise<void> {
    const method = this.mechanism(policy, w, mailbox) as OAuthMechanism | undefined;
    if (!method) return;
    const o = tokens.config;
    const r = await oauthLogin(this.conn, tokens, mailbox, method, this.peer);
    const from = `${o.grant === 'client_credentials' ? 'app-only ' : ''}OAuth2 access token from ${o.tokenUrl}`;
    const context = oauthContext(o, mailbox);
    if (r.ok) { this.login = { ...this.login, authenticated: true, note: `smarthost logged in as "${mailbox}" with an ${from}` }; this.loggedIn = context; return; }
    if (r.token) throw new SetupFailure(tokenFailure(r.token), this.relay);
    const said = r.response ? `server ${w.label} said: ${r.response.split(/\r?\n/).join(' ')}` : r.message;
    const tried = `tried username "${mailbox}" with ${r.refreshed ? `a freshly ${context.login === 'app' ? 'issued' : 'refreshed'}` : 'an'} ${from}`;
    const claims = tokenClaims(r.tried);
    const ms = r.response ? explainMicrosoftReply(r.response, { ...context, ...(claims ? { claims } : {}) }) : undefined;
    const todo = ms ? `${ms.meaning}; ${ms.fix}` : 'check that the mailbox may use SMTP AUTH and that the sign-in\'s scope covers SMTP';
    throw new SetupFailure(loginFailure('refused', `SASL ${method} authentication failed; ${said} (${tried}); ${todo}`, undefined, r.response), this.relay);
  }

  /** One transaction; never throws: every recipient gets a result. */
  async send(msg: OutgoingMessage): Promise<SmtpResult[]> {
    const started = Date.now();
    const label = `${this.peer.host}[${this.peer.ip}]`;
    const addrs = msg.recipients.map((r) => r.address);
    // A UTF-8 address needs SMTPUTF8 (RFC 6531 §3.4), which nodemailer adds when the server offers it;
    // without, it would send the raw bytes anyway. Postfix bounces (smtp_proto.c), and so do we.
    if (!this.offersSmtputf8 && [msg.sender, ...addrs].some((a) => /[^\x00-\x7f]/.test(a))) {
      const failure = smtputf8Missing(label);
      return addrs.map((rcpt) => ({ rcpt, outcome: outcomeOf(failure), dsn: dsnOf(failure), failure, relay: this.relay, connectMs: 0, transmitMs: 0 }));
    }
    this.conn.rcptParams.clear();
    for (const r of msg.recipients) {
      const args = [r.notify?.length ? `NOTIFY=${r.notify.join(',')}` : '', r.orcpt ? `ORCPT=${orcptArg(r.orcpt)}` : ''].filter(Boolean).join(' ');
      if (args) this.conn.rcptParams.set(r.address, ' ' + args);
    }
    const body = foldLongLines(msg.body()); // lines > 998 octets broken with CRLF SPACE (line-fold.ts)
    this.lostBeforeData = false;
    let bodyDone = false;
    body.once('end', () => { bodyDone = true; });
    const envelope = {
      from: msg.sender === '' ? false as const : msg.sender, to: addrs, size: msg.size, use8BitMime: msg.eightBit,
      ...(msg.ret || msg.envid ? { dsn: { ...(msg.ret ? { ret: msg.ret } : {}), ...(msg.envid ? { envid: msg.envid } : {}) } } : {}),
    };
    const dsnPassed = this.offersDsn;
    return new Promise<SmtpResult[]>((resolve) => {
      this.conn.send(envelope, body, (err, info) => {
        const transmitMs = Date.now() - started;
        const failed = (rcpt: string, f: Failure): SmtpResult => {
          const failure = this.explained(f, msg.sender);
          return { rcpt, outcome: outcomeOf(failure), dsn: dsnOf(failure), failure, relay: this.relay, connectMs: 0, transmitMs };
        };
        if (err) {
          body.destroy();
          const e = err as { rejectedErrors?: Array<{ recipient?: string; response?: string }> };
          const perRcpt = new Map((e.rejectedErrors ?? []).map((r) => [r.recipient ?? '', r.response ?? ''] as const));
          const whole = sendFailure(err, label, bodyDone);
          this.lostBeforeData = !bodyDone && !this.usable && !(err as { response?: string }).response;
          resolve(addrs.map((rcpt) => failed(rcpt, perRcpt.has(rcpt) ? replied(perRcpt.get(rcpt)!, label, 'RCPT TO') : whole)));
          return;
        }
        const rejected = new Map((info.rejectedErrors ?? []).map((r) => [(r as { recipient?: string }).recipient ?? '', r.response ?? ''] as const));
        const ok = sentDsn(info.response, label);
        resolve(addrs.map((rcpt) => rejected.has(rcpt) ? failed(rcpt, replied(rejected.get(rcpt)!, label, 'RCPT TO'))
          : { rcpt, outcome: 'sent', dsn: ok, relay: this.relay, connectMs: 0, transmitMs, dsnPassed }));
      });
    });
  }

  /**
   * A refusal gets its cause and fix (a login wanted, the sender refused, the message refused) as probe words it;
   * one Microsoft 365 is known for (554 5.2.252 SendAsDenied …) gets its meaning and fix.
   */
  private explained(f: Failure, sender: string): Failure {
    const ms = f.reply && this.loggedIn ? explainMicrosoftReply(replyLine(f.reply), { ...this.loggedIn, sender }) : undefined;
    if (ms) return { ...f, text: `${f.text}; ${ms.meaning}`, fix: ms.fix };
    return explainReply(f, this.login, sender);
  }

  /** RSET before the next transaction; false means the session is no longer usable. */
  reset(): Promise<boolean> {
    if (!this.usable) return Promise.resolve(false);
    return new Promise((resolve) => this.conn.reset((err) => resolve(!err)));
  }

  close(): void {
    this.broken = true;
    try { this.conn.quit(); } catch { /* already gone */ }
    setTimeout(() => this.conn.close(), 1000).unref();
  }
}

/** ORCPT as given by our client is "rfc822;addr"; its value part is sent as xtext. */
function orcptArg(orcpt: string): string {
  const i = orcpt.indexOf(';');
  return i < 0 ? `rfc822;${xtext(orcpt)}` : `${orcpt.slice(0, i)};${xtext(orcpt.slice(i + 1))}`;
}

function connect(options: ConstructorParameters<typeof SMTPConnection>[0]): Promise<RelayConnection> {
  return new Promise((resolve, reject) => {
    const conn = new RelayConnection(options);
    let done = false;
    // `greeted`: whether any reply came, for a timeout that nodemailer reports alike before and after the greeting
    const fail = (e: Error) => { done = true; conn.close(); reject(Object.assign(e, { greeted: conn.lastServerResponse !== false })); };
    conn.once('error', (e) => { if (!done) fail(e); });
    conn.connect((err) => {
      if (done) return;
      if (err) fail(err); else { done = true; resolve(conn); }
    });
  });
}

/**
 * smtp:// to an smtps:// port (no greeting) or smtps:// to a STARTTLS port (no TLS record): asked on a
 * new connection the way probe asks (port-sense.ts), once per address and port, so the log says which URL to use.
 */
async function portMismatch(e: unknown, f: Failure, peer: Peer, policy: Policy, sense: PortSense): Promise<Failure> {
  if (policy.mx) return f; // an MX host is always smtp:// on [mx] port
  const w = whereOf(peer, policy);
  const err = e as Error & { code?: string };
  if (f.stage === 'greeting' && err.code === 'ETIMEDOUT' && !policy.implicitTls) return noGreeting(w, await sense.speaksTls(peer, policy.timeoutMs));
  if (f.stage === 'tls' && policy.implicitTls && /wrong version number|packet length too long|unknown protocol|http request/i.test(tlsReason(err.message ?? ''))) {
    const greeting = await sense.plainGreeting(peer, policy.timeoutMs);
    if (greeting) return tlsOnPlainPort(w, greeting);
  }
  return f;
}
