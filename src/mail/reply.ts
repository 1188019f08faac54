// SMTP replies as typed values. Every reply smarthost sends is built from the
// catalogue in replies.ts; only the smtpd adapter turns a Reply into wire text.

export type Enhanced = `${2 | 4 | 5}.${number}.${number}`;

export interface Reply {
  readonly code: number;
  readonly enhanced: Enhanced;
  readonly text: string;
}

/** Thrown by inbound checks; the smtpd adapter answers the client with `reply`. */
export class SmtpReplyError extends Error {
  constructor(readonly reply: Reply, options?: ErrorOptions) {
    super(reply.text, options);
    this.name = 'SmtpReplyError';
  }
}

export function reply(code: number, enhanced: Enhanced, text: string): Reply {
  return Object.freeze({ code, enhanced, text });
}

/** The reply as one wire line, without CRLF: "554 5.7.1 <x@y>: Relay access denied". */
export function formatReply(r: Reply): string {
  return `${r.code} ${r.enhanced} ${r.text}`;
}

export function isPermanent(r: Reply): boolean {
  return r.code >= 500;
}
