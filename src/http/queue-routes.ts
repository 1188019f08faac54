// The queue over HTTP: the same selection and JSON shape as `smarthost queue
// --json` (queue/filter.ts), and the same operations as its verbs.
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { parseDuration } from '../config/units.js';
import { entryFilter, FilterError, STATES, toJson } from '../queue/filter.js';
import { splitMessage } from '../mail/header-section.js';
import type { QueueEntry } from '../queue/spool.js';
import { fail } from './http-server.js';

export type QueueOp = 'flush' | 'hold' | 'release' | 'delete';

export interface QueueAccess {
  list(): Promise<QueueEntry[]>;
  get(id: string): Promise<QueueEntry | undefined>;
  /** The message bytes as stored. */
  open(id: string): Readable;
  act(op: QueueOp, ids: readonly string[] | 'ALL'): Promise<{ readonly done: readonly string[]; readonly missing: readonly string[] }>;
}

const ID = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9A-F]{10,24}$' } } } as const;
const STRINGS = { type: 'array', items: { type: 'string', maxLength: 320 }, maxItems: 50 } as const;
const RECIPIENT = {
  type: 'object', properties: {
    address: { type: 'string' }, state: { type: 'string' }, attempts: { type: 'integer' },
    next_attempt: { type: ['string', 'null'] }, last_reply: { type: ['string', 'null'] },
  },
} as const;
const MESSAGE = {
  type: 'object', properties: {
    id: { type: 'string' }, from: { type: 'string' }, size: { type: 'integer' }, arrived: { type: 'string' }, held: { type: 'boolean' },
    recipients: { type: 'array', items: RECIPIENT },
  },
} as const;
const ACTION = { type: 'object', properties: { done: { type: 'array', items: { type: 'string' } }, missing: { type: 'array', items: { type: 'string' } } } } as const;

/** The first `max` bytes of a stream (the message's header and the start of its body). */
async function head(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n >= max) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, max);
}

export function registerQueue(app: FastifyInstance, q: QueueAccess): void {
  registerList(app, q);
  registerMessage(app, q);
  registerActions(app, q);
}

/** GET /api/v1/queue: the selection of `smarthost queue --json` (state, from, to, older_than). */
function registerList(app: FastifyInstance, q: QueueAccess): void {
  app.get<{ Querystring: { state?: string[]; from?: string[]; to?: string[]; older_than?: string } }>('/api/v1/queue', {
    schema: {
      summary: 'List queued messages (the `smarthost queue --json` shape)',
      querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'array', items: { type: 'string', enum: [...STATES] } }, from: STRINGS, to: STRINGS, older_than: { type: 'string', maxLength: 20 } } },
      response: { 200: { type: 'array', items: MESSAGE } },
    },
  }, async (req, reply) => {
    let olderThanMs: number | undefined;
    if (req.query.older_than !== undefined) {
      const ms = parseDuration(req.query.older_than);
      if (typeof ms === 'string') return fail(reply, 400, 'bad_request', `querystring.older_than: ${ms}`, { field: 'querystring.older_than' });
      olderThanMs = ms;
    }
    let match;
    try {
      match = entryFilter({ from: req.query.from ?? [], to: req.query.to ?? [], state: req.query.state ?? [], ...(olderThanMs !== undefined ? { olderThanMs } : {}) });
    } catch (e) {
      if (e instanceof FilterError) return fail(reply, 400, 'bad_request', `querystring.${e.option}: ${e.message}`, { field: `querystring.${e.option}` });
      throw e;
    }
    const all = await q.list();
    return (match ? all.filter(match) : all).map(toJson);
  });
}

/** One message: its state with the header and the start of the body, or the whole of it as stored. */
function registerMessage(app: FastifyInstance, q: QueueAccess): void {
  app.get<{ Params: { id: string } }>('/api/v1/queue/:id', {
    schema: { summary: 'One message: status per recipient, client, header and the start of the body', params: ID },
  }, async (req, reply) => {
    const e = await q.get(req.params.id);
    if (!e) return fail(reply, 404, 'not_found', `no message ${req.params.id} in the queue (delivered, deleted, or never queued)`);
    const bytes = await head(q.open(e.envelope.id), 64 * 1024);
    const parts = splitMessage(bytes);
    const headers = parts.head.toString('utf8').replace(/\r\n$/, '');
    const preview = parts.body.subarray(0, 4096).toString('utf8');
    return { ...toJson(e), client: e.envelope.client, headers, preview, truncated: e.envelope.size > bytes.length };
  });

  app.get<{ Params: { id: string }; Querystring: { download?: boolean } }>('/api/v1/queue/:id/raw', {
    schema: { summary: 'The message as queued (message/rfc822)', params: ID, querystring: { type: 'object', properties: { download: { type: 'boolean' } } } },
  }, async (req, reply) => {
    const e = await q.get(req.params.id);
    if (!e) return fail(reply, 404, 'not_found', `no message ${req.params.id} in the queue`);
    reply.type('message/rfc822');
    if (req.query.download) reply.header('Content-Disposition', `attachment; filename="${e.envelope.id}.eml"`);
    return reply.send(q.open(e.envelope.id));
  });
}

/** The queue verbs: hold, release, flush and delete one message; flush them all. */
function registerActions(app: FastifyInstance, q: QueueAccess): void {
  for (const op of ['hold', 'release', 'flush'] as const) {
    app.post<{ Params: { id: string } }>(`/api/v1/queue/:id/${op}`, {
      schema: { summary: `${op} one message`, params: ID, response: { 200: ACTION } },
    }, async (req, reply) => {
      const r = await q.act(op, [req.params.id]);
      if (r.missing.length) return fail(reply, 404, 'not_found', `no message ${req.params.id} in the queue`);
      return r;
    });
  }
  app.delete<{ Params: { id: string } }>('/api/v1/queue/:id', {
    schema: { summary: 'Delete one message (no bounce is sent)', params: ID, response: { 200: ACTION } },
  }, async (req, reply) => {
    const r = await q.act('delete', [req.params.id]);
    if (r.missing.length) return fail(reply, 404, 'not_found', `no message ${req.params.id} in the queue`);
    return r;
  });
  app.post('/api/v1/queue/flush', {
    schema: { summary: 'Try every deferred message now (held ones stay held)', response: { 200: ACTION } },
  }, async () => q.act('flush', 'ALL'));
}
