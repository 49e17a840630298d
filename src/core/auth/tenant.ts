import type { FastifyRequest } from 'fastify';
import { bindTenantToContext } from '../../platform/context.js';
import { tenantIdProblem } from '../../platform/db/tenant-id.js';
import { AppError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { Metrics } from '../../platform/metrics.js';
import './principal.js';

export type BindTenant = (request: FastifyRequest, claimed?: unknown) => string;

/**
 * The one tenant binder. Returns the tenant a request acts for: its key's tenant. A tenant the
 * request names elsewhere (body, path, query) must be that same tenant (403 tenant_mismatch);
 * 'unknown' or empty is 400; a request that would land in no tenant is 400.
 */
export function createTenantBinder(deps: { security: Logger; metrics: Pick<Metrics, 'tenantMismatch'> }): BindTenant {
  return function bindTenant(request, claimed) {
    const principal = request.principal;
    if (!principal) throw new AppError('unauthorized', 'a valid API key is required in the X-API-Key header');
    if (claimed !== undefined && claimed !== null) {
      const problem = tenantIdProblem(claimed);
      if (problem) throw new AppError('invalid_tenant', problem);
    }
    const keyTenant = principal.tenantId;
    if (keyTenant === undefined) {
      if (typeof claimed === 'string') {
        bindTenantToContext(claimed);
        return claimed;
      }
      throw new AppError('invalid_tenant', 'this request would land in no tenant: name one with the X-Tenant-Id header');
    }
    if (typeof claimed === 'string' && claimed !== keyTenant) {
      deps.metrics.tenantMismatch.inc();
      deps.security.warn(
        { type: 'auth_event', success: false, reason: 'tenant_mismatch', key_id: principal.keyId, tenant_id: keyTenant, claimed_tenant: claimed, request_id: request.id, route: `${request.method} ${request.routeOptions.url ?? ''}` },
        'request names another tenant than its key',
      );
      throw new AppError('tenant_mismatch', `this key belongs to tenant ${keyTenant} and cannot act for tenant ${claimed}`);
    }
    return keyTenant;
  };
}
