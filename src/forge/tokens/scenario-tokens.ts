import { randomUUID } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { ReplayGuard } from './replay.js';
import type { TokenSigningKey } from './signing-key.js';

/** The short-lived tokens of Forge, each with its own audience so one cannot stand in for another. */
export const AUDIENCES = {
  sat: 'frostgate:orchestrator',
  access: 'frostgate:access',
  /** The lab session an access link opens (the fg_access cookie): lives as long as the lab. */
  session: 'frostgate:lab-session',
  /** A one-time sign-in link to the learner portal, issued to an LMS or operator for a learner. */
  portalLink: 'frostgate:portal-link',
  /** The learner portal's session (the fg_portal cookie): a learner of a tenant, no scenario. */
  portal: 'frostgate:portal',
} as const;

export const SAT_TTL_S = 300;
export const ACCESS_TTL_S = 30 * 60;
const ISSUER = 'frostgate';

export type TokenKind = keyof typeof AUDIENCES;

export interface ScenarioClaims {
  readonly tenant: string;
  readonly subject: string;
  readonly scenarioId: string;
  readonly track: string;
  /** The template (`id@version`) a SAT admits; the orchestrator builds exactly that lab. */
  readonly template?: string;
}

export interface IssuedToken {
  readonly token: string;
  readonly jti: string;
  readonly expiresAt: Date;
}

export type TokenProblem = 'malformed' | 'bad_signature' | 'expired' | 'wrong_audience' | 'wrong_scenario' | 'replayed';

/** A refused token, with a reason a caller can show (each is a distinct, clear refusal). */
export class TokenRefusedError extends Error {
  readonly code = 'token_refused';
  constructor(
    readonly problem: TokenProblem,
    message: string,
  ) {
    super(message);
  }
}

export class ScenarioTokens {
  constructor(
    private readonly key: TokenSigningKey,
    private readonly replay: ReplayGuard,
    private readonly now: () => number = Date.now,
  ) {}

  async issue(kind: TokenKind, claims: ScenarioClaims, ttlS = kind === 'sat' ? SAT_TTL_S : ACCESS_TTL_S): Promise<IssuedToken> {
    const jti = randomUUID();
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + ttlS;
    const token = await new SignJWT({
      tid: claims.tenant,
      scn: claims.scenarioId,
      trk: claims.track,
      ...(claims.template !== undefined ? { tpl: claims.template } : {}),
    })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCES[kind])
      .setSubject(claims.subject)
      .setJti(jti)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.key.privateKey);
    return { token, jti, expiresAt: new Date(exp * 1000) };
  }

  /**
   * Verifies signature, audience and expiry, that the token is for `scenarioId` when given, and
   * with `once`, that its jti was never used before (remembered until the token expires).
   */
  async verify(kind: TokenKind, token: string, opts: { scenarioId?: string; once?: boolean } = {}): Promise<ScenarioClaims & { jti: string; expiresAt: Date }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        issuer: ISSUER,
        audience: AUDIENCES[kind],
        algorithms: ['EdDSA'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new TokenRefusedError('expired', 'the token has expired; ask for a new access link');
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'aud')
        throw new TokenRefusedError('wrong_audience', 'the token is not meant for this endpoint');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new TokenRefusedError('bad_signature', 'the token signature is invalid');
      throw new TokenRefusedError('malformed', 'the token is malformed');
    }
    const { tid, scn, trk, tpl, sub, jti, exp } = payload as JWTPayload & { tid?: unknown; scn?: unknown; trk?: unknown; tpl?: unknown };
    if (
      typeof tid !== 'string' ||
      typeof scn !== 'string' ||
      typeof trk !== 'string' ||
      typeof sub !== 'string' ||
      typeof jti !== 'string' ||
      typeof exp !== 'number' ||
      (tpl !== undefined && typeof tpl !== 'string')
    ) {
      throw new TokenRefusedError('malformed', 'the token lacks required claims');
    }
    if (opts.scenarioId !== undefined && scn !== opts.scenarioId) throw new TokenRefusedError('wrong_scenario', 'the token is for another scenario');
    const expiresAt = new Date(exp * 1000);
    if (opts.once && !(await this.replay.claim(jti, expiresAt))) throw new TokenRefusedError('replayed', 'the token was already used; each link works once');
    return { tenant: tid, subject: sub, scenarioId: scn, track: trk, ...(typeof tpl === 'string' ? { template: tpl } : {}), jti, expiresAt };
  }
}
