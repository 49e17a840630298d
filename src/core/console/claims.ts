import { tenantIdProblem } from '../../platform/db/tenant-id.js';
import { isScope, type Scope } from '../../platform/auth/scopes.js';
import type { SignedInPerson } from './session-store.js';

/** One line of FG_OIDC_GROUP_MAP: members of `group` act for `tenant` with `scopes`. */
export interface GroupGrant {
  readonly group: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
}

/** The mapping when FG_OIDC_GROUP_MAP is unset: the IdP's frostgate-admins administer the bootstrap tenant. */
export const defaultGroupMap = (bootstrapTenant: string): string => `frostgate-admins=${bootstrapTenant}:admin`;

/**
 * Parses `group=tenant:scope,scope;group2=tenant:scope`. Throws with every problem named: a map
 * that cannot be read would let nobody in, or the wrong people.
 */
export function parseGroupMap(text: string): GroupGrant[] {
  const problems: string[] = [];
  const grants: GroupGrant[] = [];
  for (const raw of text.split(';')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const colon = entry.indexOf(':', eq + 1);
    if (eq <= 0 || colon === -1) {
      problems.push(`${JSON.stringify(entry)} is not group=tenant:scope,scope`);
      continue;
    }
    const group = entry.slice(0, eq).trim();
    const tenant = entry.slice(eq + 1, colon).trim();
    const scopes = entry
      .slice(colon + 1)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const tenantProblem = tenantIdProblem(tenant);
    if (tenantProblem) problems.push(`${JSON.stringify(entry)}: tenant ${tenantProblem}`);
    const unknown = scopes.filter((s) => !isScope(s));
    if (unknown.length > 0 || scopes.length === 0) problems.push(`${JSON.stringify(entry)}: unknown or missing scope(s) ${unknown.join(', ')}`);
    grants.push({ group, tenant, scopes: scopes.filter(isScope) });
  }
  if (grants.length === 0 && problems.length === 0) problems.push('it names no group: nobody could sign in');
  if (problems.length > 0) throw new Error(`FG_OIDC_GROUP_MAP: ${problems.join('; ')}`);
  return grants;
}

/** Why a signed-in person gets no session. */
export type ClaimRefusal = { readonly reason: 'no_subject' | 'no_mapped_group' | 'several_tenants'; readonly detail: string };

/** A claim's groups: an array of strings, or one string (some IdPs send a single role that way). */
function groupsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/**
 * The FrostGate identity of an IdP's claims: the subject, and the tenant and scopes the person's
 * groups map to. A person in groups of two tenants is refused rather than guessed for.
 */
export function personFromClaims(claims: Record<string, unknown>, groupsClaim: string, grants: readonly GroupGrant[]): SignedInPerson | ClaimRefusal {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub === '') return { reason: 'no_subject', detail: 'the ID token has no subject' };
  const groups = new Set(groupsOf(claims[groupsClaim]));
  const matched = grants.filter((g) => groups.has(g.group));
  if (matched.length === 0)
    return { reason: 'no_mapped_group', detail: `none of your groups (${[...groups].join(', ') || 'none'}) may use this console; ask an administrator` };
  const tenants = [...new Set(matched.map((g) => g.tenant))];
  if (tenants.length > 1) return { reason: 'several_tenants', detail: `your groups map to several tenants (${tenants.join(', ')}); the console acts for one` };
  const name = typeof claims.name === 'string' ? claims.name : typeof claims.preferred_username === 'string' ? claims.preferred_username : sub;
  return {
    tenantId: tenants[0]!,
    subject: `oidc:${sub}`,
    name,
    email: typeof claims.email === 'string' ? claims.email : '',
    scopes: [...new Set(matched.flatMap((g) => g.scopes))].sort(),
  };
}
