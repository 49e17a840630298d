/** Who a request acts as, set by the auth gate. */
export interface Principal {
  readonly kind: 'api_key' | 'session' | 'global_key' | 'auth_disabled';
  /** Key id for api_key principals. */
  readonly keyId?: string;
  /** Console session id for session principals (src/core/console); their subject is the IdP's, `oidc:<sub>`. */
  readonly sessionId?: string;
  /** The key's tenant; global and auth-disabled principals take the tenant from X-Tenant-Id. */
  readonly tenantId?: string;
  readonly scopes: readonly string[];
  /** Who acts, for audit and approvals: the key's owner, the signed-in person, or the principal kind. */
  readonly subject: string;
}

/** Who acts, as audit entries and stored rows name them: the key id, else the signed-in subject. */
export function actorOf(principal: Principal | undefined): string {
  return principal?.keyId ?? principal?.subject ?? 'unknown-principal';
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** A valid key the gate refused for a missing scope (request.principal stays unset): for audit trails of refusals. */
    refusedPrincipal?: Principal;
  }
}
