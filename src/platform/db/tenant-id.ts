/** Tenant ids: lowercase letters, digits and dashes, 2-63 characters; never 'unknown'. */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;

export class InvalidTenantError extends Error {
  readonly code = 'invalid_tenant';
}

export function tenantIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return 'tenant id is empty';
  if (id === 'unknown') return "tenant id 'unknown' is not allowed";
  if (!TENANT_ID_PATTERN.test(id)) return `tenant id ${JSON.stringify(id.slice(0, 80))} must match ${TENANT_ID_PATTERN.source}`;
  return undefined;
}

export function assertTenantId(id: unknown): asserts id is string {
  const problem = tenantIdProblem(id);
  if (problem) throw new InvalidTenantError(problem);
}
