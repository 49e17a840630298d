import type { CriterionResult } from './criteria.js';

/**
 * score.json: the RFC 8785 canonical JSON of this document (scenario, template id and version,
 * subject, track, per-criterion result, total, graded_at). The verdict signs its bytes.
 */
export interface ScoreDocument {
  readonly v: 1;
  readonly type: 'frostgate.forge.score';
  readonly scenario_id: string;
  readonly tenant_id: string;
  readonly template: { readonly id: string; readonly version: string };
  readonly track: string;
  readonly subject: string;
  /** Why grading ran: the learner submitted, the TTL ended, or an operator asked. */
  readonly reason: GradeReason;
  readonly criteria: CriterionScore[];
  readonly total: number;
  readonly max: number;
  /** total / max in percent, two decimals (0 when max is 0). */
  readonly percent: number;
  readonly graded_at: string;
  /** The evidence archive's file name in the results directory. */
  readonly evidence: string;
}

export type GradeReason = 'submit' | 'ttl' | 'operator';

export interface CriterionScore {
  readonly id: string;
  readonly description: string;
  readonly status: CriterionResult['status'];
  readonly points: number;
  readonly awarded: number;
  readonly penalty: number;
  readonly hints_used: number[];
  readonly depends_on: string[];
  readonly detail: string;
  readonly check: string | null;
  readonly attempts: number;
}

export function criterionScore(r: CriterionResult): CriterionScore {
  return {
    id: r.id,
    description: r.description,
    status: r.status,
    points: r.points,
    awarded: r.awarded,
    penalty: r.penalty,
    hints_used: [...r.hints_used],
    depends_on: [...r.depends_on],
    detail: r.detail,
    check: r.outcome?.type ?? null,
    attempts: r.outcome?.attempts ?? 0,
  };
}

export function totals(results: readonly CriterionResult[]): { total: number; max: number; percent: number } {
  const total = results.reduce((n, r) => n + r.awarded, 0);
  const max = results.reduce((n, r) => n + r.points, 0);
  return { total, max, percent: max === 0 ? 0 : Math.round((total * 10_000) / max) / 100 };
}
