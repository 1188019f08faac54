// The walk of `smarthost probe` over one upstream: DNS, connect, (implicit TLS,) greeting, EHLO,
// STARTTLS, certificate, EHLO again, AUTH, MAIL FROM, and with --send-test RCPT TO and DATA,
// then RSET/QUIT. One handler per step (OpenSMTPD mta_session.c's state enum); the first
// failure stops the walk, and the steps it did not reach are listed as skipped. TLS levels and
// credentials are read exactly as delivery reads them (smtp/upstream-policy.ts), so a green probe means
// delivery would get as far.
import dns from 'node:dns/promises';
import tls from 'node:tls';
import type { OutboundTls, UpstreamConfig } from '../config/types.js';
import { connectionOptions, upstreamPolicy, type Peer, type Policy } from '../smtp/upstream-policy.js';
import { PortSense } from '../smtp/port-sense.js';
import { checkCertificate, describeCertificate } from './certificate.js';
import { connectTcp, handshake, LineClient, ProbeIoError, refusalText, replyText, type SmtpReply } from './line-client.js';
import { advise, type Fact } from './diagnose.js';
import { NET_TEXT } from '../smtp/wording.js';
import { testMessage } from './test-message.js';
import { oauthContext, tokenClaims, type ReplyContext } from '../oauth/microsoft-replies.js';
import { OAuthError, type AccessTokens } from '../oauth/token-source.js';
import { authenticate, authenticateOAuth, PROBE_MECHANISMS, PROBE_OAUTH_MECHANISMS, type ProbeOAuthMechanism } from './sasl.js';

export type StepName = 'dns' | 'connect' | 'tls' | 'banner' | 'ehlo' | 'starttls' | 'certificate' | 'ehlo-tls'
  | 'auth' | 'mail' | 'rcpt' | 'data' | 'quit';

export interface StepResult {
  readonly step: StepName;
  /** false for a failure, and for a step not run because an earlier one failed. */
  readonly ok: boolean;
  /** Not run: after a failure (ok false), or not applicable here (ok true). */
  readonly skipped?: true;
  readonly detail: string;
  /** The upstream's reply as received (lines joined with \n). */
  readonly reply?: string;
  readonly diagnosis?: string;
  readonly fix?: string;
}

export interface ProbeTarget {
  /** "relay", a route's name, or the --url. */
  readonly name: string;
  /** Where a fix goes: "[relay]", '[[route]] "corp"'. */
  readonly section: string;
  readonly upstream: UpstreamConfig;
}

export interface ProbeOptions {
  readonly ehloName: string;
  /** MAIL FROM as delivery would send it (after [rewrite] senders), and the address before that. */
  readonly sender: string;
  readonly originalSender: string;
  readonly sendTest?: string;
  /** For the connection, each reply and each TLS handshake. */
  readonly timeoutMs: number;
}

export interface ProbeReport { readonly ok: boolean; readonly target: string; readonly route: string; readonly tls: OutboundTls; readonly steps: readonly StepResult[] }

export type Lookup = (host: string) => Promise<ReadonlyArray<{ address: string }>>;

const systemLookup: Lookup = (host) => dns.lookup(host, { all: true });

/** Postfix smtp_mx_address_limit, as smtp/peers.ts. */
const MAX_ADDRESSES = 5;
const STEP_WORDS: Record<StepName, string> = {
  dns: 'the name lookup', connect: 'the connection', tls: 'the TLS handshake', banner: 'the greeting', ehlo: 'EHLO', starttls: 'STARTTLS',
  certificate: 'the certificate check', 'ehlo-tls': 'EHLO after TLS', auth: 'AUTH', mail: 'MAIL FROM', rcpt: 'RCPT TO', data: 'DATA', quit: 'QUIT',
};

/** The steps a walk makes for this upstream, in order. */
export function plan(u: UpstreamConfig, sendTest: boolean): StepName[] {
  const implicit = u.scheme === 'smtps';
  return [
    'dns', 'connect', ...(implicit ? ['tls', 'certificate'] as const : []), 'banner', 'ehlo',
    ...(!implicit && u.tls !== 'none' ? ['starttls', 'certificate', 'ehlo-tls'] as const : []),
    'auth', 'mail', ...(sendTest ? ['rcpt', 'data'] as const : []), 'quit',
  ];
}

type Outcome = Omit<StepResult, 'step'>;
const pass = (detail: string, reply?: SmtpReply): Outcome => ({ ok: true, detail, ...(reply ? { reply: reply.lines.join('\n') } : {}) });
const notApplicable = (detail: string): Outcome => ({ ok: true, skipped: true, detail });
const failed = (detail: string, fact: Fact, reply?: SmtpReply): Outcome =>
  ({ ok: false, detail, ...(reply ? { reply: reply.lines.join('\n') } : {}), ...advise(fact) });

export async function probe(target: ProbeTarget, opts: ProbeOptions, lookup: Lookup = systemLookup): Promise<ProbeReport> {
  const steps = await new Walk(target, opts, lookup).run();
  return { ok: steps.every((s) => s.ok), target: target.upstream.url, route: target.name, tls: target.upstream.tls, steps };
}

class Walk {
  /** What a port speaks, asked at most once per address and port in this probe. */
  private readonly sense = new PortSense();
  private readonly u: UpstreamConfig;
  private readonly policy: Policy;
  private readonly t: number;
  private addresses: string[] = [];
  private peer: Peer | undefined;
  private client: LineClient | undefined;
  private features: string[] = [];
  /** `may` and no STARTTLS offered: the session goes on in plaintext. */
  private plaintext = false;
  private authenticated = false;
  /** How the auth step logged in (OAuth2), so Microsoft's refusals at MAIL FROM and DATA can be explained. */
  private login: ReplyContext | undefined;
  private identity: (host: string, cert: tls.PeerCertificate) => Error | undefined = tls.checkServerIdentity;

  constructor(private readonly target: ProbeTarget, private readonly opts: ProbeOptions, private readonly lookup: Lookup) {
    this.u = target.upstream;
    this.policy = upstreamPolicy(target.section, target.upstream);
    this.t = opts.timeoutMs;
  }

  async run(): Promise<StepResult[]> {
    const results: StepResult[] = [];
    let failedAt: StepName | undefined;
    try {
      for (const step of plan(this.u, this.opts.sendTest !== undefined)) {
        if (failedAt) { results.push({ step, ok: false, skipped: true, detail: `not run: ${failedAt} failed` }); continue; }
        let r: Outcome;
        try { r = await this.handle(step); } catch (e) { r = this.ioFailure(step, e); }
        results.push({ step, ...r });
        if (!r.ok) failedAt = step;
      }
    } finally {
      this.client?.close();
    }
    return results;
  }

  private handle(step: StepName): Promise<Outcome> | Outcome {
    switch (step) {
      case 'dns': return this.dns();
      case 'connect': return this.connect();
      case 'tls': return this.implicitTls();
      case 'banner': return this.banner();
      case 'ehlo': return this.ehlo();
      case 'starttls': return this.starttls();
      case 'certificate': return this.certificate();
      case 'ehlo-tls': return this.plaintext ? notApplicable('no TLS: the session went on in plaintext') : this.ehlo();
      case 'auth': return this.auth();
      case 'mail': return this.mail();
      case 'rcpt': return this.rcpt();
      case 'data': return this.data();
      case 'quit': return this.quit();
    }
  }

  /** A timeout or a lost connection in the middle of a step; anything else is a bug and throws. */
  private ioFailure(step: StepName, e: unknown): Outcome {
    const err = e as NodeJS.ErrnoException;
    if (!(e instanceof ProbeIoError) && typeof err.code !== 'string') throw e;
    if (err.code === 'ETIMEDOUT') return failed(`no reply within ${this.t} ms`, { kind: 'silent', step: STEP_WORDS[step], timeoutMs: this.t });
    return failed(`connection lost: ${err.message}`, { kind: 'lost', step: STEP_WORDS[step], message: err.message });
  }

  private get label(): string { return `${this.u.host}[${this.peer?.ip ?? '?'}]`; }
  private has(keyword: string): boolean { return this.features.some((f) => f.split(/[ =]/, 1)[0]!.toUpperCase() === keyword); }
  private authOffered(): string[] {
    const line = this.features.find((f) => /^AUTH[ =]/i.test(f));
    return line ? line.slice(5).trim().toUpperCase().split(/\s+/).filter(Boolean) : [];
  }

  private async dns(): Promise<Outcome> {
    const host = this.u.host;
    try {
      const found = await this.lookup(host);
      if (!found.length) return failed(`${host}: name not found`, { kind: 'dns', host, code: 'ENODATA' });
      this.addresses = found.slice(0, MAX_ADDRESSES).map((a) => a.address);
      return pass(`${host} → ${this.addresses.join(', ')}`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      return failed(`${host}: ${code === 'ENOTFOUND' ? 'name not found' : code}`, { kind: 'dns', host, code });
    }
  }

  /** Tries each address in turn, as delivery does; reports the last failure. */
  private async connect(): Promise<Outcome> {
    const { host, port } = this.u;
    let last: { ip: string; code: string } = { ip: this.addresses[0] ?? host, code: 'ENOTFOUND' };
    for (const ip of this.addresses) {
      const started = Date.now();
      try {
        const socket = await connectTcp(ip, port, this.t);
        this.client = new LineClient(socket);
        this.peer = { host, ip, port };
        return pass(`${host}[${ip}]:${port} in ${Date.now() - started} ms`);
      } catch (e) {
        last = { ip, code: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
      }
    }
    const tried = this.addresses.length > 1 ? ` (tried ${this.addresses.length} addresses)` : '';
    return failed(`${host}[${last.ip}]:${port}: ${NET_TEXT[last.code] ?? last.code}${tried}`,
      { kind: 'connect', host, ip: last.ip, port, code: last.code, timeoutMs: this.t });
  }

  /** Delivery's TLS options for this peer, but without verification: the certificate step judges it and can show it. */
  private tlsOptions(): tls.ConnectionOptions {
    const o = connectionOptions(this.peer!, this.policy, this.opts.ehloName).tls ?? {};
    if (o.checkServerIdentity) this.identity = o.checkServerIdentity;
    return { ...o, rejectUnauthorized: false, checkServerIdentity: () => undefined };
  }

  private async secure(onError: (message: string) => Promise<Outcome>, reply?: SmtpReply): Promise<Outcome> {
    let options: tls.ConnectionOptions;
    try { options = this.tlsOptions(); } catch (e) { return failed('cannot read the TLS files', { kind: 'tls-files', message: (e as Error).message }); }
    const socket = this.client!.detach();
    try {
      const s = await handshake(socket, options, this.t);
      this.client!.upgrade(s);
      return pass(`${reply ? `${replyText(reply)}; ` : ''}${s.getProtocol() ?? 'TLS'} with ${s.getCipher().name}`, reply);
    } catch (e) {
      socket.destroy();
      return onError(tlsMessage(e));
    }
  }

  private implicitTls(): Promise<Outcome> {
    return this.secure(async (message) => {
      // smtps:// to a plain SMTP port: its "220 …" arrives where a TLS record should be
      const greeting = await this.plainGreeting();
      if (greeting || /wrong version number|packet length too long|unknown protocol|http request/i.test(message)) {
        const plain = greeting ? replyText(greeting) : undefined;
        return failed(`handshake failed: ${message}`, { kind: 'tls-on-plain-port', label: this.label, host: this.u.host, port: this.u.port, message, ...(plain ? { reply: plain } : {}) }, greeting);
      }
      return failed(`handshake failed: ${message}`, { kind: 'tls-handshake', label: this.label, message, tls: this.u.tls });
    });
  }

  /** A new plaintext connection: its greeting, when the port speaks plain SMTP (asked as delivery asks, smtp/port-sense.ts). */
  private async plainGreeting(): Promise<SmtpReply | undefined> {
    const line = await this.sense.plainGreeting(this.peer!, this.t);
    return line ? { code: Number(line.slice(0, 3)), lines: [line] } : undefined;
  }

  private async banner(): Promise<Outcome> {
    let r: SmtpReply;
    try {
      r = await this.client!.read(this.t);
    } catch (e) {
      if (!(e instanceof ProbeIoError) || e.code !== 'ETIMEDOUT') return this.ioFailure('banner', e);
      // a TLS handshake on a new connection: does this port expect TLS from the first byte?
      const expectsTls = !this.client!.secure && await this.sense.speaksTls(this.peer!, this.t);
      return failed(`no greeting within ${this.t} ms`, { kind: 'no-greeting', host: this.u.host, port: this.u.port, timeoutMs: this.t, expectsTls });
    }
    if (r.code === 220) return pass(replyText(r), r);
    if (r.code === 0) return failed(`not SMTP: ${r.lines[0]!.slice(0, 80)}`, { kind: 'not-smtp', line: r.lines[0]! }, r);
    return failed(replyText(r), { kind: 'greeting-refused', reply: replyText(r) }, r);
  }

  private async ehlo(): Promise<Outcome> {
    const r = await this.client!.command(`EHLO ${this.opts.ehloName}`, this.t);
    if (r.code !== 250) return failed(replyText(r), { kind: 'ehlo-refused', reply: replyText(r), ehloName: this.opts.ehloName }, r);
    this.features = r.lines.slice(1).map((l) => l.slice(4).trim());
    const name = (r.lines[0] ?? '').slice(4).split(' ', 1)[0];
    return pass(`${name} offers ${this.features.join(', ') || 'no extensions'}`, r);
  }

  private async starttls(): Promise<Outcome> {
    if (!this.has('STARTTLS')) {
      const wouldSendCredentials = this.u.username !== undefined && !this.u.allowPlaintextAuth;
      if (this.u.tls === 'may' && !wouldSendCredentials) {
        this.plaintext = true;
        return notApplicable('not offered by the server; tls = "may" goes on in plaintext');
      }
      return failed('not offered by the server', { kind: 'starttls-missing', host: this.u.host, tls: this.u.tls, ...(this.u.username ? { username: this.u.username } : {}) });
    }
    const r = await this.client!.command('STARTTLS', this.t);
    if (r.code !== 220) return failed(replyText(r), { kind: 'starttls-refused', reply: replyText(r), tls: this.u.tls }, r);
    return this.secure(async (message) => failed(`handshake failed: ${message}`, { kind: 'tls-handshake', label: this.label, message, tls: this.u.tls }), r);
  }

  private certificate(): Outcome {
    const s = this.client!.tlsSocket;
    if (this.plaintext || !s) return notApplicable('no TLS: nothing to check');
    const desc = describeCertificate(s.getPeerCertificate(), s.getProtocol());
    const { problem } = checkCertificate(s, this.u.host, this.identity);
    if (!problem) return pass(`${desc}; verified for ${this.u.host}`);
    if (this.u.tls === 'verify') return failed(desc, { kind: 'certificate', label: this.label, message: problem });
    return pass(`${desc}; not verified (tls = "${this.u.tls}"): ${problem}`);
  }

  private async auth(): Promise<Outcome> {
    const offered = this.authOffered();
    const shown = offered.length ? `AUTH ${offered.join(' ')}` : 'no AUTH';
    if (this.policy.oauth) return this.oauth(this.policy.oauth.tokens(), this.policy.oauth.mailbox(this.opts.sender), offered, shown);
    if (!this.policy.credentials) return notApplicable(`no username configured; the server offers ${shown}`);
    let creds;
    try { creds = this.policy.credentials(); } catch (e) {
      return failed('the password cannot be read', { kind: 'credentials-unreadable', message: (e as Error).message });
    }
    const { username } = creds;
    const postfix = creds.postfix ? { file: creds.postfix.file, shape: creds.postfix.shape } : undefined;
    // a sasl_passwd line is surely no password: do not spend one of the provider's failed logins on it
    if (postfix?.shape.certain) return failed(`not tried: the password file holds ${postfix.shape.shape}`, { kind: 'password-file-shape', ...postfix });
    const blocked = this.loginBlocked(offered, username);
    if (blocked) return blocked;
    const method = this.u.mechanisms.find((m) => offered.includes(m) && (PROBE_MECHANISMS as readonly string[]).includes(m));
    if (!method) return failed(`the server offers ${shown}`, { kind: 'auth-mechanisms', offered, configured: this.u.mechanisms });
    const r = await authenticate(this.client!, method, username, creds.password, this.t);
    if (r.code === 235) {
      this.authenticated = true;
      return pass(`logged in as "${username}" with ${method} (password from ${creds.source}): ${replyText(r)}`, r);
    }
    return failed(replyText(r), { kind: 'auth-rejected', reply: replyText(r), username, source: creds.source, mechanism: method, ...(postfix ? { postfix } : {}) }, r);
  }

  /** Checks that apply to any login before credentials could cross: TLS first, and AUTH offered. */
  private loginBlocked(offered: readonly string[], username: string): Outcome | undefined {
    const secure = this.client!.secure;
    if (!secure && !offered.length && this.has('STARTTLS')) return failed('the server offers no AUTH before TLS', { kind: 'auth-not-offered', beforeTls: true, username });
    if (!secure && !this.u.allowPlaintextAuth) return failed('not attempted: the connection is not encrypted', { kind: 'auth-plaintext', tls: this.u.tls, username });
    // like delivery (smtp/session.ts), a server without AUTH gets the mail without a login: worth a warning, not a failure
    if (!offered.length) return { ...pass(`the server offers no AUTH; "${username}" would not be used`), ...advise({ kind: 'auth-not-offered', beforeTls: false, username }) };
    return undefined;
  }

  /**
   * auth = "oauth2": a token from the same source delivery uses (delegated: it refreshes, and writes a
   * rotated refresh token back to refresh_token_file itself; app-only: the app's token), logged in as
   * the mailbox delivery would use for the probe's sender. As in oauth/smtp-login.ts, a
   * refused token that was not just refreshed is renewed once and tried again on this connection.
   */
  private async oauth(tokens: AccessTokens, mailbox: string, offered: readonly string[], shown: string): Promise<Outcome> {
    const blocked = this.loginBlocked(offered, mailbox);
    if (blocked) return blocked;
    const method = this.u.mechanisms.find((m): m is ProbeOAuthMechanism => offered.includes(m) && (PROBE_OAUTH_MECHANISMS as readonly string[]).includes(m));
    if (!method) return failed(`the server offers ${shown}`, { kind: 'auth-mechanisms', offered, configured: this.u.mechanisms });
    const before = tokens.refreshes;
    let token: string;
    try { token = await tokens.token(); } catch (e) { return this.tokenFailure(e, tokens.config.grant); }
    let fresh = tokens.refreshes > before;
    let r = await authenticateOAuth(this.client!, method, mailbox, token, this.peer!, this.t);
    if (r.reply.code !== 235 && !fresh && (r.challenge !== undefined || /^535|^5\d\d[ -]5\.7\./.test(r.reply.lines[0] ?? ''))) {
      try { token = await tokens.renew(token); } catch (e) { return this.tokenFailure(e, tokens.config.grant); }
      fresh = true;
      r = await authenticateOAuth(this.client!, method, mailbox, token, this.peer!, this.t);
    }
    const o = tokens.config;
    const from = `${o.grant === 'client_credentials' ? 'app-only ' : ''}OAuth2 access token from ${o.tokenUrl}`;
    this.login = oauthContext(o, mailbox);
    if (r.reply.code === 235) {
      this.authenticated = true;
      const freshly = fresh ? `freshly ${o.grant === 'client_credentials' ? 'issued' : 'refreshed'} ` : '';
      return pass(`logged in as "${mailbox}" with ${method} (${freshly}${from}): ${replyText(r.reply)}`, r.reply);
    }
    const claims = tokenClaims(token);
    return failed(`${replyText(r.reply)} (mailbox "${mailbox}", ${method})`, {
      kind: 'oauth-rejected', reply: replyText(r.reply), mechanism: method, fresh, login: { ...this.login, ...(claims ? { claims } : {}) },
      ...(r.challenge ? { challenge: r.challenge } : {}), ...(o.scope ? { scope: o.scope } : {}),
    }, r.reply);
  }

  private tokenFailure(e: unknown, grant: string): Outcome {
    if (!(e instanceof OAuthError)) throw e; // a bug, not an upstream's answer
    return failed(`token ${grant === 'client_credentials' ? 'request' : 'refresh'} failed`, { kind: 'oauth-token', message: e.message });
  }

  private async mail(): Promise<Outcome> {
    const { sender, originalSender } = this.opts;
    const r = await this.client!.command(`MAIL FROM:<${sender}>`, this.t);
    if (r.code === 250) return pass(`<${sender}> accepted: ${replyText(r)}`, r);
    return failed(replyText(r), {
      kind: 'mail', reply: refusalText(r), sender, original: originalSender, section: this.target.section, ...(this.login ? { login: { ...this.login, sender } } : {}),
      ...(this.u.username ? { username: this.u.username } : {}), authenticated: this.authenticated, authOffered: this.authOffered().length > 0,
    }, r);
  }

  private async rcpt(): Promise<Outcome> {
    const rcpt = this.opts.sendTest!;
    const r = await this.client!.command(`RCPT TO:<${rcpt}>`, this.t);
    if (r.code === 250 || r.code === 251) return pass(`<${rcpt}> accepted: ${replyText(r)}`, r);
    return failed(replyText(r), { kind: 'rcpt', reply: refusalText(r), rcpt, section: this.target.section, authenticated: this.authenticated }, r);
  }

  private async data(): Promise<Outcome> {
    const go = await this.client!.command('DATA', this.t);
    if (go.code !== 354) return failed(replyText(go), { kind: 'data', reply: refusalText(go) }, go);
    const message = testMessage(this.opts.sender, this.opts.sendTest!, this.opts.ehloName, this.u.url);
    const r = await this.client!.command(`${message}\r\n.`, this.t, `(test message, ${message.length} bytes)\r\nC: .`);
    if (r.code === 250) return pass(`test message sent to <${this.opts.sendTest}>: ${replyText(r)}`, r);
    return failed(replyText(r), { kind: 'data', reply: refusalText(r), ...(this.login ? { login: { ...this.login, sender: this.opts.sender } } : {}) }, r);
  }

  /** RSET (nothing was sent) and QUIT; a server that just hangs up here does no harm. */
  private async quit(): Promise<Outcome> {
    try {
      if (!this.opts.sendTest) await this.client!.command('RSET', this.t);
      const r = await this.client!.command('QUIT', this.t);
      return pass(replyText(r), r);
    } catch (e) {
      return pass(`the connection ended: ${(e as Error).message}`);
    }
  }
}

/** OpenSSL's reason ("wrong version number") rather than its whole error string with file and line. */
function tlsMessage(e: unknown): string {
  const err = e as Error & { reason?: string };
  return (typeof err.reason === 'string' && err.reason ? err.reason : err.message).trim();
}
