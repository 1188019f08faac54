// DKIM signing of mail that leaves: which [[dkim]] keys apply to a message, and the message with
// their DKIM-Signature fields in front (signer.ts makes them). Runs at each delivery attempt to
// an smtp destination, after sender rewriting, on the message as it leaves: the stored copy is
// never changed, so a retry or a second recipient batch signs the stored (unsigned) message
// again and signatures never stack. Only the header section is held in memory; the body is
// read once to hash and again to send.
import crypto, { type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';
import { foldLongLines } from '../mail/line-fold.js';
import type { OutgoingMessage } from '../mail/delivery.js';
import { headerFields, readHead } from '../mail/header-section.js';
import { parseTags, type DkimAlgorithm } from './key.js';
import { dkimSignature, RelaxedBodyHash } from './signer.js';

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

function headFacts(head: Buffer): HeadFacts {
  const fromDomains = new Set<string>();
  const signed = new Set<string>();
  for (const { name, raw } of headerFields(head.toString('latin1'))) {
    const value = raw.slice(raw.indexOf(':') + 1).replace(/\r\n/g, '');
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

const keys = new WeakMap<DkimSigner, KeyObject>();

/** The signer's key, parsed once per signer object (the delivery thread keeps its list). */
function keyOf(s: DkimSigner): KeyObject {
  let key = keys.get(s);
  if (!key) keys.set(s, key = crypto.createPrivateKey(s.privateKey));
  return key;
}

/** The relaxed SHA-256 body hash of the message `body()` gives, whose header section is `head`. */
async function bodyHash(body: Readable, head: Buffer): Promise<string> {
  const hash = new RelaxedBodyHash();
  let skip = head.length;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      if (skip >= buf.length) { skip -= buf.length; continue; }
      hash.update(skip > 0 ? buf.subarray(skip) : buf);
      skip = 0;
    }
  } finally {
    body.destroy();
  }
  return hash.digest();
}

/** DKIM-Signature fields (CRLF-terminated) for the message: one body hash, one field per signer. */
export async function signatures(head: Buffer, body: Readable, signers: readonly DkimSigner[], now = new Date()): Promise<Buffer> {
  const bh = await bodyHash(body, head);
  const fields = headerFields(head.toString('latin1'));
  const out = signers.map((s) => dkimSignature(fields, bh, { ...s, key: keyOf(s) }, now));
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
export async function signOutgoing(given: OutgoingMessage, signers: readonly DkimSigner[]): Promise<OutgoingMessage> {
  if (signers.length === 0) return given;
  // sign what will be sent: lines over 998 octets are broken now, not after the hash
  // (the transport's own pass then finds nothing to break)
  const msg: OutgoingMessage = { ...given, body: () => foldLongLines(given.body()) };
  const head = await readHead(msg.body());
  const apply = head === undefined ? [] : signersFor(head, signers);
  if (apply.length === 0) return given;
  const sig = await signatures(head!, msg.body(), apply);
  return {
    ...msg,
    size: msg.size + sig.length,
    // objectMode off: a byte stream, like the spool file msg.body() reads
    body: () => Readable.from(prepend(sig, () => msg.body()), { objectMode: false }),
  };
}
