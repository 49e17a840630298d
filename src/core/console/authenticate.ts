import type { FastifyRequest } from 'fastify';
import { AppError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { Principal } from '../../platform/auth/principal.js';
import { ConsoleSecrets, SESSION_COOKIE, readCookie } from './cookies.js';
import type { SessionStore } from './session-store.js';

/** Methods that change nothing: they need no CSRF token. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
export const CSRF_HEADER = 'x-csrf-token';

/** The session behind a request's cookie, as the auth gate's principal; undefined without one. */
export type SessionAuthenticator = (request: FastifyRequest) => Promise<Principal | undefined>;

/**
 * A console session becomes a principal exactly as a key does: the gate then checks its scopes,
 * binds its tenant and rate-limits it like any key. A state-changing request must also carry the
 * session's CSRF token in X-CSRF-Token: another site's form or script can make the browser send
 * the cookie (SameSite=Lax stops most of it, not all), never the token.
 */
export function createSessionAuthenticator(deps: { store: SessionStore; secrets: ConsoleSecrets; security: Logger }): SessionAuthenticator {
  return async (request) => {
    const secret = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (!secret) return undefined;
    const lookup = await deps.store.authenticate(secret);
    if (lookup.status !== 'active') {
      deps.security.info(
        { type: 'auth_event', success: false, reason: `session_${lookup.status}`, session_id: lookup.id, tenant_id: lookup.tenantId, request_id: request.id },
        'console session not accepted',
      );
      return undefined;
    }
    const { session } = lookup;
    if (!SAFE_METHODS.has(request.method)) {
      const header = request.headers[CSRF_HEADER];
      if (!deps.secrets.csrfValid(session.id, Array.isArray(header) ? header[0] : header)) {
        deps.security.warn(
          {
            type: 'auth_event',
            success: false,
            reason: 'csrf',
            session_id: session.id,
            tenant_id: session.tenantId,
            request_id: request.id,
            route: `${request.method} ${request.routeOptions.url ?? ''}`,
            origin: request.headers.origin,
          },
          'console request without its session CSRF token refused',
        );
        throw new AppError('forbidden', 'this request changes state and lacks the console session CSRF token (X-CSRF-Token)', { reason: 'csrf' });
      }
    }
    return { kind: 'session', sessionId: session.id, tenantId: session.tenantId, scopes: session.scopes, subject: session.subject };
  };
}
