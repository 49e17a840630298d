import type { Static } from '@sinclair/typebox';
import { spawnShellPty } from '../runtime/pty.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { accessCookie } from './cookie.js';
import { AccessRefusedError, authorizeAccess, type AccessGrant } from './grant.js';
import { REFUSAL_CSP, renderRefusalPage } from './html.js';
import { accessLimits } from './limits.js';
import { TerminalSessions } from './terminals.js';
import { HintLedger } from './questions.js';
import { ExtensionLog } from './extensions.js';
import type { AccessDeps } from './types.js';
import { PORTAL_BASE } from '../portal/session.js';

import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import { SESSION_AFTER_LAB_S, SESSION_RENEW_MARGIN_S, PORTAL_REASONS, StatusSchema, type GradingRun } from './route-schemas.js';

/** The Fastify instance the access routes register on (TypeBox-typed). */
export type AccessApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** What every access route shares: the dependencies, the process's lab state, and the access checks. */
export interface AccessContext {
  readonly deps: AccessDeps;
  readonly now: () => number;
  readonly limits: ReturnType<typeof accessLimits>;
  readonly extendMinutes: number;
  readonly terminals: TerminalSessions;
  readonly hintLedger: HintLedger;
  readonly extensions: ExtensionLog;
  /** Grading started by this process, until its score can be read. */
  readonly runs: Map<string, GradingRun>;
  /** Grants checked before a WebSocket upgrade, read by its handler. */
  readonly upgradeGrants: WeakMap<FastifyRequest, AccessGrant>;
  readonly logged: <T>(request: FastifyRequest, scenarioId: string, check: () => Promise<T>) => Promise<T>;
  readonly authorize: (request: FastifyRequest, scenarioId: string, urlToken: string | undefined) => Promise<AccessGrant>;
  readonly refusalPage: (reply: FastifyReply, err: AccessRefusedError) => FastifyReply;
  readonly labEnd: (claims: AccessGrant['claims']) => Promise<number>;
  readonly openSession: (reply: FastifyReply, claims: AccessGrant['claims'], labEndsAt: number) => Promise<void>;
  readonly renewSession: (reply: FastifyReply, grant: AccessGrant) => Promise<void>;
  readonly gradingStatus: (grant: AccessGrant) => Promise<Static<typeof StatusSchema>['grading']>;
}

/** Builds the shared state and checks of the access routes (the terminals, the hint and extension logs). */
export function createAccessContext(deps: AccessDeps): AccessContext {
  const limits = accessLimits(deps.limits);
  const now = deps.now ?? Date.now;
  const extendMinutes = deps.extendMinutes ?? 15;
  const terminals = new TerminalSessions({
    openShell: async (s, d, size) => {
      const { runtime } = deps;
      // A lab on a worker agent: the shell runs there and is relayed; a local lab: a PTY here.
      if (runtime.openShell) return runtime.openShell(s, d, size);
      return spawnShellPty(await runtime.spawnShell(s, d), size);
    },
    storageDir: deps.storageDir,
    limits,
    ...(deps.onSession ? { onSession: deps.onSession } : {}),
    ...(deps.publishRecording
      ? {
          publishRecording: deps.publishRecording,
          onPublishError: (err: unknown, file: string) => deps.security?.warn({ err, file }, 'a terminal recording could not be copied to the evidence store'),
        }
      : {}),
  });
  const hintLedger = new HintLedger(deps.storageDir);
  const extensions = new ExtensionLog(deps.storageDir);
  /** Grading started by this process, until its score can be read. */
  const runs = new Map<string, GradingRun>();
  /** Grants checked before a WebSocket upgrade, read by its handler. */
  const upgradeGrants = new WeakMap<FastifyRequest, AccessGrant>();

  /** Runs a check, with every refusal in the security log (the reason, never the token). */
  const logged = async <T>(request: FastifyRequest, scenarioId: string, check: () => Promise<T>): Promise<T> => {
    try {
      return await check();
    } catch (err) {
      if (err instanceof AccessRefusedError) {
        deps.security?.warn(
          { type: 'access_refused', reason: err.reason, scenario_id: scenarioId, route: request.routeOptions.url, request_id: request.id, ip: request.ip },
          'learner access refused',
        );
      }
      throw err;
    }
  };
  const authorize = (request: FastifyRequest, scenarioId: string, urlToken: string | undefined): Promise<AccessGrant> =>
    logged(request, scenarioId, () => authorizeAccess(deps, request, scenarioId, urlToken));

  const refusalPage = (reply: FastifyReply, err: AccessRefusedError) => {
    reply.header('content-security-policy', REFUSAL_CSP);
    if (err.reason === 'lab_not_ready') reply.header('refresh', '5');
    return reply
      .code(err.pageStatus)
      .type('text/html; charset=utf-8')
      .send(
        renderRefusalPage({
          heading: err.heading,
          message: err.detail,
          reason: err.reason,
          requestId: reply.request.id,
          // A used, expired or missing link is not a dead end: the portal re-enters a running lab and keeps results.
          ...(PORTAL_REASONS.has(err.reason) ? { next: { href: PORTAL_BASE, text: 'Go to my labs' } } : {}),
        }),
      );
  };

  /** When the scenario's lab ends; a scenario not readable yet counts as ending an access link's life from now. */
  const labEnd = async (claims: AccessGrant['claims']): Promise<number> => {
    const s = await deps.scenarios.get(claims.tenant, claims.scenarioId).catch(() => undefined);
    return s ? Date.parse(s.expires_at) : now() + 30 * 60_000;
  };
  /** Issues the lab session (until the lab's end, plus the results window) into the cookie. */
  const openSession = async (reply: FastifyReply, claims: AccessGrant['claims'], labEndsAt: number): Promise<void> => {
    const ttlS = Math.max(60, Math.ceil((labEndsAt - now()) / 1000) + SESSION_AFTER_LAB_S);
    const { tenant, subject, scenarioId, track } = claims;
    const session = await deps.tokens.issue('session', { tenant, subject, scenarioId, track }, ttlS);
    reply.header('set-cookie', accessCookie(session.token, scenarioId, ttlS, reply.request.protocol === 'https'));
  };
  /** Extends the session when the lab was extended past what it covers (or it came from an old cookie). */
  const renewSession = async (reply: FastifyReply, grant: AccessGrant): Promise<void> => {
    const shouldEnd = Date.parse(grant.scenario.expires_at) + SESSION_AFTER_LAB_S * 1000;
    if (grant.claims.expiresAt.getTime() < shouldEnd - SESSION_RENEW_MARGIN_S * 1000)
      await openSession(reply, grant.claims, Date.parse(grant.scenario.expires_at));
  };

  async function gradingStatus(grant: AccessGrant): Promise<Static<typeof StatusSchema>['grading']> {
    if (!deps.grading) return { status: 'unavailable' };
    const id = grant.scenario.scenario_id;
    const run = runs.get(id);
    if (run?.status === 'grading') return { status: 'grading' };
    const found = await deps.grading.score(grant.claims.tenant, id);
    // An earlier attempt's score is not this attempt's: after a reset the lab is not yet submitted.
    const score = found && (found.attempt ?? 1) === grant.scenario.attempt ? found : undefined;
    if (score) return { status: 'scored', score: { ...score, criteria: score.criteria.map((c) => ({ ...c })) } };
    if (run?.status === 'failed') return { status: 'failed', error: run.error };
    return { status: grant.scenario.state === 'grading' ? 'grading' : 'not_submitted' };
  }

  return {
    deps,
    now,
    limits,
    extendMinutes,
    terminals,
    hintLedger,
    extensions,
    runs,
    upgradeGrants,
    logged,
    authorize,
    refusalPage,
    labEnd,
    openSession,
    renewSession,
    gradingStatus,
  };
}
