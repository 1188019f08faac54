// An MTA-STS policy host for tests: node:https on 127.A.B.C port 443, the port
// RFC 8461 §3.3 fixes (tests run as root), with one certificate from the test
// CA naming mta-sts.DOMAIN for every domain it serves. A random loopback
// address keeps parallel test files apart; the stub DNS points each
// mta-sts.DOMAIN at it. Each domain's answer is scripted (status, media type,
// body, redirect) and every request is recorded. stop()/restart() make an outage.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { issueCert } from './certs.js';

export interface PolicyAnswer {
  readonly body: string;
  /** Default 200. */
  readonly status?: number;
  /** Default "text/plain; charset=utf-8". */
  readonly type?: string;
  readonly location?: string;
}

export interface PolicyServer {
  /** The IPv4 address it listens on (port 443). */
  readonly address: string;
  /** Every request: the Host header and the path. */
  readonly requests: Array<{ host: string; path: string }>;
  /** Replaces a domain's answer; undefined answers 404. */
  set(domain: string, answer: PolicyAnswer | undefined): void;
  /** Stops listening and drops open connections (an outage); restart() listens again on the same address. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** "version: STSv1\r\nmode: …\r\nmx: …\r\nmax_age: …\r\n" */
export function policyText(mode: string, mx: readonly string[], maxAge = 86400, version = 'STSv1'): string {
  return [`version: ${version}`, `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\r\n');
}

export async function startPolicyServer(domains: readonly string[]): Promise<PolicyServer> {
  const pair = issueCert(domains.map((d) => `mta-sts.${d}`));
  const answers = new Map<string, PolicyAnswer>();
  const requests: Array<{ host: string; path: string }> = [];
  const server = https.createServer({ cert: pair.cert, key: pair.key }, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    requests.push({ host, path: req.url ?? '' });
    const answer = host.startsWith('mta-sts.') && req.url === '/.well-known/mta-sts.txt' ? answers.get(host.slice('mta-sts.'.length)) : undefined;
    if (!answer) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n'); return; }
    res.writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'text/plain; charset=utf-8', ...(answer.location ? { location: answer.location } : {}) });
    res.end(answer.body);
  });
  let address = '';
  const listen = (ip: string) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(443, ip, () => { server.off('error', reject); resolve(); });
  });
  for (let tries = 0; !address; tries++) {
    const ip = `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
    try { await listen(ip); address = (server.address() as AddressInfo).address; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries > 20) throw e;
    }
  }
  const stop = () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  return {
    address, requests,
    set: (domain, answer) => { if (answer) answers.set(domain, answer); else answers.delete(domain); },
    stop,
    restart: () => listen(address),
    close: () => (server.listening ? stop() : Promise.resolve()),
  };
}
