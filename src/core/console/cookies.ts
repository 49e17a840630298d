import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The session cookie: a random secret whose digest names a console_sessions row. */
export const SESSION_COOKIE = 'fg_session';
/** The sign-in in flight (PKCE verifier, state, nonce), signed, for /auth/callback only. */
export const SIGN_IN_COOKIE = 'fg_sign_in';
export const SIGN_IN_PATH = '/auth/callback';
/** How long a person may take at the IdP's login page. */
export const SIGN_IN_MAX_AGE_S = 600;

/** The value of `name` in a Cookie header (first occurrence), undefined when absent. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

export interface CookieOptions {
  readonly path: string;
  /** Seconds; 0 deletes the cookie. Undefined: until the browser closes. */
  readonly maxAgeS?: number;
  /** Behind TLS (the request came over https, directly or through a trusted proxy). */
  readonly secure: boolean;
}

/** HttpOnly (page scripts never read it) and SameSite=Lax (other sites' forms and fetches do not carry it). */
export function setCookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${options.path}`, 'HttpOnly', 'SameSite=Lax'];
  if (options.maxAgeS !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(options.maxAgeS))}`);
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}

/**
 * HMACs under FG_SESSION_SECRET (in dev and test without one, a secret of this process): the
 * sign-in cookie's seal, and each session's CSRF token, which only this server can derive from
 * the session id, so it is bound to that session and useless with any other.
 */
export class ConsoleSecrets {
  private readonly key: Buffer;

  constructor(secret: string | undefined) {
    this.key = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  private mac(purpose: string, value: string): Buffer {
    return createHmac('sha256', this.key).update(`${purpose}\n${value}`).digest();
  }

  csrfToken(sessionId: string): string {
    return this.mac('csrf', sessionId).toString('base64url');
  }

  csrfValid(sessionId: string, presented: string | undefined): boolean {
    if (!presented) return false;
    const expected = this.mac('csrf', sessionId);
    const given = Buffer.from(presented, 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** `payload` (JSON) sealed with an expiry: `base64url(json).base64url(mac)`. */
  seal(payload: object, expiresAtMs: number): string {
    const body = Buffer.from(JSON.stringify({ ...payload, exp: expiresAtMs })).toString('base64url');
    return `${body}.${this.mac('seal', body).toString('base64url')}`;
  }

  unseal<T>(sealed: string | undefined, nowMs: number): T | undefined {
    if (!sealed) return undefined;
    const dot = sealed.indexOf('.');
    if (dot <= 0) return undefined;
    const body = sealed.slice(0, dot);
    const mac = Buffer.from(sealed.slice(dot + 1), 'base64url');
    const expected = this.mac('seal', body);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    try {
      const parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as T & { exp?: unknown };
      return typeof parsed.exp === 'number' && parsed.exp > nowMs ? parsed : undefined;
    } catch {
      return undefined;
    }
  }
}
