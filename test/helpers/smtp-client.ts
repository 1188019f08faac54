// A raw SMTP client for exact byte sequences: send what a test says, read
// replies (multi-line aware), upgrade to TLS on demand. For well-behaved
// clients the tests use nodemailer and swaks instead.
import net from 'node:net';
import tls from 'node:tls';

export interface SmtpReply { code: number; lines: string[]; text: string }

export class RawSmtp {
  private buf = '';
  private waiting: Array<() => void> = [];
  private closed = false;
  private constructor(private socket: net.Socket | tls.TLSSocket) { this.attach(socket); }

  private attach(s: net.Socket) {
    s.on('data', (d: Buffer) => { this.buf += d.toString('latin1'); this.wake(); });
    s.on('close', () => { this.closed = true; this.wake(); });
    s.on('error', () => { this.closed = true; this.wake(); });
  }
  private wake() { this.waiting.splice(0).forEach((w) => w()); }

  static connect(port: number, opts: { tls?: boolean; host?: string; localAddress?: string } = {}): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const host = opts.host ?? '127.0.0.1';
      const local = opts.localAddress ? { localAddress: opts.localAddress } : {};
      const s = opts.tls
        ? tls.connect({ port, host, rejectUnauthorized: false, ...local }, () => resolve(new RawSmtp(s)))
        : net.connect({ port, host, ...local }, () => resolve(new RawSmtp(s)));
      s.once('error', reject);
    });
  }

  write(data: string | Buffer): void { this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data); }

  /** Reads one complete reply (all continuation lines). Rejects on close or timeout. */
  read(timeoutMs = 5000): Promise<SmtpReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs}ms; buffer: ${JSON.stringify(this.buf)}`)), timeoutMs);
      const attempt = () => {
        const lines: string[] = [];
        let pos = 0;
        for (;;) {
          const nl = this.buf.indexOf('\r\n', pos);
          if (nl < 0) break;
          const line = this.buf.slice(pos, nl);
          lines.push(line);
          pos = nl + 2;
          if (/^\d{3}( |$)/.test(line)) {
            this.buf = this.buf.slice(pos);
            clearTimeout(timer);
            return resolve({ code: Number(line.slice(0, 3)), lines, text: lines.join('\n') });
          }
        }
        if (this.closed) { clearTimeout(timer); return reject(new Error(`connection closed; buffer: ${JSON.stringify(this.buf)}`)); }
        this.waiting.push(attempt);
      };
      attempt();
    });
  }

  async cmd(line: string, timeoutMs?: number): Promise<SmtpReply> {
    this.write(line + '\r\n');
    return this.read(timeoutMs);
  }

  /** STARTTLS then TLS handshake on the same socket. */
  async starttls(): Promise<SmtpReply> {
    const r = await this.cmd('STARTTLS');
    if (r.code !== 220) return r;
    const plain = this.socket;
    plain.removeAllListeners('data');
    this.socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: plain, rejectUnauthorized: false }, () => resolve(t));
      t.once('error', reject);
    });
    this.attach(this.socket);
    return r;
  }

  get tlsSocket(): tls.TLSSocket | undefined { return this.socket instanceof tls.TLSSocket ? this.socket : undefined; }

  /** Resolves when the server has closed the connection. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      const check = () => { if (this.closed) { clearTimeout(timer); resolve(); } else this.waiting.push(check); };
      check();
    });
  }

  close(): void { this.socket.destroy(); }
}

/** EHLO, MAIL, RCPT..., DATA, body, final dot: returns the final reply. Body must be dot-stuffed by the caller. */
export async function sendRaw(c: RawSmtp, from: string, to: string[], rawBody: string | Buffer, timeoutMs = 10_000): Promise<SmtpReply> {
  for (const line of [`MAIL FROM:<${from}>`, ...to.map((t) => `RCPT TO:<${t}>`)]) {
    const r = await c.cmd(line);
    if (r.code >= 400) return r;
  }
  const d = await c.cmd('DATA');
  if (d.code !== 354) return d;
  c.write(rawBody);
  return c.read(timeoutMs);
}
