import type { ResultArtefacts } from '../scoring/results.js';
import type { ScoreRow } from '../scoring/store.js';
import { verifyVerdictWithKeySet, type VerdictKeySet } from '../scoring/verdict-keys.js';
import type { Scenario } from '../orchestrator/store.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { CertificateView } from './html.js';
import type { Learner } from './session.js';

/** What the portal reads from the scoreboard (see scoringPortalPort in module.ts). */
export interface PortalScoring {
  history(tenantId: string, subject: string, limit: number): Promise<ScoreRow[]>;
  /** The stored result files of a graded scenario of this tenant; undefined when it was not graded. */
  results(tenantId: string, scenarioId: string): Promise<ResultArtefacts | undefined>;
  /** The score row and the criteria as graded; undefined when it was not graded. */
  graded(
    tenantId: string,
    scenarioId: string,
  ): Promise<{ row: ScoreRow; criteria: ReadonlyArray<{ description: string; awarded: number; points: number; status: string }> } | undefined>;
  /** The scoreboard's published verdict keys (GET /v1/verdicts/keys). */
  verdictKeys(): Promise<VerdictKeySet>;
}

/**
 * The certificate of a graded lab. The verdict is checked as `frostgate verify-verdict --keys`
 * does: the stored files against the signed statement, and its signature against the
 * scoreboard's published key set, not against the verdict.pub stored beside it.
 */
export async function certificateView(
  scoring: PortalScoring,
  templates: Pick<TemplateCatalog, 'get'>,
  learner: Learner,
  s: Scenario,
): Promise<CertificateView | undefined> {
  const [graded, files] = await Promise.all([scoring.graded(learner.tenant, s.scenario_id), scoring.results(learner.tenant, s.scenario_id)]);
  if (!graded || !files) return undefined;
  const check = verifyVerdictWithKeySet({ scoreBytes: files.score, evidenceBytes: files.evidence, sigBytes: files.sig }, await scoring.verdictKeys());
  return {
    subject: learner.subject,
    title: templates.get(s.template_id, s.template_version)?.title ?? s.template_id,
    track: s.track,
    scenarioId: s.scenario_id,
    total: graded.row.total,
    max: graded.row.max,
    percent: graded.row.percent,
    gradedAt: graded.row.graded_at,
    keyId: check.ok ? check.keyId : graded.row.key_id,
    scoreSha256: graded.row.score_sha256,
    verified: check.ok ? { ok: true } : { ok: false, reason: check.problems.join('; ') },
    criteria: graded.criteria,
    evidenceName: files.evidenceName,
  };
}
