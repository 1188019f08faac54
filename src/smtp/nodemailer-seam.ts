// Every use of nodemailer's private members, in one place. nodemailer is pinned to
// exactly 10.6.0 (package.json); nodemailer-seam.test.ts drives a real
// SMTPConnection against a real smtp-server over loopback through each member below
// and fails when one disappears or changes meaning.
//
// Public API covers the rest of session.ts: connect(), login(), send(), reset(), quit(),
// close(), the 'error' and 'end' events, `secure`, `allowsAuth`, `destroyed`. What has
// no public way:
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { fastDotStuffing, type TransformFn } from './dot-stuff.js';

interface Internals {
  _recipientQueue: string[];
  _supportedExtensions: string[];
  _ehloLines: string[] | undefined;
  _socket: TLSSocket | Socket | false | null;
  _createSendStream(callback: unknown): { _transform: TransformFn };
}

export class SeamConnection extends SMTPConnection {
  /** RCPT TO parameters (" NOTIFY=… ORCPT=…") by recipient address, set before each send(). */
  readonly rcptParams = new Map<string, string>();

  private get internals(): Internals { return this as unknown as Internals; }

  /**
   * `_createSendStream()` returns the DataStream that dot-stuffs the message; send() offers no
   * other. Its `_transform` (Node's Transform hook) gets the Buffer.indexOf fast path of
   * dot-stuff.ts, which keeps the DataStream's public counters and defers to the original
   * for anything not CRLF-clean.
   */
  _createSendStream(callback: unknown): { _transform: TransformFn } {
    const create = (SMTPConnection.prototype as unknown as Internals)._createSendStream;
    const stream = create.call(this, callback);
    stream._transform = fastDotStuffing(stream._transform);
    return stream;
  }

  /**
   * `_getDsnRcptToArgs()`: nodemailer sends one NOTIFY/ORCPT for the whole envelope; RFC 3461
   * makes them per recipient. It is called right after the recipient is pushed onto
   * `_recipientQueue` (_sendRcpt), so the last entry is the one being sent.
   */
  _getDsnRcptToArgs(): string {
    const { _supportedExtensions: extensions, _recipientQueue: queue } = this.internals;
    if (!extensions.includes('DSN')) return '';
    return this.rcptParams.get(queue[queue.length - 1] ?? '') ?? '';
  }

  /**
   * `_supportedExtensions`: the EHLO extensions nodemailer acts on (DSN, SMTPUTF8, 8BITMIME…).
   * There is no public copy; `lastServerResponse` holds the EHLO reply only until the next
   * command, and parsing it again could disagree with what nodemailer itself decides.
   */
  offers(extension: 'DSN' | 'SMTPUTF8'): boolean { return this.internals._supportedExtensions.includes(extension); }

  /**
   * `_ehloLines`: every SASL mechanism the EHLO reply's AUTH line names (same reason; split as
   * nodemailer splits it). Its own `_supportedAuth` keeps only those it implements (PLAIN, LOGIN,
   * CRAM-MD5, XOAUTH2), and a refusal must list all that were offered (CRAM-MD5 DIGEST-MD5).
   */
  get authMechanisms(): readonly string[] {
    const line = (this.internals._ehloLines ?? []).find((l) => /^AUTH[\s=]/i.test(l));
    return line ? [...new Set(line.slice(5).split(/[\s=]+/).filter(Boolean).map((m) => m.toUpperCase()))] : [];
  }

  /** `_socket`: after STARTTLS, the TLS socket (for its verification result and protocol); no public handle. */
  get socket(): TLSSocket | Socket | undefined { return this.internals._socket || undefined; }
}
