import type { FastifyRequest } from 'fastify';
import { LAB_LIVE_STATES } from '../orchestrator/states.js';
import type { Scenario } from '../orchestrator/store.js';
import { spendAccessToken } from '../spawn/access.js';
import { TokenRefusedError, type ScenarioClaims, type TokenProblem } from '../tokens/scenario-tokens.js';
import { AppError, type ProblemCode } from '../../platform/http/problem.js';
import { ACCESS_COOKIE, readCookie } from './cookie.js';
import type { AccessDeps } from './types.js';

/** A verified access token together with the scenario it opens. */
export interface AccessGrant {
  readonly claims: ScenarioClaims & { readonly jti: string; readonly expiresAt: Date };
  readonly scenario: Scenario;
  /** The token itself, to be moved into the cookie when it came from the URL. */
  readonly token: string;
  readonly fromUrl: boolean;
}

export type RefusalReason = TokenProblem | 'missing_token' | 'unknown_lab' | 'lab_ended' | 'lab_not_ready' | 'unknown_device' | 'bad_origin';

const REFUSALS: Record<RefusalReason, { code: ProblemCode; status: number; heading: string }> = {
  missing_token: { code: 'unauthorized', status: 401, heading: 'No access token' },
  malformed: { code: 'unauthorized', status: 401, heading: 'This access link is not valid' },
  bad_signature: { code: 'unauthorized', status: 401, heading: 'This access link is not valid' },
  wrong_audience: { code: 'unauthorized', status: 401, heading: 'This access link is not valid' },
  expired: { code: 'unauthorized', status: 401, heading: 'Your access link has expired' },
  replayed: { code: 'unauthorized', status: 401, heading: 'This access link was already used' },
  wrong_scenario: { code: 'forbidden', status: 403, heading: 'This access link is for another lab' },
  bad_origin: { code: 'forbidden', status: 403, heading: 'Request from another site refused' },
  unknown_lab: { code: 'not_found', status: 404, heading: 'Lab not found' },
  unknown_device: { code: 'not_found', status: 404, heading: 'No such device in this lab' },
  lab_ended: { code: 'conflict', status: 410, heading: 'This lab has ended' },
  lab_not_ready: { code: 'unavailable', status: 503, heading: 'Your lab is still being prepared' },
};

/** A refused learner request: problem+json for API calls, a clear HTML page for the lab page. */
export class AccessRefusedError extends AppError {
  readonly heading: string;
  readonly pageStatus: number;
  constructor(
    readonly reason: RefusalReason,
    detail: string,
  ) {
    const r = REFUSALS[reason];
    super(r.code, detail, { reason }, reason === 'lab_not_ready' ? { 'retry-after': '5' } : {});
    this.name = 'AccessRefusedError';
    this.heading = r.heading;
    this.pageStatus = r.status;
  }
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Requests that change something or open a terminal must come from this server's own page:
 * the browser always sends Origin on those, and another site's Origin is refused.
 */
export function assertSameOrigin(request: FastifyRequest, required: boolean): void {
  const origin = headerOf(request, 'origin');
  if (origin === undefined) {
    if (required) throw new AccessRefusedError('bad_origin', 'the Origin header is required');
    return;
  }
  if (origin !== `${request.protocol}://${request.host}`) throw new AccessRefusedError('bad_origin', `requests from ${origin} are not accepted`);
}

export type VerifiedToken = Pick<AccessGrant, 'claims' | 'token' | 'fromUrl'>;

/**
 * Checks the access link's token (on first load) or the lab session in the cookie against the
 * scenario in the path. A link works once: it is claimed here, and the page answers it with a
 * session cookie (`session` audience: a session cannot stand in for a link, nor a link for a session).
 */
export async function verifyAccessToken(
  deps: Pick<AccessDeps, 'tokens'>,
  request: FastifyRequest,
  scenarioId: string,
  urlToken: string | undefined,
): Promise<VerifiedToken> {
  const cookieToken = readCookie(headerOf(request, 'cookie'), ACCESS_COOKIE);
  let claims: AccessGrant['claims'];
  let token: string;
  let fromUrl = false;
  try {
    if (urlToken !== undefined) {
      try {
        // Spent here, by the same rule spawn documents for its access links.
        claims = await spendAccessToken(deps.tokens, scenarioId, urlToken);
        token = urlToken;
        fromUrl = true;
      } catch (err) {
        // The link opened a second time in the same browser: the session it opened still holds.
        if (!(err instanceof TokenRefusedError && err.problem === 'replayed' && cookieToken)) throw err;
        claims = await deps.tokens.verify('session', cookieToken, { scenarioId });
        token = cookieToken;
      }
    } else {
      if (!cookieToken) throw new AccessRefusedError('missing_token', 'open the access link you were given for this lab; it signs this browser in');
      claims = await deps.tokens.verify('session', cookieToken, { scenarioId });
      token = cookieToken;
    }
  } catch (err) {
    if (err instanceof TokenRefusedError) throw new AccessRefusedError(err.problem, err.message);
    throw err;
  }
  return { claims, token, fromUrl };
}

/** The scenario the verified token opens, refused unless its lab is live. */
export async function liveScenario(deps: Pick<AccessDeps, 'scenarios'>, claims: AccessGrant['claims'], scenarioId: string): Promise<Scenario> {
  let scenario: Scenario;
  try {
    scenario = await deps.scenarios.get(claims.tenant, scenarioId);
  } catch (err) {
    if (err instanceof AppError && err.code === 'not_found') throw new AccessRefusedError('unknown_lab', `lab ${scenarioId} does not exist`);
    throw err;
  }
  if (scenario.state === 'pending' || scenario.state === 'provisioning')
    throw new AccessRefusedError('lab_not_ready', 'your lab is being built; this page reloads by itself');
  if (!LAB_LIVE_STATES.has(scenario.state))
    throw new AccessRefusedError('lab_ended', `this lab is ${scenario.state}; its devices are gone. Start a new lab to continue practising.`);
  return scenario;
}

/** verifyAccessToken, then liveScenario. */
export async function authorizeAccess(
  deps: Pick<AccessDeps, 'tokens' | 'scenarios'>,
  request: FastifyRequest,
  scenarioId: string,
  urlToken: string | undefined,
): Promise<AccessGrant> {
  const verified = await verifyAccessToken(deps, request, scenarioId, urlToken);
  return { ...verified, scenario: await liveScenario(deps, verified.claims, scenarioId) };
}
