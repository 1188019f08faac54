// The upstream check (probe) and the configuration check over HTTP, for the
// console: the same code as `smarthost probe ROUTE --json` and `smarthost check`.
import type { FastifyInstance } from 'fastify';
import { fail } from './http-server.js';

export interface CheckFinding { readonly level: 'error' | 'warning' | 'note'; readonly message: string; readonly fix: string }

/** The suppression list as the API shows it (events/suppression-list.ts). */
export interface Suppressions {
  list(): ReadonlyArray<{ readonly address: string; readonly dsn: string; readonly reply: string; readonly since: string; readonly expires: string; readonly queueId: string }>;
  remove(address: string): boolean;
}

export interface Operations {
  /** Upstream names `probe` takes: "relay" and each [[route]] name. */
  routes(): readonly string[];
  /** A probe report as `probe --json` prints it, or why the route cannot be probed. */
  probe(route: string | undefined): Promise<{ readonly report: unknown } | { readonly usage: string }>;
  check(): Promise<{ readonly source: string; readonly findings: readonly CheckFinding[] }>;
  readonly suppression: Suppressions;
}

export function registerOps(app: FastifyInstance, ops: Operations): void {
  app.get('/api/v1/routes', { schema: { summary: 'Upstreams that /api/v1/probe can check' } }, async () => ({ routes: ops.routes() }));
  app.post<{ Body: { route?: string } | undefined }>('/api/v1/probe', {
    schema: {
      summary: 'Walk an upstream step by step (smarthost probe --json); ok:false with each step\'s diagnosis and fix when it fails',
      body: { type: ['object', 'null'], additionalProperties: false, properties: { route: { type: 'string', maxLength: 200 } } },
    },
  }, async (req, reply) => {
    const r = await ops.probe(req.body?.route);
    if ('usage' in r) return fail(reply, 400, 'bad_request', r.usage, { field: 'body.route' });
    return r.report;
  });
  app.get('/api/v1/suppressions', { schema: { summary: 'Recipients that bounce at once because the provider refused them as nonexistent' } }, async () =>
    ops.suppression.list().map((s) => ({ address: s.address, dsn: s.dsn, reply: s.reply, since: s.since, expires: s.expires, queue_id: s.queueId })));
  app.delete<{ Params: { address: string } }>('/api/v1/suppressions/:address', {
    schema: { summary: 'Take a recipient off the suppression list', params: { type: 'object', properties: { address: { type: 'string', maxLength: 320 } } } },
  }, async (req, reply) => {
    if (!ops.suppression.remove(req.params.address)) return fail(reply, 404, 'not_found', `<${req.params.address}> is not on the suppression list`);
    return { removed: req.params.address };
  });
  app.get('/api/v1/check', { schema: { summary: 'The configuration and environment check (smarthost check)' } }, async () => ops.check());
}
