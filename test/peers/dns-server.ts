// A tiny authoritative DNS server for tests: UDP on 127.0.0.1, port 0, answering
// from a fixed table. Names not in the table get NXDOMAIN, names without the
// asked type get NOERROR with no answers (NODATA), SERVFAIL entries get SERVFAIL.
// Every question is recorded so tests can see what the resolver asked.
// Built on dns-packet for the wire format; the answering logic is ours because it
// is a dozen lines and the test needs to control every rcode.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';

export interface DnsRecords {
  [name: string]: {
    MX?: Array<{ preference: number; exchange: string }>;
    A?: string[];
    AAAA?: string[];
    /** Each record as one string, or as its character-strings (a long DKIM key is several). */
    TXT?: Array<string | string[]>;
    SERVFAIL?: boolean;
  };
}

export interface DnsServer {
  /** "127.0.0.1:PORT", ready for resolverFor([address]) or dns.Resolver#setServers. */
  readonly address: string;
  readonly port: number;
  /** Every question received, in order; names lower-cased without the trailing dot. */
  readonly queries: Array<{ name: string; type: string }>;
  close(): Promise<void>;
}

// RFC 1035 §4.1.1 RCODE values, carried in the low 4 bits of the flags word.
const NOERROR = 0;
const SERVFAIL = 2;
const NXDOMAIN = 3;

const canonical = (name: string) => name.toLowerCase().replace(/\.$/, '');

export async function startDnsServer(records: DnsRecords): Promise<DnsServer> {
  const table = new Map(Object.entries(records).map(([name, rrs]) => [canonical(name), rrs]));
  const queries: Array<{ name: string; type: string }> = [];
  const socket = dgram.createSocket('udp4');

  socket.on('message', (msg, rinfo) => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: a real server would drop it too
    }
    if (query.type !== 'query') return;
    const questions = query.questions ?? [];
    for (const q of questions) queries.push({ name: canonical(q.name), type: q.type });
    const { rcode, answers } = answer(table, questions[0]);
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions,
      answers,
    });
    socket.send(response, rinfo.port, rinfo.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function answer(table: Map<string, DnsRecords[string]>, q: Question | undefined): { rcode: number; answers: Answer[] } {
  if (!q) return { rcode: NOERROR, answers: [] };
  const name = canonical(q.name);
  const rrs = table.get(name);
  if (!rrs) return { rcode: NXDOMAIN, answers: [] };
  if (rrs.SERVFAIL) return { rcode: SERVFAIL, answers: [] };
  const ttl = 60;
  switch (q.type) {
    case 'MX':
      return { rcode: NOERROR, answers: (rrs.MX ?? []).map((mx) => ({ type: 'MX', name: q.name, ttl, data: { preference: mx.preference, exchange: mx.exchange } })) };
    case 'A':
    case 'AAAA':
      return { rcode: NOERROR, answers: (rrs[q.type] ?? []).map((ip) => ({ type: q.type as 'A' | 'AAAA', name: q.name, ttl, data: ip })) };
    case 'TXT':
      return { rcode: NOERROR, answers: (rrs.TXT ?? []).map((t) => ({ type: 'TXT' as const, name: q.name, ttl, data: typeof t === 'string' ? t : t.map((s) => Buffer.from(s)) })) };
    default:
      return { rcode: NOERROR, answers: [] };
  }
}
