import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Config } from '../../config/config.js';
import { bindTenantToContext } from '../../platform/context.js';
import { tenantIdProblem } from '../../platform/db/tenant-id.js';
import { AppError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { Metrics } from '../../platform/metrics.js';
import { authenticateKey, keyPolicyOf, type AuthFailureReason } from './authenticate-key.js';
import type { KeyResolver } from './key-resolver.js';
import type { Principal } from '../../platform/auth/principal.js';
import { missingScopes } from '../../platform/auth/scopes.js';
import { QUERY_TENANT_PARAM, queryTenantClaims, type BindTenant } from '../../platform/auth/tenant.js';

/**
 * Routes anyone may call. Kept short on purpose, and checked by a test:
 * - liveness and readiness are polled by orchestrators that hold no key, and reveal only up/down;
 * - /metrics is scraped by Prometheus, which is network-restricted in deployments, and carries no
 *   tenant data (labels are routes, statuses and reasons).
 */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['GET /health/live', 'GET /health/ready', 'GET /metrics']);

/**
 * Routes that verify their own short-lived token instead of an API key (a learner's browser
 * holds no key). Each handler refuses a missing or invalid token itself.
 * - the learner's lab (src/forge/access): the page, its assets, the terminal WebSocket, status,
 *   extend, submit, hints, end, reset and the result downloads, each checking the scenario access link (URL once) or the lab
 *   session it opened (an HttpOnly cookie) against the scenario in the path.
 * - the learner portal (src/forge/portal): sign-in with an entitlement token or a one-time
 *   sign-in link, then the portal session cookie; the learner's own labs only.
 */
export const TOKEN_ROUTES: ReadonlySet<string> = new Set<string>([
  'GET /v1/access/:scenario_id',
  'GET /v1/access/:scenario_id/assets/:name',
  'GET /v1/access/:scenario_id/terminal/:device',
  'GET /v1/access/:scenario_id/status',
  'POST /v1/access/:scenario_id/extend',
  'POST /v1/access/:scenario_id/submit',
  'POST /v1/access/:scenario_id/hints',
  'POST /v1/access/:scenario_id/end',
  'GET /v1/access/:scenario_id/results/:name',
  'POST /v1/access/:scenario_id/reset',
  // The learner portal (src/forge/portal): the page shows the sign-in page without a session, its
  // assets are static; every other route checks the portal session (an HttpOnly cookie) itself.
  'GET /v1/portal',
  'GET /v1/portal/assets/:name',
  'POST /v1/portal/sign-in',
  'POST /v1/portal/sign-out',
  'POST /v1/portal/labs',
  'POST /v1/portal/labs/:scenario_id/enter',
  'GET /v1/portal/labs/:scenario_id/results/:name',
  'GET /v1/portal/labs/:scenario_id/certificate',
  // Stripe holds no key: the Stripe-Signature header (HMAC of the raw body) authenticates each event.
  'POST /v1/billing/stripe/webhook',
]);

/**
 * The console's sign-in steps, which no credential can precede (src/core/console): `/` and
 * `/admin` point at the console, /login sends the browser to the IdP, /auth/callback checks its
 * signed sign-in cookie and the IdP's code itself.
 */
export const SIGN_IN_ROUTES: ReadonlySet<string> = new Set<string>(['GET /', 'GET /admin', 'GET /login', 'GET /auth/callback']);

/** The console's page and assets: with a session they are served, without one the browser is sent to /login. */
export const CONSOLE_PAGE_ROUTES: ReadonlySet<string> = new Set<string>(['GET /console', 'GET /console/assets/:name']);

/** Query parameters that look like a credential: refused so keys never sit in URLs or access logs. */
const CREDENTIAL_PARAMS = /(^|[&;])\s*(api[_-]?key|apikey|x-api-key|key|access[_-]?key)\s*=/i;
/** A FrostGate key anywhere in the query, whatever the parameter is called. */
const KEY_IN_QUERY = /fg_[a-z2-9]{12}_/i;
/** Nested percent-encodings undone before looking (a proxy or a framework may decode more than once). */
const MAX_DECODE_PASSES = 8;
const PERCENT_ESCAPE = /%u([0-9a-f]{4})|%([0-9a-f]{2})/gi;

/**
 * The query as a lenient decoder would read it after every layer of encoding: %XX (either case),
 * IIS-style %uXXXX and '+' are undone repeatedly until nothing changes. Malformed escapes stay as
 * they are rather than failing the whole string (decodeURIComponent would throw).
 */
export function decodeQueryLayers(query: string): string {
  let current = query;
  for (let pass = 0; pass < MAX_DECODE_PASSES && (current.includes('%') || current.includes('+')); pass++) {
    const next = current
      .replace(/\+/g, ' ')
      .replace(PERCENT_ESCAPE, (_m, wide: string | undefined, byte: string | undefined) => String.fromCharCode(parseInt(wide ?? byte!, 16)));
    if (next === current) break;
    current = next;
  }
  return current;
}

/** True when the query string carries something that is, or is named like, an API key, however it is encoded. */
export function queryCarriesKey(url: string): boolean {
  const q = url.indexOf('?');
  if (q === -1) return false;
  const query = decodeQueryLayers(url.slice(q + 1));
  return CREDENTIAL_PARAMS.test(query) || KEY_IN_QUERY.test(query);
}

export interface GateDeps {
  readonly config: Pick<Config, 'env' | 'auth' | 'bootstrapTenant'>;
  readonly security: Logger;
  readonly metrics: Pick<Metrics, 'authSuccess' | 'authFailure' | 'failOpenTriggered'>;
  readonly resolver: KeyResolver;
  readonly bindTenant: BindTenant;
  /** Records fail-open passes in the audit ledger (written once the database answers again). */
  readonly onFailOpen?: (tenantId: string, detail: Record<string, unknown>) => void;
  /** Slows, then refuses, sources and key ids that keep seeing invalid keys (see RateLimiter); keys are `key:<id>`. */
  readonly invalidKeyGuard?: { recordInvalidKey(source: string): Promise<{ blocked: boolean; delayMs: number; retryAfterS: number }> };
  /** A console session cookie as a principal (src/core/console), tried when no key is presented. */
  readonly sessions?: (request: FastifyRequest) => Promise<Principal | undefined>;
}

function routeKey(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? ''}`;
}

function headerString(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Tenant named by the X-Tenant-Id header, validated; undefined when absent. */
function claimedTenantHeader(request: FastifyRequest): string | undefined {
  const header = headerString(request, 'x-tenant-id');
  if (header === undefined) return undefined;
  const problem = tenantIdProblem(header);
  if (problem) throw new AppError('invalid_tenant', `X-Tenant-Id: ${problem}`);
  return header;
}

/** A key in the URL is refused before anything else, on every route: URLs end up in access logs. */
function refuseKeyInQuery(request: FastifyRequest, deps: Pick<GateDeps, 'security' | 'metrics'>): never {
  // The URL itself is never logged here (it holds the key); only the route pattern is.
  deps.metrics.authFailure.inc({ reason: 'key_in_query' });
  deps.security.warn(
    { type: 'auth_event', success: false, reason: 'key_in_query', request_id: request.id, route: routeKey(request) },
    'credential in query string refused',
  );
  throw new AppError('api_key_in_query', 'credentials are not accepted in the query string; send the key in the X-API-Key header');
}

/** Routes that take no API key: the public, token and sign-in lists, each only for the mode it declares. */
function needsNoKey(request: FastifyRequest): boolean {
  const mode = request.routeOptions.config.auth ?? 'api_key';
  const key = routeKey(request);
  if (mode === 'public' && PUBLIC_ROUTES.has(key)) return true;
  if (mode === 'token' && TOKEN_ROUTES.has(key)) return true;
  if (mode === 'sign_in' && SIGN_IN_ROUTES.has(key)) return true;
  return request.routeOptions.url === undefined; // 404/405 handler: nothing to protect
}

export function createAuthGate(deps: GateDeps): onRequestAsyncHookHandler {
  const { config, security, metrics, resolver, bindTenant } = deps;
  const devProfile = config.env === 'dev' || config.env === 'test';
  const policy = keyPolicyOf(config);
  const refuse = async (request: FastifyRequest, reason: AuthFailureReason, keyId?: string, tenantId?: string): Promise<never> => {
    metrics.authFailure.inc({ reason });
    security.warn(
      { type: 'auth_event', success: false, reason, key_id: keyId, tenant_id: tenantId, request_id: request.id, route: routeKey(request), ip: request.ip },
      'authentication failed',
    );
    if (reason !== 'missing' && deps.invalidKeyGuard) {
      // Counted per source address and per key id: many addresses trying one key id are slowed too.
      const bySource = await deps.invalidKeyGuard.recordInvalidKey(request.ip);
      const byKey = keyId ? await deps.invalidKeyGuard.recordInvalidKey(`key:${keyId}`) : undefined;
      const blocked = bySource.blocked
        ? { verdict: bySource, per: 'source' as const }
        : byKey?.blocked
          ? { verdict: byKey, per: 'key_id' as const }
          : undefined;
      if (blocked) {
        security.warn(
          {
            type: 'auth_event',
            success: false,
            reason: 'invalid_key_flood',
            per: blocked.per,
            key_id: keyId,
            request_id: request.id,
            ip: request.ip,
            route: routeKey(request),
          },
          'refused after repeated invalid keys',
        );
        throw new AppError(
          'rate_limited',
          `too many invalid API keys ${blocked.per === 'source' ? 'from this address' : 'for this key id'}; retry in ${blocked.verdict.retryAfterS} s`,
          {},
          { 'retry-after': String(blocked.verdict.retryAfterS) },
        );
      }
      const delayMs = Math.max(bySource.delayMs, byKey?.delayMs ?? 0);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
    // The body never says why: a caller probing keys learns nothing. The security log does.
    throw new AppError('unauthorized', 'a valid API key is required in the X-API-Key header');
  };

  const accept = (request: FastifyRequest, principal: Principal): void => {
    const needed = request.routeOptions.config.scopes ?? [];
    const missing = missingScopes(principal.scopes, needed);
    if (missing.length > 0) {
      metrics.authFailure.inc({ reason: 'missing_scope' });
      security.warn(
        {
          type: 'auth_event',
          success: false,
          reason: 'missing_scope',
          key_id: principal.keyId,
          tenant_id: principal.tenantId,
          request_id: request.id,
          missing,
          route: routeKey(request),
        },
        'key lacks a required scope',
      );
      request.refusedPrincipal = principal;
      throw new AppError('missing_scope', `this key lacks the scope ${missing.join(', ')} required by ${routeKey(request)}`, { missing_scopes: missing });
    }
    // Tenants the request names outside its body, on every route: the header, then the query
    // string. The binder holds each against the key's tenant (a keyless principal takes the first).
    request.principal = principal;
    const claimed = claimedTenantHeader(request);
    if (claimed !== undefined) bindTenant(request, claimed, 'headers/x-tenant-id');
    for (const fromQuery of queryTenantClaims(request)) bindTenant(request, fromQuery, `querystring/${QUERY_TENANT_PARAM}`);
    if (request.principal.tenantId) bindTenantToContext(request.principal.tenantId, principal.keyId);
    metrics.authSuccess.inc();
  };

  const unavailable = (request: FastifyRequest, keyId: string, error: Error): never => {
    metrics.authFailure.inc({ reason: 'store_unavailable' });
    security.error(
      { type: 'auth_event', success: false, reason: 'store_unavailable', key_id: keyId, request_id: request.id, error: error.message },
      'key store unreachable, refusing (fail closed)',
    );
    throw new AppError('unavailable', 'authentication is temporarily unavailable; retry shortly', {}, { 'retry-after': '2' });
  };

  const reportFailOpen = (request: FastifyRequest, principal: Principal, error: Error): void => {
    // Counted only when the stale key is accepted: a refusal on stale data is no fail-open pass.
    metrics.failOpenTriggered.inc({ component: 'auth' });
    security.fatal(
      {
        type: 'auth_event',
        success: true,
        reason: 'fail_open',
        key_id: principal.keyId,
        tenant_id: principal.tenantId,
        request_id: request.id,
        error: error.message,
      },
      'CRITICAL: key store unreachable, accepting last known key state (FG_AUTH_DB_FAIL_OPEN acknowledged)',
    );
    deps.onFailOpen?.(principal.tenantId!, { key_id: principal.keyId, route: routeKey(request), error: error.message });
  };

  return async function authGate(request) {
    if (queryCarriesKey(request.url)) refuseKeyInQuery(request, deps);
    if (needsNoKey(request)) return;

    if (!config.auth.enabled && devProfile) {
      // No default tenant: like the global key, the request names its tenant with X-Tenant-Id,
      // and a tenant-scoped request that names none is 400 rather than landing somewhere.
      accept(request, { kind: 'auth_disabled', scopes: ['admin'], subject: 'auth-disabled' });
      return;
    }

    const presented = headerString(request, 'x-api-key');
    if (!presented && deps.sessions) {
      // One authorization path: a session's principal meets the same scope and tenant checks.
      const session = await deps.sessions(request);
      if (session) return accept(request, session);
      const consolePage = request.routeOptions.config.auth === 'console_page' && CONSOLE_PAGE_ROUTES.has(routeKey(request));
      if (consolePage) return; // the page sends the browser to sign in
    }
    if (!presented) return refuse(request, 'missing');

    const outcome = await authenticateKey(presented, policy, resolver);
    if (outcome.status === 'refused') return refuse(request, outcome.reason, outcome.keyId, outcome.tenantId);
    if (outcome.status === 'store_unavailable') return unavailable(request, outcome.keyId, outcome.error);
    if (outcome.principal.kind === 'global_key')
      security.info(
        { type: 'auth_event', success: true, reason: 'global_key', request_id: request.id, route: routeKey(request) },
        'global key used (dev/test only)',
      );
    if (outcome.failedOpen) reportFailOpen(request, outcome.principal, outcome.failedOpen);
    accept(request, outcome.principal);
  };
}
