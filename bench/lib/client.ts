// A minimal raw-socket SMTP client for load generation: as cheap as possible
// so a 2-core machine spends its CPU on the server, not on the client.
// Replies are parsed by lines (multi-line aware) and time-stamped on arrival;
// a message is MAIL+RCPT+DATA pipelined in one write, then body + final dot.
// STARTTLS and AUTH PLAIN are there for the one-message-per-connection bench.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';

export interface Reply { readonly code: number; readonly text: string; /** performance.now() on arrival */ readonly at: number }

type Waiter = { resolve: (r: Reply) => void; reject: (e: Error) => void };

/**
 * The server answered MAIL with 421 and closes the connection, e.g. smarthost's
 * `[limits] messages_per_session` ("too many messages in this session"): a real
 * client opens a new session and sends the message there.
 */
export class SessionEnded extends Error {
  constructor(readonly reply: Reply) {
    super(`MAIL: session ended by the server: "${reply.text}"`);
  }
}

export class SmtpClient {
  private buf = '';
  private lines: string[] = [];
  private ready: Reply[] = [];
  private waiters: Waiter[] = [];
  private failure: Error | undefined;
  private readonly handlers = {
    data: (d: Buffer) => this.onData(d),
    error: (e: Error) => this.fail(e),
    close: () => this.fail(new Error('connection closed by server')),
  };

  private constructor(private socket: net.Socket) {
    socket.setNoDelay(true);
    this.listen(socket);
  }

  private listen(socket: net.Socket): void {
    socket.on('data', this.handlers.data);
    socket.on('error', this.handlers.error);
    socket.on('close', this.handlers.close);
  }

  /** Connects and waits for the 220 greeting. */
  static async connect(port: number): Promise<SmtpClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.off('error', reject); resolve(s); });
      s.once('error', reject);
    });
    const c = new SmtpClient(socket);
    c.expect(await c.reply(), 220, 'greeting');
    return c;
  }

  private onData(d: Buffer): void {
    const at = performance.now();
    this.buf += d.toString('latin1');
    let eol: number;
    while ((eol = this.buf.indexOf('\r\n')) >= 0) {
      const line = this.buf.slice(0, eol);
      this.buf = this.buf.slice(eol + 2);
      this.lines.push(line);
      if (line[3] === '-') continue;          // continuation of a multi-line reply
      const reply = { code: Number(line.slice(0, 3)), text: this.lines.join('\n'), at };
      this.lines = [];
      const w = this.waiters.shift();
      if (w) w.resolve(reply); else this.ready.push(reply);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.waiters.splice(0).forEach((w) => w.reject(e));
  }

  /** The next reply, in order. */
  reply(): Promise<Reply> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /**
   * Writes `data` and resolves with the moment it was fully handed to the
   * kernel: at once if the socket took it synchronously, else when it drained.
   */
  writeTimed(data: Buffer, prefix?: Buffer): Promise<number> {
    const before = performance.now();
    return new Promise((resolve, reject) => {
      let sync = false;
      if (prefix) { this.socket.cork(); this.socket.write(prefix); } // one writev, no copy of data
      this.socket.write(data, (e) => (e ? reject(e) : sync || resolve(performance.now())));
      if (prefix) this.socket.uncork();
      if (this.socket.writableLength === 0) { sync = true; resolve(before); }
    });
  }

  expect(r: Reply, code: number, what: string): void {
    if (r.code !== code) throw new Error(`${what}: expected ${code}, got "${r.text}"`);
  }

  async ehlo(): Promise<void> {
    this.write('EHLO bench.client.test\r\n');
    const r = await this.reply();
    this.expect(r, 250, 'EHLO');
    if (!/PIPELINING/.test(r.text)) throw new Error(`server does not offer PIPELINING:\n${r.text}`);
  }

  /**
   * One transaction; returns the latency from the final dot to the 250 and when it arrived.
   * Throws SessionEnded when the server ends the session at MAIL (nothing was sent).
   * `prefix` (e.g. a header line) is sent just before `message`, in the same write.
   */
  async send(envelope: string, message: Buffer, prefix?: Buffer): Promise<{ latency: number; at: number }> {
    this.write(envelope);
    // one at a time: after a 421 to MAIL the server closes, and RCPT and DATA get no reply
    const mail = await this.reply();
    if (mail.code === 421) throw new SessionEnded(mail);
    this.expect(mail, 250, 'MAIL FROM');
    this.expect(await this.reply(), 250, 'RCPT TO');
    this.expect(await this.reply(), 354, 'DATA');
    const [sent, done] = await Promise.all([this.writeTimed(message, prefix), this.reply()]);
    this.expect(done, 250, 'end of data');
    return { latency: done.at - sent, at: done.at };
  }

  /**
   * STARTTLS, then a full TLS handshake on the same socket: no session is offered for
   * resumption (like a cron job or a PHP script connecting afresh), no certificate check.
   */
  async starttls(): Promise<void> {
    this.write('STARTTLS\r\n');
    this.expect(await this.reply(), 220, 'STARTTLS');
    const plain = this.socket;
    plain.off('data', this.handlers.data);
    plain.off('error', this.handlers.error);
    plain.off('close', this.handlers.close);
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, rejectUnauthorized: false }, () => { s.off('error', reject); resolve(s); });
      s.once('error', reject);
    });
    this.socket = secure;
    this.listen(secure);
    if (secure.isSessionReused()) throw new Error('TLS session was resumed: not a full handshake');
  }

  async authPlain(user: string, password: string): Promise<void> {
    this.write(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}\r\n`);
    this.expect(await this.reply(), 235, 'AUTH PLAIN');
  }

  /** QUIT, then closes the connection; resolves with the reply, or undefined if there was none. */
  async quit(): Promise<Reply | undefined> {
    this.write('QUIT\r\n');
    const r = await this.reply().catch(() => undefined);
    this.destroy();
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** MAIL, RCPT and DATA in one write (PIPELINING). */
export const ENVELOPE = 'MAIL FROM:<bench@client.test>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n';
