// The upstream check (probe) and the configuration check over HTTP, for the
// console: the same code as `smarthost probe ROUTE --json` and `smarthost check`.
import type { FastifyInstance } from 'fastify';
import { fail } from './server.js';

export interface CheckFinding { readonly level: 'error' | 'warning'; readonly message: string; readonly fix: string }

export interface Operations {
  /** Upstream names `probe` takes: "relay" and each [[route]] name. */
  routes(): readonly string[];
  /** A probe report as `probe --json` prints it, or why the route cannot be probed. */
  probe(route: string | undefined): Promise<{ readonly report: unknown } | { readonly usage: string }>;
  check(): Promise<{ readonly source: string; readonly findings: readonly CheckFinding[] }>;
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
  app.get('/api/v1/check', { schema: { summary: 'The configuration and environment check (smarthost check)' } }, async () => ops.check());
}
