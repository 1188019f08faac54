// One SMTP session with an upstream: connect, (START)TLS per the policy, AUTH,
// then any number of transactions, each returning one result per recipient.
// Built on nodemailer's SMTPConnection; the only thing it cannot do for us is
// a different NOTIFY/ORCPT per recipient (RFC 3461 §4), see nodemailer-seam.ts.
import { TLSSocket } from 'node:tls';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { OutgoingMessage, RcptResult } from '../mail/delivery.js';
import { classifyConnectError, classifySendError, deferred, fromReply, oneLine, type Classified } from './classify.js';
import { connectionOptions, peerLabel, type Credentials, type Peer, type Policy } from './policy.js';
import { explainMicrosoftReply, oauthContext, tokenClaims, type ReplyContext } from '../oauth/microsoft-replies.js';
import { oauthLogin, type OAuthMechanism } from '../oauth/smtp-login.js';
import type { AccessTokens } from '../oauth/token-source.js';
import { replyOf } from './slow-down.js';
import { SeamConnection as RelayConnection } from './nodemailer-seam.js';
import { foldLongLines } from '../cleanup/line-fold.js';
import { describeShape, shapeFix } from './password-file.js';

/** Connection setup failed: every recipient of the attempt gets `result`. */
export class SetupFailure extends Error {
  constructor(readonly result: Classified, readonly relay: string, readonly nextPeer: boolean) { super(result.dsn.reason); }
}

/** RFC 3461 xtext for ENVID and ORCPT values. */
export function xtext(s: string): string {
  return Buffer.from(s, 'utf8').reduce((out, b) => out + (b < 33 || b > 126 || b === 43 || b === 61 ? `+${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b)), '');
}

export class UpstreamSession {
  private broken = false;
  /** The last send() lost the connection before the message data went out (a stale cached connection). */
  lostBeforeData = false;
  /** Which credentials this session used, for replies about authentication (x.7.x). Never the password. */
  private authNote = 'smarthost did not log in: no username is configured for this upstream';
  /** How this session logged in, to explain Microsoft 365's refusals of the mail (SendAsDenied …). */
  private loggedIn: Omit<ReplyContext, 'sender'> | undefined;
  private constructor(private readonly conn: RelayConnection, readonly peer: Peer, readonly relay: string) {
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
  static async open(peer: Peer, policy: Policy, ehloName: string, mailbox?: string): Promise<UpstreamSession> {
    const label = `${peer.host}[${peer.ip}]`;
    const relay = peerLabel(peer);
    let conn: RelayConnection;
    try {
      conn = await connect(connectionOptions(peer, policy, ehloName));
    } catch (e) {
      const c = classifyConnectError(e, label, peer.port);
      // `may` is opportunistic: a failed handshake is retried in plaintext, as Postfix does
      if (policy.tls === 'may' && c.dsn.status === '4.7.5') {
        try { conn = await connect(connectionOptions(peer, policy, ehloName, { plaintextRetry: true })); } catch (e2) {
          const c2 = classifyConnectError(e2, label, peer.port);
          throw new SetupFailure(c2, relay, c2.nextPeer);
        }
      } else throw new SetupFailure(c, relay, c.nextPeer);
    }
    const session = new UpstreamSession(conn, peer, relay);
    try {
      await session.login(policy, label, mailbox);
    } catch (e) {
      conn.close();
      throw e;
    }
    return session;
  }

  private async login(policy: Policy, label: string, mailbox: string | undefined): Promise<void> {
    if (policy.oauth) return this.loginOAuth(policy, policy.oauth.tokens(), mailbox ?? policy.oauth.mailbox(''), label);
    if (!policy.credentials) return;
    const fail = (status: '4.7.0' | '4.7.8' | '4.3.5', reason: string) => { throw new SetupFailure(deferred(status, reason), this.relay, false); };
    let creds: Credentials;
    try { creds = policy.credentials(); } catch (e) { return fail('4.3.5', `cannot log in to ${label} for ${policy.label}: ${(e as Error).message}`); }
    const method = this.mechanism(policy, label, creds.username);
    if (!method) return;
    await new Promise<void>((resolve, reject) => {
      this.conn.login({ user: creds.username, pass: creds.password, method }, (err) => {
        if (!err) {
          this.authNote = `smarthost logged in as "${creds.username}" with the password from ${creds.source}`;
          this.loggedIn = { login: 'password', mailbox: creds.username, route: policy.label };
          return resolve();
        }
        const who = `username "${creds.username}" with the password from ${creds.source}`;
        const said = err.response ? `server ${label} said: ${oneLine(err.response)}` : err.message;
        // the classic migration mistake, named in the log line rather than left to a bare 535
        const ms = err.response ? explainMicrosoftReply(err.response, { login: 'password', mailbox: creds.username, route: policy.label }) : undefined;
        const hint = creds.postfix ? `; ${describeShape(creds.postfix.file, creds.postfix.shape)}: ${shapeFix(creds.postfix.file)}` : ms ? `; ${ms.meaning}; ${ms.fix}` : '';
        reject(new SetupFailure(deferred('4.7.0', `SASL ${method} authentication failed; ${said} (tried ${who})${hint}`), this.relay, false));
      });
    });
  }

  /**
   * The SASL mechanism to log in with, or undefined when the server offers no AUTH (then we send
   * without, as Postfix does). Throws SetupFailure before any credential could cross plaintext.
   */
  private mechanism(policy: Policy, label: string, username: string): string | undefined {
    const fail = (reason: string) => { throw new SetupFailure(deferred('4.7.0', reason), this.relay, false); };
    if (!this.conn.secure && !policy.allowPlaintextAuth) {
      return fail(`AUTH not attempted: the connection to ${label} is not encrypted ` +
        `(${policy.tls === 'none' ? 'tls = "none"' : 'the server did not offer STARTTLS'}), and credentials are never sent in clear text; ` +
        `use tls = "encrypt" or "verify" (or allow_plaintext_auth = true, only for a local tunnel)`);
    }
    const offered = this.conn.authMechanisms;
    if (!this.conn.allowsAuth) { // nothing to log in to (Postfix sends without AUTH too); a later 5.7.x reply names the credentials
      this.authNote = `smarthost did not log in as "${username}": ${label} did not offer AUTH`;
      return undefined;
    }
    const method = policy.mechanisms.find((m) => offered.includes(m));
    return method ?? fail(`host ${label} offers AUTH ${offered.join(' ') || '(none we know)'}, but mechanisms = [${policy.mechanisms.join(', ')}] allows none of them`);
  }

  /** auth = "oauth2": an access token instead of a password; a refused token is refreshed once per connection. */
  private async loginOAuth(policy: Policy, tokens: AccessTokens, mailbox: string, label: string): Promise<void> {
    const method = this.mechanism(policy, label, mailbox) as OAuthMechanism | undefined;
    if (!method) return;
    const o = tokens.config;
    const r = await oauthLogin(this.conn, tokens, mailbox, method, this.peer);
    const from = `${o.grant === 'client_credentials' ? 'app-only ' : ''}OAuth2 access token from ${o.tokenUrl}`;
    const context = oauthContext(o, mailbox);
    if (r.ok) { this.authNote = `smarthost logged in as "${mailbox}" with an ${from}`; this.loggedIn = context; return; }
    if (r.token) throw new SetupFailure(deferred(r.token.status, r.token.message), this.relay, false);
    const said = r.response ? `server ${label} said: ${oneLine(r.response)}` : r.message;
    const tried = `tried username "${mailbox}" with ${r.refreshed ? `a freshly ${context.login === 'app' ? 'issued' : 'refreshed'}` : 'an'} ${from}`;
    const claims = tokenClaims(r.tried);
    const ms = r.response ? explainMicrosoftReply(r.response, { ...context, ...(claims ? { claims } : {}) }) : undefined;
    const todo = ms ? `${ms.meaning}; ${ms.fix}` : 'check that the mailbox may use SMTP AUTH and that the sign-in\'s scope covers SMTP';
    throw new SetupFailure(deferred('4.7.0', `SASL ${method} authentication failed; ${said} (${tried}); ${todo}`), this.relay, false);
  }

  /** One transaction; never throws: every recipient gets a result. */
  async send(msg: OutgoingMessage): Promise<RcptResult[]> {
    const started = Date.now();
    const label = `${this.peer.host}[${this.peer.ip}]`;
    const addrs = msg.recipients.map((r) => r.address);
    // A UTF-8 address needs SMTPUTF8 (RFC 6531 §3.4), which nodemailer adds when the server offers it;
    // without, it would send the raw bytes anyway. Postfix bounces (smtp_proto.c), and so do we.
    if (!this.offersSmtputf8 && [msg.sender, ...addrs].some((a) => /[^\x00-\x7f]/.test(a))) {
      const dsn = { status: '5.6.7', reason: `SMTPUTF8 is required, but was not offered by host ${label}` } as const;
      return addrs.map((rcpt) => ({ rcpt, outcome: 'bounced', dsn, relay: this.relay, connectMs: 0, transmitMs: 0 }));
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
    const results = await new Promise<RcptResult[]>((resolve) => {
      this.conn.send(envelope, body, (err, info) => {
        const transmitMs = Date.now() - started;
        if (err) {
          body.destroy();
          const e = err as { rejectedErrors?: Array<{ recipient?: string; response?: string }> };
          const perRcpt = new Map((e.rejectedErrors ?? []).map((r) => [r.recipient ?? '', r.response ?? ''] as const));
          const whole = classifySendError(err, label, bodyDone);
          this.lostBeforeData = !bodyDone && !this.usable && !(err as { response?: string }).response;
          resolve(addrs.map((rcpt) => {
            const c = perRcpt.has(rcpt) ? fromReply(perRcpt.get(rcpt)!, label, 'RCPT TO') : whole;
            return { rcpt, outcome: c.outcome === 'sent' ? 'deferred' : c.outcome, dsn: c.dsn, relay: this.relay, connectMs: 0, transmitMs };
          }));
          return;
        }
        const rejected = new Map((info.rejectedErrors ?? []).map((r) => [(r as { recipient?: string }).recipient ?? '', r.response ?? ''] as const));
        const ok = fromReply(info.response, label, 'end of DATA');
        resolve(addrs.map((rcpt) => {
          const c = rejected.has(rcpt) ? fromReply(rejected.get(rcpt)!, label, 'RCPT TO') : ok;
          const dsn = c.outcome === 'sent' ? { ...c.dsn, reason: c.dsn.diagnostic ?? c.dsn.reason } : c.dsn; // Postfix logs "status=sent (250 ...)"
          return { rcpt, outcome: c.outcome, dsn, relay: this.relay, connectMs: 0, transmitMs, ...(c.outcome === 'sent' ? { dsnPassed } : {}) };
        }));
      });
    });
    // "530 5.7.0 Authentication required", "550 5.7.1 Authentication Required": say which credentials were used
    return results.map((r) => this.explained(/^[45]\.7\./.test(r.dsn.status) ? { ...r, dsn: { ...r.dsn, reason: `${r.dsn.reason}; ${this.authNote}` } } : r, msg.sender));
  }

  /** A refusal Microsoft 365 is known for (554 5.2.252 SendAsDenied …) gets its meaning and fix in the log line and bounce. */
  private explained(r: RcptResult, sender: string): RcptResult {
    const reply = r.outcome === 'sent' || !this.loggedIn ? undefined : replyOf(r.dsn);
    const ms = reply ? explainMicrosoftReply(reply, { ...this.loggedIn!, sender }) : undefined;
    return ms ? { ...r, dsn: { ...r.dsn, reason: `${r.dsn.reason}; ${ms.meaning}; ${ms.fix}` } } : r;
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
    conn.once('error', (e) => { if (!done) { done = true; conn.close(); reject(e); } });
    conn.connect((err) => {
      if (done) return;
      done = true;
      if (err) { conn.close(); reject(err); } else resolve(conn);
    });
  });
}
