/** Every scope a key can hold. `admin` implies all others. */
export const SCOPES = [
  'defend:write',
  'ingest:write',
  'decisions:read',
  'decisions:write',
  'bouncer:read',
  'governance:write',
  'governance:approve',
  'keys:admin',
  'forge:spawn',
  'forge:operate',
  'ratelimit:bypass',
  'admin',
] as const;

export type Scope = (typeof SCOPES)[number];

const KNOWN: ReadonlySet<string> = new Set(SCOPES);

export function isScope(value: string): value is Scope {
  return KNOWN.has(value);
}

export class InvalidScopeError extends Error {
  readonly code = 'invalid_scope';
}

/** Parses "a,b c" into scopes, refusing unknown names with the list of valid ones. */
export function parseScopes(input: string | readonly string[]): Scope[] {
  const parts = (typeof input === 'string' ? input.split(/[\s,]+/) : [...input]).map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new InvalidScopeError(`no scopes given; valid scopes: ${SCOPES.join(', ')}`);
  const unknown = parts.filter((p) => !KNOWN.has(p));
  if (unknown.length > 0) throw new InvalidScopeError(`unknown scope(s) ${unknown.join(', ')}; valid scopes: ${SCOPES.join(', ')}`);
  return [...new Set(parts as Scope[])].sort();
}

export function hasScope(held: readonly string[], needed: string): boolean {
  return held.includes('admin') || held.includes(needed);
}

export function missingScopes(held: readonly string[], needed: readonly string[]): string[] {
  return needed.filter((s) => !hasScope(held, s));
}
