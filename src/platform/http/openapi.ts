import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { RouteOptions } from 'fastify';
import { PROBLEMS, PROBLEM_TYPE_BASE } from './problem.js';
import { ProblemSchema } from './problem-schema.js';
import type { RouteAuth } from './server.js';

/** A response the route's schema cannot carry (an HTML page, a text body, a WebSocket upgrade): documentation only. */
export interface DocumentedResponse {
  readonly description: string;
  /** Media type of the body; none for an empty body. */
  readonly contentType?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Responses of the OpenAPI document that are not JSON, by status code (never used to serialise). */
    openapiResponses?: Readonly<Record<string, DocumentedResponse>>;
  }
}

/** The ways a request proves who it is, as OpenAPI security schemes. */
export const SECURITY_SCHEMES = {
  apiKey: {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description:
      "A FrostGate API key, fg_<id>_<secret>. Each operation's security requirement lists the scopes it needs (OpenAPI 3.1 role names; " +
      'also in x-required-scopes); a key needs all of them, and the admin scope implies every other. Never in the query string.',
  },
  scenarioAccessToken: {
    type: 'apiKey',
    in: 'query',
    name: 'token',
    description:
      "The learner's access token from the access_url spawn returned; accepted once, on " +
      'the lab page, which moves it into the fg_access cookie and drops it from the URL.',
  },
  scenarioAccessCookie: {
    type: 'apiKey',
    in: 'cookie',
    name: 'fg_access',
    description: 'The HttpOnly cookie the lab page sets from the access token; scoped to the one scenario.',
  },
  portalSignInLink: {
    type: 'apiKey',
    in: 'query',
    name: 'token',
    description:
      'A one-time sign-in link to the learner portal (POST /v1/portal/links); the portal moves it into the fg_portal cookie and drops it from the URL.',
  },
  portalSessionCookie: {
    type: 'apiKey',
    in: 'cookie',
    name: 'fg_portal',
    description:
      "The learner portal's HttpOnly session cookie, set by a sign-in link, a lab access link or POST /v1/portal/sign-in with an entitlement token: one learner of one tenant.",
  },
  consoleSession: {
    type: 'apiKey',
    in: 'cookie',
    name: 'fg_session',
    description:
      "The admin console's HttpOnly session cookie, set after an OpenID Connect sign-in at /login. It resolves to the same scopes and tenant checks as a key; a state-changing request must also send the session's CSRF token (X-CSRF-Token, from GET /console/session).",
  },
  stripeSignature: {
    type: 'apiKey',
    in: 'header',
    name: 'Stripe-Signature',
    description: "Stripe's HMAC-SHA256 signature of the raw body with the webhook secret (STRIPE_WEBHOOK_SECRET).",
  },
} as const;

export type SecuritySchemeName = keyof typeof SECURITY_SCHEMES;

/** The header a tenant-less principal (dev global key) names its tenant with; a key of another tenant is refused. */
const TENANT_HEADER = {
  name: 'X-Tenant-Id',
  in: 'header',
  required: false,
  description:
    'The tenant the request acts for. A tenant key acts for its own tenant: naming another is 403 ' +
    "tenant_mismatch. The dev/test global key has no tenant and must name one. 2-63 of [a-z0-9-], not 'unknown'.",
  schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{1,62}$' },
} as const;

/** Errors any route of an authentication mode can answer, whatever its handler does. */
const GATE_ERRORS: Readonly<Record<RouteAuth, Readonly<Record<string, string>>>> = {
  public: {
    400: 'A credential in the query string (api_key_in_query)',
  },
  token: {
    400: 'The request does not match the schema, or carries an API key in its query',
    401: 'The token is missing, invalid, expired or already used',
    403: 'The token is for another scenario, or the request came from another site',
  },
  sign_in: {
    400: 'A credential in the query string, or a sign-in the IdP or its callback refused',
  },
  console_page: {
    400: 'A credential in the query string (api_key_in_query)',
  },
  api_key: {
    400:
      'The request does not match the schema (validation_failed, naming each field), ' +
      'carries a key in its query (api_key_in_query), or names an invalid tenant',
    401: 'No valid API key (unauthorized); the body never says why',
    403: 'The key lacks a scope this operation needs (missing_scope) or names another tenant (tenant_mismatch)',
    429: 'A rate limit refused the request (rate_limited); Retry-After and RateLimit-* headers say when to retry',
    503: 'A dependency is unavailable (unavailable); FrostGate fails closed, Retry-After says when to retry',
  },
};

const STATUS_DESCRIPTIONS: Readonly<Record<string, string>> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  400: 'Bad request',
  401: 'Not authenticated',
  403: 'Forbidden',
  404: "Not found in the caller's tenant",
  409: 'Conflicts with the current state',
  410: 'Gone',
  413: 'Payload too large',
  422: 'Well-formed but cannot be processed',
  429: 'Rate limited',
  500: 'Internal error',
  503: 'Unavailable',
  default: 'Any other error',
};

const PROBLEM_JSON = 'application/problem+json';
const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };

/** The one error body, referenced by every error response. */
function problemComponent(): Record<string, unknown> {
  const { properties, ...rest } = JSON.parse(JSON.stringify(ProblemSchema)) as { properties: Record<string, object> } & Record<string, unknown>;
  return {
    ...rest,
    description:
      `RFC 9457 problem details. \`code\` is one of a closed set and never changes meaning; ` +
      `\`type\` is ${PROBLEM_TYPE_BASE}<code> (docs/problems.md); \`detail\` is for people.`,
    properties: { ...properties, code: { type: 'string', enum: Object.keys(PROBLEMS) } },
  };
}

const isErrorStatus = (code: string) => code === 'default' || /^[45]/.test(code);

/**
 * Per route: who may call it (security requirement and x-required-scopes, from the same route
 * config the gate enforces), the errors its gate can answer, and its non-JSON responses. Every
 * registered route is documented (routes marked hidden, WebSocket routes included).
 */
function documentRoute({ schema, url, route }: { schema: RouteOptions['schema']; url: string; route: RouteOptions }): {
  schema: NonNullable<RouteOptions['schema']>;
  url: string;
} {
  const config = route.config ?? {};
  const auth: RouteAuth = config.auth ?? 'api_key';
  const scopes = [...(config.scopes ?? [])];
  const response: Record<string, unknown> = { ...((schema?.response as Record<string, unknown> | undefined) ?? {}) };
  for (const [status, doc] of Object.entries(config.openapiResponses ?? {})) {
    const body = doc.contentType?.includes('json') ? { type: 'object' } : { type: 'string' };
    response[status] = doc.contentType
      ? { description: doc.description, content: { [doc.contentType]: { schema: body } } }
      : { description: doc.description, type: 'null' };
  }
  for (const [status, description] of Object.entries({ ...GATE_ERRORS[auth], default: 'Any other error, as RFC 9457 problem+json' })) {
    if (!(status in response)) response[status] = { ...ProblemSchema, description };
  }
  // Public and sign-in routes need nothing; token routes declare their own token; the console's
  // page needs its session; every other route needs a key or a console session with the same scopes.
  const security =
    auth === 'public' || auth === 'sign_in'
      ? []
      : auth === 'api_key'
        ? [{ apiKey: scopes }, { consoleSession: scopes }]
        : auth === 'console_page'
          ? [{ consoleSession: [] }]
          : (schema?.security ?? []);
  return { schema: { ...schema, hide: false, response, security, 'x-required-scopes': scopes } as NonNullable<RouteOptions['schema']>, url };
}

interface OperationObject {
  security?: Array<Record<string, string[]>>;
  parameters?: Array<Record<string, unknown>>;
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>;
}

/** Whole-document pass: errors as problem+json, the tenant header on keyed operations, real response descriptions. */
function finishDocument(doc: Record<string, unknown>): Record<string, unknown> {
  const paths = (doc.paths ?? {}) as Record<string, Record<string, OperationObject>>;
  for (const operations of Object.values(paths)) {
    for (const op of Object.values(operations)) {
      for (const [status, res] of Object.entries(op.responses ?? {})) {
        if (res.description === 'Default Response') res.description = STATUS_DESCRIPTIONS[status] ?? `HTTP ${status}`;
        const json = res.content?.['application/json'] as { schema?: { title?: string } } | undefined;
        if (isErrorStatus(status) && json && res.content) {
          const { 'application/json': _, ...others } = res.content;
          res.content = { [PROBLEM_JSON]: json.schema?.title === 'Problem' ? { schema: PROBLEM_REF } : json, ...others };
        }
      }
      if (op.security?.some((s) => 'apiKey' in s)) op.parameters = [...(op.parameters ?? []), { $ref: '#/components/parameters/TenantId' }];
    }
  }
  const components = (doc.components ?? {}) as Record<string, unknown>;
  return {
    ...doc,
    components: {
      ...components,
      schemas: { ...((components.schemas as object | undefined) ?? {}), Problem: problemComponent() },
      parameters: { ...((components.parameters as object | undefined) ?? {}), TenantId: TENANT_HEADER },
    },
  };
}

/** The @fastify/swagger options of a role's server: OpenAPI 3.1, served at /openapi.json. */
export function swaggerOptions(info: { role: string; version: string }): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'FrostGate API',
        version: info.version,
        description:
          `Role: ${info.role}. Errors are RFC 9457 application/problem+json with a stable code (docs/problems.md). Each operation names ` +
          `the scopes its key needs in its security requirement and in x-required-scopes; operationIds are stable across releases.`,
      },
      components: { securitySchemes: SECURITY_SCHEMES },
      security: [{ apiKey: [] }],
    },
    transform: documentRoute,
    transformObject: ({ openapiObject }: { openapiObject?: unknown }) => finishDocument(openapiObject as Record<string, unknown>),
  } as FastifyDynamicSwaggerOptions;
}
