// What the smtp-server hooks of one listener share (listener-*.ts): its [[listen]]
// section, the daemon's parts, and its open sessions by smtp-server's session id
// (the client as logged, TLS and AUTH facts, its Connection and guard, and the
// envelope addresses as the client sent them).
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { ListenConfig } from '../config/types.js';
import type { Reply } from '../mail/reply.js';
import type { MailLog, Peer } from '../maillog/maillog.js';
import { EnvelopeAddresses } from './envelope-address.js';
import type { Guard } from './guard.js';
import { isTrusted } from './relay-policy.js';
import type { Connection } from './smtpd-server.js';
import type { SmtpdDeps } from './smtpd-deps.js';

export interface ListenerScope {
  readonly listen: ListenConfig;
  readonly deps: SmtpdDeps;
  readonly sessions: ListenerSessions;
}

/** One session as the log and the hooks see it. */
export interface SessionMeta {
  readonly peer: Peer;
  readonly trusted: boolean;
  /** onConnect let it in: it holds a place in the connection limits and gets a disconnect line. */
  counted: boolean;
  tls?: { version: string; cipher: string };
  authMethod?: string;
}

/** An Error that smtp-server turns into our exact reply (the guard keeps our enhanced code). */
export function replyError(r: Reply): Error {
  return Object.assign(new Error(`${r.enhanced} ${r.text}`), { responseCode: r.code });
}

export class ListenerSessions {
  private readonly metas = new Map<string, SessionMeta>();
  readonly guards = new Map<string, Guard>();
  readonly conns = new Map<string, Connection>();
  /** The addresses as the client sent them (smtp-server's are lossy), from the command bytes the guard keeps. */
  readonly addresses = new EnvelopeAddresses((s) => this.guards.get(s.id)?.envelopeLine());
  /** Set by the listener's drain(): no new transaction may start. */
  draining = false;

  constructor(private readonly listen: ListenConfig, private readonly log: MailLog) {}

  /** The session's meta, made on first use (smtp-server's session knows the client by then). */
  meta(s: SMTPServerSession): SessionMeta {
    let m = this.metas.get(s.id);
    if (!m) {
      const hostname = s.clientHostname && !s.clientHostname.startsWith('[') ? s.clientHostname : 'unknown';
      m = { peer: { hostname, address: s.remoteAddress }, trusted: isTrusted(s.remoteAddress, this.listen.trustedNetworks), counted: false };
      this.metas.set(s.id, m);
    }
    return m;
  }

  /** The client as logged, if its session got that far. */
  peer(id: string): Peer | undefined {
    return this.metas.get(id)?.peer;
  }

  exact(a: SMTPServerAddress): string {
    return this.addresses.exact(a);
  }

  /** The session has closed: its parts, no longer kept. */
  forget(id: string): { readonly guard: Guard | undefined; readonly meta: SessionMeta | undefined } {
    const guard = this.guards.get(id);
    const meta = this.metas.get(id);
    this.guards.delete(id);
    this.conns.delete(id);
    this.metas.delete(id);
    return { guard, meta };
  }

  /** One NOQUEUE/queue-id reject line; `from` defaults to the transaction's sender. */
  rejectLog(stage: string, s: SMTPServerSession, r: Reply, ctx: { from?: string; to?: string; id?: string } = {}): void {
    const from = ctx.from ?? (s.envelope.mailFrom ? this.exact(s.envelope.mailFrom) : undefined);
    this.log.reject(stage, this.meta(s).peer, r, {
      ...(from !== undefined ? { from } : {}), ...(ctx.to !== undefined ? { to: ctx.to } : {}),
      proto: s.openingCommand === 'EHLO' ? 'ESMTP' : 'SMTP', helo: s.hostNameAppearsAs || '',
    }, ctx.id);
  }
}
