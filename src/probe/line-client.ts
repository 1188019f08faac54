// The line-level SMTP client of `smarthost probe`: one socket, one reply at a time, every raw
// line kept, and a deadline on each wait. Written by hand over node:net / node:tls instead of
// nodemailer's SMTPConnection because a diagnostic walk must see each step's raw reply and stop
// exactly there; SMTPConnection does connect, greeting, EHLO and STARTTLS in one call and
// reports only the last error. It never sends anything the caller did not ask for.
import net from 'node:net';
import tls from 'node:tls';

/** One SMTP reply; `code` 0 marks a line that is not SMTP at all (e.g. TLS bytes or HTTP). */
export interface SmtpReply {
  readonly code: number;
  /** Raw lines as received, without CRLF: ["250-upstream.test", "250 SIZE 1000"]. */
  readonly lines: readonly string[];
}

/** A timeout or a closed connection; network errors keep Node's own `code` (ECONNREFUSED …). */
export class ProbeIoError extends Error {
  constructor(readonly code: 'ETIMEDOUT' | 'ECLOSED' | 'ETOOLONG', message: string) { super(message); }
}

/** Postfix's line_length_limit is 2048; a reply line much longer than that is not SMTP. */
const MAX_PENDING = 64 * 1024;

/** The reply's lines as one, the way Postfix shows a multi-line reply. */
export function replyText(r: SmtpReply): string {
  return r.lines.map((l, i) => (i === 0 ? l : l.replace(/^\d{3}[ -]?/, ''))).join(' ').trim();
}

/** A refusal as the delivery log quotes it: every line whole, joined with spaces (Postfix's way). */
export function refusalText(r: SmtpReply): string {
  return r.lines.join(' ').trim();
}

/** TCP connect with a deadline; rejects with Node's error (ECONNREFUSED …) or ETIMEDOUT. */
export function connectTcp(ip: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return readyWithin(net.connect({ host: ip, port }), 'connect', timeoutMs, `no answer within ${timeoutMs} ms`);
}

/** A TLS handshake over `socket` (STARTTLS, or implicit TLS right after connect). */
export function handshake(socket: net.Socket, options: tls.ConnectionOptions, timeoutMs: number): Promise<tls.TLSSocket> {
  return readyWithin(tls.connect({ ...options, socket }), 'secureConnect', timeoutMs, `TLS handshake not finished within ${timeoutMs} ms`);
}

/** Resolves with `socket` once it emits `ready`; destroys it and rejects on an error or after `timeoutMs` (ETIMEDOUT, `late`). */
function readyWithin<S extends net.Socket>(socket: S, ready: 'connect' | 'secureConnect', timeoutMs: number, late: string): Promise<S> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ProbeIoError('ETIMEDOUT', late));
    }, timeoutMs);
    const onError = (e: Error) => { clearTimeout(timer); socket.destroy(); reject(e); };
    socket.once('error', onError);
    socket.once(ready, () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** Reads replies line by line from one socket; `detach()` hands the socket over for STARTTLS. */
export class LineClient {
  private pending = Buffer.alloc(0);
  private readonly lines: string[] = [];
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** What was said in both directions, "C: …" / "S: …", for debugging a probe. */
  readonly transcript: string[] = [];

  constructor(private socket: net.Socket) { this.attach(socket); }

  get secure(): boolean { return this.socket instanceof tls.TLSSocket; }
  get tlsSocket(): tls.TLSSocket | undefined { return this.socket instanceof tls.TLSSocket ? this.socket : undefined; }

  private readonly onData = (chunk: Buffer) => {
    this.pending = Buffer.concat([this.pending, chunk]);
    let nl: number;
    while ((nl = this.pending.indexOf(0x0a)) >= 0) {
      const line = this.pending.subarray(0, nl).toString('utf8').replace(/\r$/, '');
      this.pending = this.pending.subarray(nl + 1);
      this.lines.push(line);
      this.transcript.push(`S: ${line}`);
    }
    if (this.pending.length > MAX_PENDING) this.fail(new ProbeIoError('ETOOLONG', 'the server sent a line longer than 64 KiB'));
    this.wake?.();
  };
  private readonly onError = (e: Error) => this.fail(e);
  private readonly onClose = () => this.fail(new ProbeIoError('ECLOSED', 'the server closed the connection'));

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('error', this.onError);
    s.on('close', this.onClose);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake?.();
  }

  /** Reads one complete (possibly multi-line) reply within `timeoutMs`. */
  async read(timeoutMs: number): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    for (;;) {
      const line = await this.nextLine(deadline, timeoutMs);
      lines.push(line);
      const m = /^(\d{3})([ -]?)/.exec(line);
      if (!m) return { code: 0, lines };        // not SMTP: stop here, the caller explains it
      if (m[2] !== '-') return { code: Number(m[1]), lines };
    }
  }

  private nextLine(deadline: number, timeoutMs: number): Promise<string> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        reject(new ProbeIoError('ETIMEDOUT', `no reply within ${timeoutMs} ms`));
      }, Math.max(0, deadline - Date.now()));
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.nextLine(deadline, timeoutMs).then(resolve, reject);
      };
    });
  }

  /** Sends one command line; `shown` replaces it in the transcript (AUTH data is never kept). */
  send(line: string, shown = line): void {
    this.transcript.push(`C: ${shown}`);
    this.socket.write(line + '\r\n');
  }

  async command(line: string, timeoutMs: number, shown = line): Promise<SmtpReply> {
    this.send(line, shown);
    return this.read(timeoutMs);
  }

  /** Stops reading and returns the socket for a TLS handshake (RFC 3207 §4.2: nothing may be buffered). */
  detach(): net.Socket {
    const s = this.socket;
    s.off('data', this.onData);
    s.off('error', this.onError);
    s.off('close', this.onClose);
    return s;
  }

  /** Continues on the TLS socket that replaced the plain one. */
  upgrade(secure: tls.TLSSocket): void {
    this.socket = secure;
    this.pending = Buffer.alloc(0);
    this.lines.length = 0;
    this.attach(secure);
  }

  close(): void {
    this.socket.destroy();
  }
}
