import { Type } from '@sinclair/typebox';
import { AppError, unavailable } from '../../platform/http/problem.js';
import { assertSameOrigin, verifyAccessToken } from './grant.js';
import { CLOSE } from './protocol.js';

import type { AccessApp, AccessContext } from './context.js';
import { ACCESS_ROUTES, errors, ScenarioParam, ScoreSchema, SubmitBody } from './route-schemas.js';
import { RESULT_FILES, sendResultFile } from './result-files.js';

/** After the lab: the result downloads (with the lab session, also once the lab is gone) and End lab. */
export function registerResultRoutes(app: AccessApp, ctx: AccessContext): void {
  const { deps, terminals, hintLedger, runs, logged, authorize } = ctx;
  app.get(
    ACCESS_ROUTES.results,
    {
      config: {
        auth: 'token',
        openapiResponses: {
          200: {
            description: 'The file, as an attachment (score.json, the evidence archive, verdict.sig or verdict.pub)',
            contentType: 'application/octet-stream',
          },
        },
      },
      schema: {
        tags: ['forge'],
        operationId: 'downloadLabResult',
        security: [{ scenarioAccessCookie: [] }],
        summary:
          "Downloads one of the graded lab's result files with the lab session, also after the lab has ended (verify them with frostgate verify-verdict)",
        params: Type.Object({ scenario_id: ScenarioParam, name: Type.Union(Object.keys(RESULT_FILES).map((n) => Type.Literal(n))) }),
      },
    },
    async (request, reply) => {
      const { scenario_id: scenarioId, name } = request.params;
      // The session, not the lab: results stay downloadable after the lab's devices are gone.
      const { claims } = await logged(request, scenarioId, () => verifyAccessToken(deps, request, scenarioId, undefined));
      if (!deps.grading) throw unavailable('grading is not available on this server');
      const found = await deps.grading.results(claims.tenant, scenarioId);
      if (!found) throw new AppError('not_found', `lab ${scenarioId} has no results yet: submit it, or end it, to have it graded`);
      return sendResultFile(reply, scenarioId, found, name);
    },
  );

  app.post(
    ACCESS_ROUTES.end,
    {
      config: { auth: 'token' },
      schema: {
        tags: ['forge'],
        operationId: 'endLab',
        security: [{ scenarioAccessCookie: [] }],
        summary: "Ends the lab now: grades it first if it was not graded (with the answers given), then removes its devices and frees the learner's lab slot",
        params: Type.Object({ scenario_id: ScenarioParam }),
        body: SubmitBody,
        response: {
          200: Type.Object({ state: Type.String(), score: Type.Optional(ScoreSchema), grading_error: Type.Optional(Type.String()) }),
          ...errors,
        },
      },
    },
    async (request) => {
      assertSameOrigin(request, false);
      const grant = await authorize(request, request.params.scenario_id, undefined);
      const destroy = deps.scenarios.destroy;
      if (!destroy) throw unavailable('ending labs needs the orchestrator in this process');
      const id = grant.scenario.scenario_id;
      let gradingError: string | undefined;
      if (deps.grading && grant.scenario.state === 'running' && runs.get(id)?.status !== 'grading') {
        await terminals.flushScenario(id);
        runs.set(id, { status: 'grading' });
        try {
          await deps.grading.complete(grant.claims.tenant, id, grant.claims.subject, {
            answers: request.body.answers ?? {},
            hintsUsed: await hintLedger.unlocked(id),
          });
        } catch (err) {
          request.log.warn({ err, scenario_id: id }, 'grading at end of lab failed');
          gradingError = err instanceof AppError ? err.detail : 'grading failed';
        } finally {
          runs.delete(id);
        }
      }
      const score = deps.grading ? await deps.grading.score(grant.claims.tenant, id) : undefined;
      await terminals.endScenario(id, CLOSE.labGone, 'the lab has ended');
      const ended = await destroy.call(deps.scenarios, grant.claims.tenant, id);
      await deps.audit?.(grant.claims.tenant, {
        action: 'scenario.ended',
        actor: `learner:${grant.claims.subject}`,
        target: id,
        details: { graded: score !== undefined, ...(score ? { total: score.total, max: score.max } : {}) },
      });
      deps.security?.info(
        { type: 'lab_ended', scenario_id: id, tenant_id: grant.claims.tenant, subject: grant.claims.subject, request_id: request.id },
        'learner ended the lab',
      );
      return {
        state: ended.state,
        ...(score ? { score: { ...score, criteria: score.criteria.map((c) => ({ ...c })) } } : {}),
        ...(gradingError ? { grading_error: gradingError } : {}),
      };
    },
  );
}
