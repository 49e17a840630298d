import { Type } from '@sinclair/typebox';
import { AppError, unavailable } from '../../platform/http/problem.js';
import { assertSameOrigin } from './grant.js';
import { extendAuthorizationRequest } from '../../policy/requests.js';

import type { AccessApp, AccessContext } from './context.js';
import { ACCESS_ROUTES, errors, HintBody, ScenarioParam, StatusSchema, SubmitBody } from './route-schemas.js';

/** While the lab runs: its status, Extend (gated by policies/extend.cedar), Submit and hint unlocks. */
export function registerLabRoutes(app: AccessApp, ctx: AccessContext): void {
  const { deps, now, extendMinutes, terminals, hintLedger, extensions, runs, authorize, renewSession, gradingStatus } = ctx;
  app.get(
    ACCESS_ROUTES.status,
    {
      config: { auth: 'token' },
      schema: {
        tags: ['forge'],
        operationId: 'getLabStatus',
        security: [{ scenarioAccessCookie: [] }],
        summary: 'Time left and grading progress of the lab',
        params: Type.Object({ scenario_id: ScenarioParam }),
        response: { 200: StatusSchema, ...errors },
      },
    },
    async (request, reply) => {
      const grant = await authorize(request, request.params.scenario_id, undefined);
      await renewSession(reply, grant);
      const s = grant.scenario;
      return {
        scenario_id: s.scenario_id,
        state: s.state,
        expires_at: s.expires_at,
        seconds_left: Math.max(0, Math.floor((Date.parse(s.expires_at) - now()) / 1000)),
        attempt: s.attempt,
        access_expires_at: grant.claims.expiresAt.toISOString(),
        grading: await gradingStatus(grant),
      };
    },
  );

  app.post(
    ACCESS_ROUTES.extend,
    {
      config: { auth: 'token' },
      schema: {
        tags: ['forge'],
        operationId: 'extendLab',
        security: [{ scenarioAccessCookie: [] }],
        summary:
          "Extends the lab's time, as often as the extension gate allows (policies/extend.cedar: the template's max_extensions, else its tier's default); each extension is audited",
        params: Type.Object({ scenario_id: ScenarioParam }),
        body: Type.Object({}, { additionalProperties: false }),
        response: { 200: Type.Object({ expires_at: Type.String({ format: 'date-time' }) }), ...errors },
      },
    },
    async (request, reply) => {
      assertSameOrigin(request, false);
      const grant = await authorize(request, request.params.scenario_id, undefined);
      if (extendMinutes <= 0) throw new AppError('forbidden', 'extending labs is not allowed on this server');
      const s = grant.scenario;
      const extended = await extensions.serialized(s.scenario_id, async () => {
        const taken = (await extensions.list(s.scenario_id)).length;
        const template = deps.templates.get(s.template_id, s.template_version);
        if (deps.policy && template) {
          const decision = deps.policy.authorize(
            extendAuthorizationRequest({
              subject: grant.claims.subject,
              template: {
                id: template.id,
                track: template.track,
                tier: template.tier,
                ...(template.max_extensions !== undefined ? { maxExtensions: template.max_extensions } : {}),
              },
              extensionsTaken: taken,
            }),
          );
          if (decision.decision !== 'allow') {
            deps.security?.warn(
              {
                type: 'extend_refused',
                scenario_id: s.scenario_id,
                tenant_id: grant.claims.tenant,
                reasons: decision.reasons,
                taken,
                request_id: request.id,
              },
              'lab extension refused by policy',
            );
            throw new AppError(
              'forbidden',
              `this lab cannot be extended again (extended ${taken} time${taken === 1 ? '' : 's'}, the most it allows); submit or end it before its time runs out`,
              {
                reason: 'extension_limit',
                reasons: [...decision.reasons],
                extensions_taken: taken,
              },
            );
          }
        }
        const done = await deps.scenarios.extend(grant.claims.tenant, s.scenario_id, extendMinutes);
        await extensions.append(s.scenario_id, {
          at: new Date(now()).toISOString(),
          subject: grant.claims.subject,
          minutes: extendMinutes,
          expires_at: done.expires_at,
        });
        await deps.audit?.(grant.claims.tenant, {
          action: 'scenario.extended',
          actor: `learner:${grant.claims.subject}`,
          target: s.scenario_id,
          details: { minutes: extendMinutes, extension: taken + 1, expires_at: done.expires_at },
        });
        return done;
      });
      await renewSession(reply, { ...grant, scenario: extended });
      return { expires_at: extended.expires_at };
    },
  );

  app.post(
    ACCESS_ROUTES.submit,
    {
      config: { auth: 'token' },
      schema: {
        tags: ['forge'],
        operationId: 'submitLab',
        security: [{ scenarioAccessCookie: [] }],
        summary: "Submits the lab for grading with the learner's answers (the hints unlocked are added by the server); poll status for the score",
        params: Type.Object({ scenario_id: ScenarioParam }),
        body: SubmitBody,
        response: { 202: Type.Object({ status: Type.Literal('grading') }), ...errors },
      },
    },
    async (request, reply) => {
      assertSameOrigin(request, false);
      const grant = await authorize(request, request.params.scenario_id, undefined);
      const grading = deps.grading;
      if (!grading) throw unavailable('grading is not available on this server');
      const id = grant.scenario.scenario_id;
      if (runs.get(id)?.status === 'grading') return reply.code(202).send({ status: 'grading' });
      // The recordings are part of the evidence: everything typed so far is on disk before grading packs it.
      await terminals.flushScenario(id);
      runs.set(id, { status: 'grading' });
      const given = { answers: request.body.answers ?? {}, hintsUsed: await hintLedger.unlocked(id) };
      grading.complete(grant.claims.tenant, id, grant.claims.subject, given).then(
        () => runs.delete(id),
        (err: unknown) => {
          request.log.warn({ err, scenario_id: id }, 'grading failed');
          runs.set(id, { status: 'failed', error: err instanceof AppError ? err.detail : 'grading failed; try again or ask an instructor' });
        },
      );
      return reply.code(202).send({ status: 'grading' });
    },
  );

  app.post(
    ACCESS_ROUTES.hints,
    {
      config: { auth: 'token' },
      schema: {
        tags: ['forge'],
        operationId: 'unlockLabHint',
        security: [{ scenarioAccessCookie: [] }],
        summary: "Reveals a criterion's hint; its penalty is taken from that criterion when graded, and the unlock is kept for the evidence",
        params: Type.Object({ scenario_id: ScenarioParam }),
        body: HintBody,
        response: {
          200: Type.Object({ criterion: Type.String(), index: Type.Integer(), text: Type.String(), penalty: Type.Integer() }),
          ...errors,
        },
      },
    },
    async (request) => {
      assertSameOrigin(request, false);
      const grant = await authorize(request, request.params.scenario_id, undefined);
      const s = grant.scenario;
      const template = deps.templates.get(s.template_id, s.template_version);
      const { criterion, index } = request.body;
      const hint = template?.successCriteria.find((c) => c.id === criterion)?.hints?.[index];
      if (!hint) throw new AppError('not_found', `criterion ${criterion} has no hint ${index}`);
      if (s.state !== 'running') throw new AppError('conflict', `the lab is ${s.state}: hints can be unlocked while it runs`, { reason: 'lab_not_running' });
      const penalty = hint.penalty ?? 0;
      await hintLedger.unlock(s.scenario_id, { criterion, index, penalty, at: new Date(now()).toISOString(), subject: grant.claims.subject });
      deps.security?.info(
        { type: 'hint_unlocked', scenario_id: s.scenario_id, tenant_id: grant.claims.tenant, criterion, index, penalty, request_id: request.id },
        'hint unlocked',
      );
      return { criterion, index, text: hint.text, penalty };
    },
  );
}
