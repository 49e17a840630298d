import { sanitizeFiles, type NamedBytes } from '../sanitizer/files.js';
import { sanitizeText } from '../sanitizer/text.js';
import type { PiiCounts } from '../sanitizer/types.js';
import type { LabTemplate } from '../templates/load.js';
import type { ScenarioVariables } from '../templates/variables.js';
import { canonicalize } from '../../platform/crypto/canonical-json.js';
import { evaluateCriteria, type CriterionResult, type DeviceExec } from './criteria.js';
import type { Answers } from './checks/context.js';
import { buildEvidenceArchive, type EvidenceCompression } from './evidence-archive.js';
import type { EvidenceFileName, ResultArtefacts } from './results.js';
import { criterionScore, totals, type GradeReason, type ScoreDocument } from './score-document.js';
import { signVerdict, type VerdictSigningKey } from './verdict.js';
import type { Scenario } from '../orchestrator/store.js';

/** What the grader needs to know about the scenario: the identity part of the orchestrator's row. */
export type GradedScenario = Pick<Scenario, 'scenario_id' | 'tenant_id' | 'template_id' | 'template_version' | 'track' | 'subject'>;

export interface GradeInput {
  readonly scenario: GradedScenario;
  readonly template: LabTemplate;
  readonly exec: DeviceExec;
  readonly variables: ScenarioVariables;
  readonly answers?: Answers;
  readonly hintsUsed?: Readonly<Record<string, readonly number[]>>;
  readonly reason: GradeReason;
  readonly gradedAt: Date;
  readonly signingKey: VerdictSigningKey;
  /** The scenario's audit trail so far (one JSON object per line in audit.jsonl). */
  readonly auditTrail?: ReadonlyArray<Record<string, unknown>>;
  /** Terminal recordings and other captured files, added under recordings/. */
  readonly recordings?: readonly NamedBytes[];
  readonly compression?: Exclude<EvidenceCompression, 'none'>;
}

export interface GradeOutput {
  readonly score: ScoreDocument;
  readonly results: readonly CriterionResult[];
  readonly artefacts: ResultArtefacts;
  /** What the sanitizer redacted across evidence and score. */
  readonly redacted: PiiCounts;
}

const jsonBytes = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
const jsonLines = (records: ReadonlyArray<Record<string, unknown>>) => Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''), 'utf8');

/**
 * Runs the template's checks against the lab and builds the signed artefacts: score.json
 * (canonical), the evidence archive (check outputs, answers, recordings, the audit trail, the
 * sanitizer's report), verdict.sig / verdict.pub and audit.jsonl. Everything leaving here has
 * been through the PII sanitizer.
 */
export async function gradeScenario(input: GradeInput): Promise<GradeOutput> {
  const { scenario, template } = input;
  const gradedAt = input.gradedAt.toISOString();
  const results = await evaluateCriteria({
    criteria: template.successCriteria,
    exec: input.exec,
    answers: input.answers ?? {},
    variables: input.variables,
    hintsUsed: input.hintsUsed ?? {},
  });
  const { total, max, percent } = totals(results);
  const compression = input.compression ?? 'zstd';
  const evidenceName: EvidenceFileName = compression === 'zstd' ? 'evidence.tar.zst' : 'evidence.tar.gz';

  const audit: Array<Record<string, unknown>> = [
    ...(input.auditTrail ?? []),
    ...results.map((r) => ({
      at: gradedAt,
      event: 'criterion_graded',
      scenario_id: scenario.scenario_id,
      criterion: r.id,
      status: r.status,
      awarded: r.awarded,
      points: r.points,
    })),
    { at: gradedAt, event: 'scenario_graded', scenario_id: scenario.scenario_id, reason: input.reason, total, max, percent },
  ];
  const raw: NamedBytes[] = [
    ...results.map((r) => ({ name: `checks/${r.id}.json`, bytes: jsonBytes(r) })),
    { name: 'answers.json', bytes: jsonBytes({ answers: input.answers ?? {}, hints_used: input.hintsUsed ?? {} }) },
    { name: 'audit.jsonl', bytes: jsonLines(audit) },
    ...(input.recordings ?? []).map((f) => ({ name: `recordings/${f.name}`, bytes: f.bytes })),
  ];
  const scrubbed = sanitizeFiles(raw);
  // Binary files cannot be scrubbed, so they do not leave the lab store: the report names them.
  const withheld = new Set(scrubbed.report.binaryFiles);
  const redacted = { ...scrubbed.report.totals };
  const report = {
    files: scrubbed.report.files.map((f) => ({ name: f.name, status: f.status, counts: f.counts })),
    totals: scrubbed.report.totals,
    withheld: [...withheld],
  };
  const evidenceFiles = [...scrubbed.files.filter((f) => !withheld.has(f.name)), { name: 'sanitizer-report.json', bytes: jsonBytes(report) }];
  const evidence = await buildEvidenceArchive(evidenceFiles, { compression, mtime: Math.floor(input.gradedAt.getTime() / 1000) });

  // Check details quote device output: they go through the sanitizer too.
  const criteria = results.map((r) => {
    const s = criterionScore(r);
    const detail = sanitizeText(s.detail);
    for (const [k, n] of Object.entries(detail.report.counts)) redacted[k as keyof PiiCounts] += n;
    return { ...s, detail: detail.text };
  });
  const score: ScoreDocument = {
    v: 1,
    type: 'frostgate.forge.score',
    scenario_id: scenario.scenario_id,
    tenant_id: scenario.tenant_id,
    template: { id: scenario.template_id, version: scenario.template_version },
    track: scenario.track,
    subject: scenario.subject,
    reason: input.reason,
    criteria,
    total,
    max,
    percent,
    graded_at: gradedAt,
    evidence: evidenceName,
  };
  const scoreBytes = Buffer.from(canonicalize(score), 'utf8');
  const verdict = signVerdict({ scoreBytes, evidenceBytes: evidence, privateKey: input.signingKey.privateKey, signedAt: gradedAt });
  const auditBytes = scrubbed.files.find((f) => f.name === 'audit.jsonl')!.bytes;
  return {
    score,
    results,
    redacted,
    artefacts: { score: scoreBytes, evidence, evidenceName, sig: verdict.sigBytes, pub: verdict.pubBytes, audit: Buffer.from(auditBytes) },
  };
}
