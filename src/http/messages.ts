// POST /api/v1/messages: a JSON message composed with nodemailer's MailComposer,
// or a raw message/rfc822 with its envelope in the query. 202 only once the
// message is committed, exactly as after SMTP's 250 (the same intake and spool).
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import MailComposer from 'nodemailer/lib/mail-composer';
import addressparser from 'nodemailer/lib/addressparser';
import { fail } from './http-server.js';

export interface ApiSubmission {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly message: Buffer;
  /** A raw message from the client: missing Date/Message-ID/From are added and Bcc removed, as for sendmail. */
  readonly raw: boolean;
  readonly clientIp: string;
  readonly token: string;
}

export type SubmitOutcome =
  | { readonly ok: true; readonly id: string }
  | { readonly ok: false; readonly status: number; readonly error: string; readonly message: string; readonly field?: string };

export interface Submitter {
  submit(s: ApiSubmission): Promise<SubmitOutcome>;
  /** Idempotency-Key → the earlier outcome, kept 24 h (undefined: not seen). */
  readonly idempotency: {
    run(key: string, fingerprint: string, fn: () => Promise<SubmitOutcome>): Promise<{ outcome: SubmitOutcome; replayed: boolean } | { conflict: true }>;
  };
  readonly limits: { readonly messageSize: number; readonly recipients: number };
}

const ADDRESS = { anyOf: [{ type: 'string', minLength: 3, maxLength: 998 }, { type: 'object', required: ['address'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 200 }, address: { type: 'string', maxLength: 320 } } }] } as const;
const ADDRESSES = { anyOf: [ADDRESS, { type: 'array', items: ADDRESS, maxItems: 1000 }] } as const;
const JSON_MESSAGE = {
  type: 'object', additionalProperties: false, required: ['from'],
  properties: {
    from: ADDRESS, to: ADDRESSES, cc: ADDRESSES, bcc: ADDRESSES, reply_to: ADDRESSES,
    subject: { type: 'string', maxLength: 998 }, text: { type: 'string' }, html: { type: 'string' },
    attachments: {
      type: 'array', maxItems: 100, items: {
        type: 'object', additionalProperties: false, required: ['filename', 'content'],
        properties: {
          filename: { type: 'string', minLength: 1, maxLength: 255 }, content: { type: 'string', description: 'base64' },
          content_type: { type: 'string', maxLength: 255 }, content_id: { type: 'string', maxLength: 255 },
        },
      },
    },
    headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 998 }, maxProperties: 100 },
    envelope: {
      type: 'object', additionalProperties: false,
      properties: { from: { type: 'string', maxLength: 320 }, to: { type: 'array', items: { type: 'string', maxLength: 320 }, minItems: 1, maxItems: 1000 } },
    },
  },
} as const;

type Addr = string | { name?: string; address: string };
interface JsonMessage {
  from: Addr; to?: Addr | Addr[]; cc?: Addr | Addr[]; bcc?: Addr | Addr[]; reply_to?: Addr | Addr[];
  subject?: string; text?: string; html?: string;
  attachments?: Array<{ filename: string; content: string; content_type?: string; content_id?: string }>;
  headers?: Record<string, string>;
  envelope?: { from?: string; to?: string[] };
}

/** An envelope address: ASCII, one @, no spaces, brackets or quotes (quoted local parts go through SMTP). */
const ENVELOPE_ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

class FieldError extends Error { constructor(readonly field: string, message: string) { super(message); } }

/** The bare addresses of one field ("Name <a@b>", {name, address}, or a list of them). */
function addressesOf(field: string, v: Addr | Addr[] | undefined): string[] {
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return list.flatMap((a, i) => {
    const where = Array.isArray(v) ? `${field}[${i}]` : field;
    const given = typeof a === 'string' ? a : a.address;
    const found = typeof a === 'string' ? addressparser(a, { flatten: true }).map((p) => p.address) : [a.address];
    if (!found.length || found.some((f) => !ENVELOPE_ADDRESS.test(f))) {
      throw new FieldError(where, `"${given}" is not an address (write local@domain or "Name <local@domain>")`);
    }
    return found;
  });
}

function unique(list: readonly string[]): string[] {
  const seen = new Set<string>();
  return list.filter((a) => { const k = a.toLowerCase(); if (seen.has(k)) return false; seen.add(k); return true; });
}

async function compose(m: JsonMessage): Promise<{ sender: string; recipients: string[]; message: Buffer }> {
  const sender = m.envelope?.from ?? addressesOf('body.from', m.from)[0]!;
  if (m.envelope?.from !== undefined && m.envelope.from !== '' && !ENVELOPE_ADDRESS.test(m.envelope.from)) {
    throw new FieldError('body.envelope.from', `"${m.envelope.from}" is not an address`);
  }
  const listed = [...addressesOf('body.to', m.to), ...addressesOf('body.cc', m.cc), ...addressesOf('body.bcc', m.bcc)];
  addressesOf('body.reply_to', m.reply_to);
  (m.envelope?.to ?? []).forEach((a, i) => { if (!ENVELOPE_ADDRESS.test(a)) throw new FieldError(`body.envelope.to[${i}]`, `"${a}" is not an address`); });
  const recipients = unique(m.envelope?.to ?? listed);
  if (!recipients.length) throw new FieldError('body.to', 'no recipient: give to, cc, bcc or envelope.to');
  const attachments = (m.attachments ?? []).map((a, i) => {
    if (!/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(a.content)) throw new FieldError(`body.attachments[${i}].content`, 'is not base64');
    return { filename: a.filename, content: Buffer.from(a.content, 'base64'), ...(a.content_type ? { contentType: a.content_type } : {}), ...(a.content_id ? { cid: a.content_id } : {}) };
  });
  const composer = new MailComposer({
    from: m.from, ...(m.to ? { to: m.to } : {}), ...(m.cc ? { cc: m.cc } : {}), ...(m.reply_to ? { replyTo: m.reply_to } : {}),
    ...(m.subject !== undefined ? { subject: m.subject } : {}), ...(m.text !== undefined ? { text: m.text } : {}), ...(m.html !== undefined ? { html: m.html } : {}),
    attachments, ...(m.headers ? { headers: m.headers } : {}),
  });
  const message = await new Promise<Buffer>((resolve, reject) => composer.compile().build((e, b) => (e ? reject(e) : resolve(b))));
  return { sender, recipients, message };
}

function rawEnvelope(q: { from?: string; to?: string[] }): { sender: string; recipients: string[] } {
  if (q.from === undefined) throw new FieldError('querystring.from', 'a raw message needs its envelope sender: ?from=ADDRESS (empty for <>)');
  if (q.from !== '' && !ENVELOPE_ADDRESS.test(q.from)) throw new FieldError('querystring.from', `"${q.from}" is not an address`);
  const to = q.to ?? [];
  if (!to.length) throw new FieldError('querystring.to', 'a raw message needs its recipients: ?to=ADDRESS (repeat for more)');
  to.forEach((a, i) => { if (!ENVELOPE_ADDRESS.test(a)) throw new FieldError(`querystring.to[${i}]`, `"${a}" is not an address`); });
  return { sender: q.from, recipients: unique(to) };
}

function fingerprint(req: FastifyRequest): string {
  const h = crypto.createHash('sha256').update(req.headers['content-type'] ?? '').update('\0').update(req.url).update('\0');
  h.update(Buffer.isBuffer(req.body) ? req.body : JSON.stringify(req.body ?? null));
  return h.digest('hex');
}

export function registerMessages(app: FastifyInstance, s: Submitter): void {
  app.post<{ Querystring: { from?: string; to?: string[] } }>('/api/v1/messages', {
    schema: {
      summary: 'Send a message: JSON (composed here) or message/rfc822 with ?from=&to=. 202 once it is as safe as after an SMTP 250.',
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } } },
      querystring: { type: 'object', properties: { from: { type: 'string', maxLength: 320 }, to: { type: 'array', items: { type: 'string', maxLength: 320 }, maxItems: 1000 } } },
      // the JSON schema applies to JSON bodies; message/rfc822 arrives as bytes
      body: { content: { 'application/json': { schema: JSON_MESSAGE }, 'message/rfc822': { schema: {} } } },
      response: { 202: { type: 'object', properties: { id: { type: 'string' } } } },
    },
  }, async (req, reply) => {
    const key = req.headers['idempotency-key'];
    const attempt = () => accept(req, s);
    if (typeof key !== 'string') return answer(reply, await attempt(), false);
    const r = await s.idempotency.run(`${req.token!.name}\0${key}`, fingerprint(req), attempt);
    if ('conflict' in r) return fail(reply, 422, 'idempotency_key_reused', `Idempotency-Key "${key}" was used within 24 h for a different request`);
    return answer(reply, r.outcome, r.replayed);
  });
}

async function accept(req: FastifyRequest<{ Querystring: { from?: string; to?: string[] } }>, s: Submitter): Promise<SubmitOutcome> {
  try {
    const raw = Buffer.isBuffer(req.body);
    const m = raw ? { ...rawEnvelope(req.query), message: req.body as Buffer } : await compose(req.body as JsonMessage);
    if (m.recipients.length > s.limits.recipients) {
      throw new FieldError(raw ? 'querystring.to' : 'body.to', `${m.recipients.length} recipients; at most ${s.limits.recipients} per message (limits.recipients)`);
    }
    if (m.message.length > s.limits.messageSize) {
      return { ok: false, status: 413, error: 'too_large', message: `the message has ${m.message.length} bytes; the limit is ${s.limits.messageSize} (limits.message_size)` };
    }
    return await s.submit({ ...m, raw, clientIp: req.ip, token: req.token!.name });
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, status: 400, error: 'bad_request', message: `${e.field}: ${e.message}`, field: e.field };
    throw e;
  }
}

function answer(reply: FastifyReply, o: SubmitOutcome, replayed: boolean): FastifyReply {
  if (replayed) reply.header('Idempotent-Replayed', 'true');
  if (o.ok) return reply.code(202).send({ id: o.id });
  if (o.status === 503) reply.header('Retry-After', '60');
  return fail(reply, o.status, o.error, o.message, o.field ? { field: o.field } : {});
}
