// DKIM signing of mail that leaves (RFC 6376, relaxed/relaxed; RFC 8463 for Ed25519), done by
// mailauth's dkimSign. Runs at each delivery attempt to an smtp destination, after sender
// rewriting, on the message as it leaves: the stored copy is never changed, so a retry or a
// second recipient batch signs the stored (unsigned) message again and signatures never stack.
// Only the header section is held in memory; the body is read once to hash and again to send.
import { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import addressparser from 'nodemailer/lib/addressparser';
import { readHead } from '../cleanup/sender-rewrite.js';
import type { OutgoingMessage } from '../mail/delivery.js';
import { parseTags, type DkimAlgorithm } from './key.js';

/** One [[dkim]] as the delivery thread gets it: plain values (the key as PEM), no KeyObject. */
export interface DkimSigner {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKey: string;
  readonly headers: readonly string[];
}

interface HeadFacts {
  /** The domains of the From: addresses, A-labels, lower case. */
  readonly fromDomains: ReadonlySet<string>;
  /** "d\0s" of every DKIM-Signature already present. */
  readonly signed: ReadonlySet<string>;
}

const UTF8 = new TextDecoder('utf-8', { fatal: false });

/** Unfolded fields of a header section (latin1 text): [lower-case name, value]. */
function fields(head: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of head.split('\r\n')) {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1]![1] += line;
    else if (line.includes(':')) out.push([line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1)]);
  }
  return out;
}

function headFacts(head: Buffer): HeadFacts {
  const fromDomains = new Set<string>();
  const signed = new Set<string>();
  for (const [name, value] of fields(head.toString('latin1'))) {
    if (name === 'from') {
      const text = UTF8.decode(Buffer.from(value, 'latin1'));
      for (const a of addressparser(text, { flatten: true })) {
        const domain = a.address.includes('@') ? domainToASCII(a.address.slice(a.address.lastIndexOf('@') + 1)).toLowerCase() : '';
        if (domain) fromDomains.add(domain.replace(/\.$/, ''));
      }
    } else if (name === 'dkim-signature') {
      const tags = parseTags(value);
      signed.add(`${tags.get('d')?.toLowerCase()}\0${tags.get('s')?.toLowerCase()}`);
    }
  }
  return { fromDomains, signed };
}

/**
 * Which signers apply: the From: domain equals their domain exactly (a subdomain needs its own
 * [[dkim]]), and no DKIM-Signature with the same d= and s= is there yet. Mail with authors in
 * several domains is not signed: no one domain speaks for it.
 */
export function signersFor(head: Buffer, signers: readonly DkimSigner[]): DkimSigner[] {
  const { fromDomains, signed } = headFacts(head);
  if (fromDomains.size !== 1) return [];
  const [domain] = fromDomains;
  return signers.filter((s) => s.domain === domain && !signed.has(`${s.domain}\0${s.selector.toLowerCase()}`));
}

/** DKIM-Signature fields (CRLF-terminated) for the message `body()` gives. Throws when mailauth could not sign. */
export async function signatures(body: () => Readable, signers: readonly DkimSigner[]): Promise<Buffer> {
  const out: string[] = [];
  // mailauth takes one header list per call: one call per distinct list (usually one)
  const groups = new Map<string, DkimSigner[]>();
  for (const s of signers) groups.set(s.headers.join(':'), [...groups.get(s.headers.join(':')) ?? [], s]);
  for (const [headerList, group] of groups) {
    const result = await dkimSign(body(), {
      canonicalization: 'relaxed/relaxed',
      // a colon-separated string: index.d.ts says string[], but lib/tools.js getSigningHeaderLines
      // ignores anything but a string and falls back to its own list
      headerList: headerList as unknown as string[],
      signatureData: group.map((s) => ({ signingDomain: s.domain, selector: s.selector, privateKey: s.privateKey, algorithm: s.algorithm })),
    } as Parameters<typeof dkimSign>[1]);
    if (result.errors.length) {
      const e = result.errors[0] as { signingDomain?: string; selector?: string; err?: Error };
      throw new Error(`DKIM signing for d=${e.signingDomain} s=${e.selector} failed: ${e.err?.message ?? 'unknown error'}`);
    }
    out.push(result.signatures);
  }
  return Buffer.from(out.join(''), 'latin1');
}

async function* prepend(first: Buffer, rest: () => Readable): AsyncGenerator<Buffer> {
  yield first;
  const source = rest();
  try {
    for await (const chunk of source) yield chunk as Buffer;
  } finally {
    source.destroy();
  }
}

/** `msg` with its DKIM-Signature fields in front, or `msg` itself when no [[dkim]] applies. */
export async function signOutgoing(msg: OutgoingMessage, signers: readonly DkimSigner[]): Promise<OutgoingMessage> {
  if (signers.length === 0) return msg;
  const head = await readHead(msg.body());
  const apply = head === undefined ? [] : signersFor(head, signers);
  if (apply.length === 0) return msg;
  const sig = await signatures(() => msg.body(), apply);
  return {
    ...msg,
    size: msg.size + sig.length,
    // objectMode off: a byte stream, like the spool file msg.body() reads
    body: () => Readable.from(prepend(sig, () => msg.body()), { objectMode: false }),
  };
}
