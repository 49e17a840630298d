import { AppError } from '../../platform/http/problem.js';
import { readResults } from '../scoring/results.js';
import type { ScoringService } from '../scoring/service.js';
import type { GradingPort, ScoreView } from './types.js';

/**
 * Submit for grading through the scoreboard's own service (the same path as
 * POST /internal/scenario/{id}/complete, in-process: a learner's browser holds no operator key).
 */
export function scoringGradingPort(scoring: Pick<ScoringService, 'complete' | 'score' | 'storage'>): GradingPort {
  const port: GradingPort = {
    async results(tenantId, scenarioId) {
      // The score row is the tenant's: another tenant's scenario id finds nothing here. The
      // latest graded attempt's files, as the lab page shows its score.
      const found = await port.score(tenantId, scenarioId);
      return found ? readResults(scoring.storage, scenarioId, found.attempt) : undefined;
    },
    async complete(tenantId, scenarioId, subject, given = {}) {
      await scoring.complete(tenantId, scenarioId, {
        reason: 'submit',
        actor: `learner:${subject}`,
        ...(given.answers ? { answers: given.answers } : {}),
        ...(given.hintsUsed ? { hintsUsed: given.hintsUsed } : {}),
      });
    },
    async score(tenantId, scenarioId): Promise<ScoreView | undefined> {
      try {
        const { score, row } = await scoring.score(tenantId, scenarioId);
        return {
          attempt: row.attempt,
          total: score.total,
          max: score.max,
          graded_at: score.graded_at,
          evidence: score.evidence,
          criteria: score.criteria.map((c) => ({ id: c.id, description: c.description, points: c.points, awarded: c.awarded, status: c.status })),
        };
      } catch (err) {
        if (err instanceof AppError && err.code === 'not_found') return undefined;
        throw err;
      }
    },
  };
  return port;
}
