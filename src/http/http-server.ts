// [http]: the JSON API under /api/v1/ and the web console at /, one fastify
// instance. Every /api/v1/ request but the OpenAPI document needs a bearer token
// (no cookies, so no other site can act with a console's token: there is no
// ambient credential to ride on, and no CORS header is ever sent). Failed tokens
// are throttled per client address; read-only tokens may only GET; every change
// is logged with the token's name.
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { AuthThrottle } from '../auth/throttle.js';
import type { HttpConfig } from '../config/types.js';
import type { MailLog } from '../maillog/maillog.js';
import { serveConsole } from './console.js';
import { registerEvents, type LiveStats } from './events.js';
import { registerMessages, type Submitter } from './messages.js';
import { registerOps, type Operations } from './ops.js';
import { registerQueue, type QueueAccess } from './queue-routes.js';
import type { TokenEntry, TokenStore } from './tokens.js';

export interface HttpDeps {
  readonly config: HttpConfig;
  /** PEM key and certificate when [http] tls = true. */
  readonly cert?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  readonly tokens: TokenStore;
  readonly log: MailLog;
  readonly queue: QueueAccess;
  readonly submit: Submitter;
  readonly ops: Operations;
  readonly stats: LiveStats;
  readonly version: string;
  /** Every answered request, for metrics: the route pattern, never the raw URL (ids would explode the label set). */
  readonly observe: (route: string, method: string, status: number) => void;
}

declare module 'fastify' {
  interface FastifyRequest { token: TokenEntry | null }
}

/** A JSON error body: `error` is a stable word for programs, `message` a sentence for people. */
export function fail(reply: FastifyReply, status: number, error: string, message: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error, message, ...extra });
}

const isApi = (url: string) => url.startsWith('/api/');
const PUBLIC = new Set(['/api/v1/openapi.json']);

function authenticate(deps: HttpDeps, throttle: AuthThrottle) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    if (!isApi(path) || PUBLIC.has(path)) return;
    const wait = throttle.retryAfterMs(req.ip);
    if (wait > 0) {
      reply.header('Retry-After', String(Math.ceil(wait / 1000)));
      return fail(reply, 429, 'too_many_failures', `too many requests with a wrong token from ${req.ip}; try again in ${Math.ceil(wait / 1000)} s`);
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const entry = m ? deps.tokens.verify(m[1]!) : undefined;
    if (!entry) {
      throttle.fail(req.ip);
      const why = !req.headers.authorization ? 'no Authorization header' : !m ? 'not a Bearer token' : 'unknown token';
      deps.log.apiAuthFailed(req.ip, path, why);
      reply.header('WWW-Authenticate', 'Bearer realm="smarthost"');
      const problem = deps.tokens.problem();
      return fail(reply, 401, 'unauthorized', problem ? `tokens cannot be checked: ${problem}`
        : `${why}: send "Authorization: Bearer TOKEN" with a token from \`smarthost token add NAME\``);
    }
    if (entry.readOnly && req.method !== 'GET' && req.method !== 'HEAD') {
      return fail(reply, 403, 'read_only', `token ${entry.name} is read-only: it may only GET`);
    }
    req.token = entry;
  };
}

/** Validation, size and parse errors as `400 {error, field, message}`; anything else 500 without internals. */
function errorHandler(deps: HttpDeps) {
  return (e: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (e.validation) {
      const v = e.validation[0]!;
      const missing = (v.params as { missingProperty?: string }).missingProperty;
      const where = [e.validationContext ?? 'body', ...v.instancePath.split('/').filter(Boolean), ...(missing ? [missing] : [])].join('.');
      return fail(reply, 400, 'bad_request', `${where}: ${v.message ?? 'invalid'}`, { field: where });
    }
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return fail(reply, 413, 'too_large', `the request is larger than ${deps.config.bodyLimit} bytes (a message of limits.message_size, base64-encoded)`);
    }
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return fail(reply, 415, 'unsupported_media_type', 'send application/json or message/rfc822');
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return fail(reply, e.statusCode, 'bad_request', e.message);
    deps.log.warning(`http: ${req.method} ${req.url.split('?')[0]}: ${e.message}`);
    return fail(reply, 500, 'internal', 'the request failed inside smarthost; the log has the details');
  };
}

export async function buildHttp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.config.bodyLimit,
    requestTimeout: 120_000,
    // unknown fields are refused (400), not silently dropped: a typo must not send a different message
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    ...(deps.cert ? { https: { key: deps.cert.key, cert: deps.cert.cert } } : {}),
  }) as unknown as FastifyInstance;
  const throttle = new AuthThrottle(deps.config.authFailures);
  app.decorateRequest('token', null);
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('message/rfc822', { parseAs: 'buffer', bodyLimit: deps.config.bodyLimit }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler(deps));
  app.setNotFoundHandler((req, reply) => fail(reply, 404, 'not_found', `no such endpoint: ${req.method} ${req.url.split('?')[0]}`));
  app.addHook('onRequest', authenticate(deps, throttle));
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('Cache-Control', 'no-store');
    if (req.token && req.method !== 'GET' && req.method !== 'HEAD') {
      deps.log.apiAction(req.token.name, req.ip, req.method, req.url.split('?')[0]!, reply.statusCode);
    }
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    deps.observe(req.routeOptions.url ?? 'unmatched', req.method, reply.statusCode);
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'smarthost API', version: deps.version, description: 'Queue, sending, live log and upstream checks of a smarthost relay.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  registerQueue(app, deps.queue);
  registerMessages(app, deps.submit);
  registerEvents(app, deps.log, deps.stats);
  registerOps(app, deps.ops);
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  serveConsole(app);
  await app.ready();
  return app;
}

export interface HttpListener {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function listenHttp(deps: HttpDeps): Promise<HttpListener> {
  const app = await buildHttp(deps);
  await app.listen({ host: deps.config.host, port: deps.config.port });
  const a = app.server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    port: a.port,
    url: `${deps.cert ? 'https' : 'http'}://${host}:${a.port}/`,
    // requests under way finish (a message being committed gets its answer); idle keep-alives are dropped
    close: async () => { await app.close(); },
  };
}
