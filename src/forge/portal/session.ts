import { TokenRefusedError, type ScenarioTokens } from '../tokens/scenario-tokens.js';

/** The portal's cookie: a learner of a tenant, signed in for PORTAL_SESSION_TTL_S. */
export const PORTAL_COOKIE = 'fg_portal';
export const PORTAL_BASE = '/v1/portal';
/** A portal session lasts a working day; any access link or sign-in link opens a new one. */
export const PORTAL_SESSION_TTL_S = 12 * 3600;
/** A sign-in link works once and for this long, as an access link does. */
export const PORTAL_LINK_TTL_S = 30 * 60;
/** Portal tokens carry no scenario or track: this fixed value stands in both claims, and is checked. */
const PORTAL_SCOPE = 'portal';

export interface Learner {
  readonly tenant: string;
  readonly subject: string;
}

export interface PortalSession extends Learner {
  readonly expiresAt: Date;
}

type Tokens = Pick<ScenarioTokens, 'issue' | 'verify'>;

export async function issuePortalSession(tokens: Tokens, learner: Learner): Promise<{ token: string; expiresAt: Date }> {
  return tokens.issue('portal', { ...learner, scenarioId: PORTAL_SCOPE, track: PORTAL_SCOPE }, PORTAL_SESSION_TTL_S);
}

export async function issuePortalLink(tokens: Tokens, learner: Learner): Promise<{ token: string; expiresAt: Date }> {
  return tokens.issue('portalLink', { ...learner, scenarioId: PORTAL_SCOPE, track: PORTAL_SCOPE }, PORTAL_LINK_TTL_S);
}

/** The session in the cookie; undefined when absent, expired or not a portal session. */
export async function verifyPortalSession(tokens: Tokens, token: string | undefined): Promise<PortalSession | undefined> {
  if (!token) return undefined;
  try {
    const c = await tokens.verify('portal', token, { scenarioId: PORTAL_SCOPE });
    return { tenant: c.tenant, subject: c.subject, expiresAt: c.expiresAt };
  } catch (err) {
    if (err instanceof TokenRefusedError) return undefined;
    throw err;
  }
}

/** Spends a sign-in link (once); a TokenRefusedError says why it is refused. */
export async function spendPortalLink(tokens: Tokens, token: string): Promise<Learner> {
  const c = await tokens.verify('portalLink', token, { scenarioId: PORTAL_SCOPE, once: true });
  return { tenant: c.tenant, subject: c.subject };
}

/**
 * HttpOnly, scoped to the portal's paths. SameSite=Lax, not Strict: a learner following a link to
 * the portal from their mail or LMS arrives signed in; every request that changes something is a
 * POST, which Lax never carries across sites, and is also checked for this server's Origin.
 */
export function portalCookie(token: string, maxAgeS: number, secure: boolean): string {
  const parts = [`${PORTAL_COOKIE}=${token}`, `Path=${PORTAL_BASE}`, `Max-Age=${Math.max(0, Math.floor(maxAgeS))}`, 'HttpOnly', 'SameSite=Lax'];
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

export function portalLinkUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}${PORTAL_BASE}?token=${encodeURIComponent(token)}`;
}
