import { AsyncLocalStorage } from 'node:async_hooks';

/** What every log line written while serving a request carries. */
export interface RequestContext {
  readonly request_id: string;
  tenant_id?: string;
  key_id?: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentContext(): RequestContext | undefined {
  return requestContext.getStore();
}

/** Record the tenant once it is bound, so later log lines of the request carry it. */
export function bindTenantToContext(tenantId: string, keyId?: string): void {
  const store = requestContext.getStore();
  if (!store) return;
  store.tenant_id = tenantId;
  if (keyId) store.key_id = keyId;
}
