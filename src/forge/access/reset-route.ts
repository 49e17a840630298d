import { Type } from '@sinclair/typebox';
import { AppError, unavailable } from '../../platform/http/problem.js';
import { LabRuntimeError } from '../runtime/errors.js';
import { assertSameOrigin } from './grant.js';
import { CLOSE } from './protocol.js';

import type { AccessApp, AccessContext } from './context.js';
import { ACCESS_ROUTES, errors, ScenarioParam } from './route-schemas.js';

/**
 * Reset from the lab page: the lab is rebuilt from its template. After grading it starts the
 * next attempt (submit then grades that attempt; the graded ones keep their results); before
 * grading it restarts the attempt it is on. Only the learner the lab was started for, with that
 * lab's session; audited as scenario.reset.
 */
export function registerResetRoute(app: AccessApp, ctx: AccessContext): void {
  const { deps, terminals, runs, authorize } = ctx;
  app.post(
    ACCESS_ROUTES.reset,
    {
      config: { auth: 'token' },
      schema: {
        tags: ['forge'],
        operationId: 'resetLab',
        security: [{ scenarioAccessCookie: [] }],
        summary:
          "Rebuilds the lab from its template's initial state; after grading it starts the next attempt (earlier attempts keep their scores and results). Answers once the lab runs again",
        params: Type.Object({ scenario_id: ScenarioParam }),
        body: Type.Object({}, { additionalProperties: false }),
        response: { 200: Type.Object({ state: Type.String(), attempt: Type.Integer({ minimum: 1 }) }), ...errors },
      },
    },
    async (request) => {
      assertSameOrigin(request, false);
      const grant = await authorize(request, request.params.scenario_id, undefined);
      const reset = deps.scenarios.reset;
      if (!reset) throw unavailable('resetting labs needs the orchestrator in this process');
      const s = grant.scenario;
      // The session names its learner: a lab started for someone else is never reset with it.
      if (grant.claims.subject !== s.subject) {
        deps.security?.warn(
          { type: 'reset_refused', reason: 'not_owner', scenario_id: s.scenario_id, tenant_id: grant.claims.tenant, request_id: request.id },
          'lab reset refused: the session is not the lab owner',
        );
        throw new AppError('forbidden', 'this lab was started for another learner');
      }
      if (runs.get(s.scenario_id)?.status === 'grading' || s.state === 'grading')
        throw new AppError('conflict', 'the lab is being graded; reset it once its score is in', { reason: 'grading_in_progress' });
      await terminals.endScenario(s.scenario_id, CLOSE.labGone, 'the lab is being reset');
      runs.delete(s.scenario_id);
      try {
        const done = await reset.call(deps.scenarios, grant.claims.tenant, s.scenario_id, `learner:${grant.claims.subject}`);
        return { state: done.state, attempt: done.attempt };
      } catch (err) {
        if (err instanceof LabRuntimeError) throw new AppError('unavailable', `the lab could not be rebuilt: ${err.message}`, { reason: `lab_${err.code}` });
        throw err;
      }
    },
  );
}
