import swagger from '@fastify/swagger';
import type { Scope } from '../auth/scopes.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  type onRequestAsyncHookHandler,
} from 'fastify';
import { requestContext } from '../context.js';
import { isDependencyUnavailable } from '../dependency-errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../log.js';
import type { Platform } from '../platform.js';
import { AppError, PROBLEMS, problemBody, withCrowdSecMembers, type ProblemCode } from './problem.js';
import { healthRoutes } from './health-routes.js';
import { swaggerOptions } from './openapi.js';
import { refuseUnsafeInput, useExplainedJsonParser } from './input-guard.js';

export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger, TypeBoxTypeProvider>;

/** How a route is authenticated; the gate refuses anything it does not recognise. */
export type RouteAuth = 'api_key' | 'public' | 'token' | 'sign_in' | 'console_page';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Default 'api_key'. 'public' is honoured only for routes on the gate's public list. */
    auth?: RouteAuth;
    /** Scopes a key needs for this route (all of them); a misspelt scope fails to compile. */
    scopes?: readonly Scope[];
    /** 'crowdsec': errors also carry the members CrowdSec's clients read (bouncer routes; withCrowdSecMembers). */
    errorShape?: 'problem' | 'crowdsec';
  }
}

/** A route as registered, for tests and tooling that must cover every route (see registeredRoutes). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly auth: RouteAuth;
  readonly scopes: readonly Scope[];
}

const ROUTES = new WeakMap<object, RegisteredRoute[]>();

/** Every route the server registered (HEAD twins included), in registration order. */
export function registeredRoutes(app: App): readonly RegisteredRoute[] {
  return ROUTES.get(app) ?? [];
}

export interface AppPlugin {
  readonly name: string;
  readonly plugin: FastifyPluginAsync;
}

export interface ServerOptions {
  /** The auth gate, run before every handler. */
  readonly gate?: onRequestAsyncHookHandler;
  /** Rate limits, run after the gate (they are keyed by the authenticated key and tenant). */
  readonly limiter?: onRequestAsyncHookHandler;
  readonly plugins: readonly AppPlugin[];
  readonly role: string;
  readonly version: string;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

export function requestIdFrom(header: unknown): string {
  return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : newId('req');
}

/** Headers every answer carries; HTML pages may loosen the CSP for their own assets. */
const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Where CrowdSec's bouncers call: a path FrostGate does not serve there still answers in their shape. */
const CROWDSEC_PATHS = /^\/v1\//;

function sendProblem(reply: FastifyReply, code: ProblemCode, detail: string, extensions: Record<string, unknown> = {}): FastifyReply {
  const { request } = reply;
  const body = problemBody(code, detail, request.id, { ...extensions, instance: pathOnly(request.url) });
  const crowdsec = request.routeOptions.url === undefined ? CROWDSEC_PATHS.test(pathOnly(request.url)) : request.routeOptions.config.errorShape === 'crowdsec';
  return reply
    .code(body.status)
    .type('application/problem+json')
    .send(crowdsec ? withCrowdSecMembers(body) : body);
}

function validationProblem(err: FastifyError): { detail: string; errors: Array<{ path: string; message: string }> } {
  const context = err.validationContext ?? 'body';
  const errors = (err.validation ?? []).map((v) => {
    const missing = v.keyword === 'required' ? `/${String((v.params as { missingProperty?: string }).missingProperty ?? '')}` : '';
    const extra = v.keyword === 'additionalProperties' ? `/${String((v.params as { additionalProperty?: string }).additionalProperty ?? '')}` : '';
    const path = `${context}${v.instancePath}${missing}${extra}`;
    const message = v.keyword === 'additionalProperties' ? 'is not an allowed field' : v.keyword === 'required' ? 'is required' : (v.message ?? 'is invalid');
    return { path, message };
  });
  const first = errors[0];
  return { detail: first ? `${first.path} ${first.message}` : err.message, errors };
}

export function handleError(err: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply, platform: Pick<Platform, 'log'>): FastifyReply {
  if (err instanceof AppError) {
    for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    return sendProblem(reply, err.code, err.detail, err.extensions);
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const { detail, errors } = validationProblem(fe);
    return sendProblem(reply, 'validation_failed', detail, { errors });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendProblem(reply, 'payload_too_large', `request body is larger than the limit of ${request.routeOptions.bodyLimit ?? 0} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendProblem(
        reply,
        'unsupported_media_type',
        `content type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted; send application/json`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return sendProblem(reply, 'malformed_json', 'body is empty but content-type is application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return sendProblem(reply, 'bad_request', 'content-length does not match the body');
    case 'FST_ERR_BAD_URL':
      return sendProblem(reply, 'bad_request', 'the path is not valid percent-encoded UTF-8');
  }
  // Only the body parser's own error: a SyntaxError from parsing stored data is the server's fault (500).
  if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return sendProblem(reply, 'malformed_json', `body is not valid JSON: ${fe.message}`);
  }
  if (isDependencyUnavailable(err)) {
    // A dependency went away mid-request: not a bug (500) but an outage; the client retries, and a
    // retry with the same event_id is decided once even if the commit did land before the loss.
    platform.log.warn({ err }, 'a dependency is unavailable; answering 503');
    reply.header('retry-after', '2');
    return sendProblem(reply, 'unavailable', 'a dependency of this service is temporarily unavailable; retry shortly');
  }
  const status = fe.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code = (Object.keys(PROBLEMS) as ProblemCode[]).find((c) => PROBLEMS[c].status === status) ?? 'bad_request';
    return sendProblem(reply, code, fe.message);
  }
  platform.log.error({ err }, 'unhandled error while serving a request');
  return sendProblem(reply, 'internal', 'an internal error occurred; the request id identifies it in the server logs');
}

export async function buildServer(platform: Platform, options: ServerOptions): Promise<App> {
  const { config, metrics } = platform;
  const app = Fastify({
    loggerInstance: platform.log,
    // The context mixin adds request_id/tenant_id to every line, so request loggers need no bindings.
    childLoggerFactory: (logger) => logger,
    // One 'request completed' line per request comes from the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    bodyLimit: config.http.bodyLimit,
    trustProxy: config.http.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    // A path the router cannot decode (e.g. an encoded lone surrogate) gets problem+json like any error.
    frameworkErrors: (err, request, reply) => void handleError(err, request, reply, platform),
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Recorded before any plugin registers, so a route added anywhere later is listed too: the auth
  // tests walk this list and prove every non-public route refuses a request without a key.
  const routes: RegisteredRoute[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      routes.push({ method, url: route.url, auth: route.config?.auth ?? 'api_key', scopes: route.config?.scopes ?? [] });
  });

  // JSON is the only body the API takes; anything else is 415 rather than a confusing 400.
  app.removeContentTypeParser('text/plain');
  useExplainedJsonParser(app);

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    requestContext.run({ request_id: request.id }, done);
  });

  // Callback-style hooks: nothing here waits, and every request passes through them (an async
  // hook costs a promise per request).
  app.addHook('onSend', (_request, reply, payload, done) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    request.log.info(
      { method: request.method, path: pathOnly(request.url), route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 },
      'request completed',
    );
    done();
  });

  app.setErrorHandler((err, request, reply) => handleError(err as FastifyError, request, reply, platform));

  app.setNotFoundHandler((request, reply) => {
    const url = pathOnly(request.url);
    const allowed = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => m !== request.method && app.findRoute({ method: m, url }));
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendProblem(reply, 'method_not_allowed', `${request.method} is not allowed on ${url}; allowed: ${allowed.join(', ')}`);
    }
    return sendProblem(reply, 'not_found', `no route ${request.method} ${url}`);
  });

  // Every registered route is in the document, with the scopes the gate enforces (openapi.ts).
  await app.register(swagger, swaggerOptions({ role: options.role, version: options.version }));

  // Auth and limits run before the body is even parsed: an unauthenticated request costs no
  // parsing, and always gets 401 rather than a validation error.
  if (options.gate) app.addHook('onRequest', options.gate);
  if (options.limiter) app.addHook('onRequest', options.limiter);
  // A POST without a body is validated as {} so optional bodies work and missing fields are named.
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined && (request.method === 'POST' || request.method === 'PUT' || request.method === 'PATCH')) request.body = {};
    done();
  });
  // NUL, lone surrogates and runaway nesting, anywhere in any route's input (input-guard.ts): 400 naming the field.
  app.addHook('preValidation', refuseUnsafeInput);

  await app.register(healthRoutes(platform, { role: options.role, version: options.version }));
  app.get(
    '/openapi.json',
    {
      config: { scopes: [], openapiResponses: { 200: { description: 'The OpenAPI 3.1 document', contentType: 'application/json' } } },
      schema: {
        tags: ['meta'],
        operationId: 'getOpenApiDocument',
        summary: "This role's OpenAPI 3.1 document: every route, its scopes and its errors (any valid key)",
      },
    },
    async () => app.swagger(),
  );

  for (const p of options.plugins) await app.register(p.plugin);
  await app.ready();
  return app;
}
