import type { FastifyRequest } from 'fastify';
import { bindTenantToContext } from '../context.js';
import { tenantIdProblem } from '../db/tenant-id.js';
import { AppError } from '../http/problem.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import './principal.js';

/**
 * Binds the request to its tenant and returns it. `claimed` is a tenant the request names
 * (a body's tenant_id, an event's tenant_id, a header); `field` says where, for the error
 * (`body/events/3/tenant_id`).
 */
export type BindTenant = (request: FastifyRequest, claimed?: unknown, field?: string) => string;

/** Where a query string names a tenant; held against the key like a header (see queryTenantClaims). */
export const QUERY_TENANT_PARAM = 'tenant_id';

/** The tenants the query string names (`?tenant_id=`, every occurrence), for the gate to bind. */
export function queryTenantClaims(request: Pick<FastifyRequest, 'query'>): unknown[] {
  const query = request.query as Record<string, unknown> | null | undefined;
  if (query === null || typeof query !== 'object' || !Object.hasOwn(query, QUERY_TENANT_PARAM)) return [];
  return [query[QUERY_TENANT_PARAM]].flat();
}

/** The error of a refused claim names the field, like a validation error does. */
function claimError(code: 'invalid_tenant' | 'tenant_mismatch', detail: string, field: string | undefined): AppError {
  if (field === undefined) return new AppError(code, detail);
  return new AppError(code, `${field}: ${detail}`, { errors: [{ path: field, message: detail }] });
}

/**
 * The one tenant binder. Returns the tenant a request acts for: its key's tenant. A tenant the
 * request names elsewhere (body, path, query, an event of a batch) must be that same tenant
 * (403 tenant_mismatch, logged and counted); 'unknown' or malformed is 400; a request that would
 * land in no tenant is 400. A principal without a tenant of its own (the dev global key, auth
 * disabled) acts for the first tenant it names, and every later claim must match that one.
 */
export function createTenantBinder(deps: { security: Logger; metrics: Pick<Metrics, 'tenantMismatch'> }): BindTenant {
  return function bindTenant(request, claimed, field) {
    const principal = request.principal;
    if (!principal) throw new AppError('unauthorized', 'a valid API key is required in the X-API-Key header');
    if (claimed !== undefined && claimed !== null) {
      const problem = tenantIdProblem(claimed);
      if (problem) throw claimError('invalid_tenant', problem, field);
    }
    const boundTenant = principal.tenantId;
    if (boundTenant === undefined) {
      if (typeof claimed === 'string') {
        // Pinned, so a second claim in the same request (an event of the batch) is held against it.
        request.principal = { ...principal, tenantId: claimed };
        bindTenantToContext(claimed);
        return claimed;
      }
      throw new AppError('invalid_tenant', 'this request would land in no tenant: name one with the X-Tenant-Id header');
    }
    if (typeof claimed === 'string' && claimed !== boundTenant) {
      deps.metrics.tenantMismatch.inc();
      deps.security.warn(
        {
          type: 'auth_event',
          success: false,
          reason: 'tenant_mismatch',
          key_id: principal.keyId,
          tenant_id: boundTenant,
          claimed_tenant: claimed,
          field,
          request_id: request.id,
          route: `${request.method} ${request.routeOptions.url ?? ''}`,
        },
        'request names another tenant than its key',
      );
      const holder = principal.kind === 'api_key' ? 'this key belongs to' : principal.kind === 'session' ? 'this session acts for' : 'this request acts for';
      throw claimError('tenant_mismatch', `${holder} tenant ${boundTenant} and cannot act for tenant ${claimed}`, field);
    }
    return boundTenant;
  };
}
