// What a port speaks, asked on a new connection the way `smarthost probe` asks it: does it
// expect TLS from the first byte (smtp:// pointed at an smtps:// port, so no greeting came),
// or does it greet in plaintext (smtps:// pointed at a STARTTLS port)? Asked once per address
// and port, then remembered for a while, so a queue full of mail for a misconfigured
// destination does not open two connections per message. Plain node:net/node:tls: one
// handshake or one line, no SMTP dialogue.
import net from 'node:net';
import tls from 'node:tls';
import type { Peer } from './upstream-policy.js';

/** How long an answer is remembered: a configuration fix (or the server's) is seen within this time. */
const REMEMBER_MS = 10 * 60_000;

export class PortSense {
  private readonly answers = new Map<string, { at: number; answer: Promise<boolean | string | undefined> }>();
  constructor(private readonly now: () => number = Date.now) {}

  /** True when a TLS handshake on a new connection succeeds (certificate not checked: only the protocol matters). */
  speaksTls(peer: Peer, timeoutMs: number): Promise<boolean> {
    return this.ask(`tls ${peer.ip}:${peer.port}`, () => handshake(peer, timeoutMs)) as Promise<boolean>;
  }

  /** The greeting line a new plaintext connection gets, if the port speaks plain SMTP. */
  plainGreeting(peer: Peer, timeoutMs: number): Promise<string | undefined> {
    return this.ask(`plain ${peer.ip}:${peer.port}`, () => greeting(peer, timeoutMs)) as Promise<string | undefined>;
  }

  private ask(key: string, how: () => Promise<boolean | string | undefined>): Promise<boolean | string | undefined> {
    const known = this.answers.get(key);
    if (known && this.now() - known.at < REMEMBER_MS) return known.answer;
    const answer = how();
    this.answers.set(key, { at: this.now(), answer });
    return answer;
  }
}

function handshake(peer: Peer, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const servername = net.isIP(peer.host) ? undefined : peer.host;
    const s = tls.connect({ host: peer.ip, port: peer.port, rejectUnauthorized: false, minVersion: 'TLSv1', ...(servername ? { servername } : {}) });
    const done = (ok: boolean) => { clearTimeout(timer); s.destroy(); resolve(ok); };
    const timer = setTimeout(() => done(false), Math.min(timeoutMs, 5000));
    s.once('secureConnect', () => done(true));
    s.once('error', () => done(false));
  });
}

function greeting(peer: Peer, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host: peer.ip, port: peer.port });
    let got = '';
    const done = (line: string | undefined) => { clearTimeout(timer); s.destroy(); resolve(line); };
    const timer = setTimeout(() => done(undefined), Math.min(timeoutMs, 5000));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const end = got.indexOf('\n');
      if (end >= 0) done(/^2\d\d[ -]/.test(got) ? got.slice(0, end).trim() : undefined);
    });
    s.once('error', () => done(undefined));
    s.once('close', () => done(undefined));
  });
}
