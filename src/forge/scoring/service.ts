import { createHash } from 'node:crypto';
import type { AuditTrail } from '../../ledger/audit.js';
import type { Database } from '../../platform/db/database.js';
import { AppError, conflict } from '../../platform/http/problem.js';
import type { Scenario, ScenarioStore } from '../orchestrator/store.js';
import type { LabRuntime } from '../runtime/types.js';
import type { ObjectStorage } from '../../platform/storage/types.js';
import type { LabTemplate } from '../templates/load.js';
import { scenarioVariables } from '../templates/variables.js';
import type { Answers } from './checks/context.js';
import type { DeviceExec } from './criteria.js';
import type { EvidenceCompression } from './evidence-archive.js';
import { gradeScenario } from './grader.js';
import { locateResults, readResults, writeResults, type ResultArtefacts } from './results.js';
import type { ScoringMetrics } from './metrics.js';
import type { TelemetrySink } from '../telemetry/publisher.js';
import type { GradeReason, ScoreDocument } from './score-document.js';
import { scoreStore, type LeaderboardEntry, type ScoreRow } from './store.js';
import { parseVerdictSignatureFile, VerdictError, verifyVerdict, type VerdictSigningKey } from './verdict.js';
import { publishVerdictKey, readVerdictKeySet, VERDICT_KEYS_OBJECT, type VerdictKeySet } from './verdict-keys.js';

export interface CompleteInput {
  readonly reason: GradeReason;
  readonly answers?: Answers;
  readonly hintsUsed?: Readonly<Record<string, readonly number[]>>;
  /** Who asked (key owner or principal), for the audit trail. */
  readonly actor: string;
}

export interface CompleteResult {
  readonly score: ScoreDocument;
  /** Artefact name -> where it is stored. */
  readonly artefacts: Readonly<Record<string, string>>;
  /** false when the scenario had been graded before and the stored artefacts were returned. */
  readonly graded: boolean;
  readonly keyId: string;
  /** Which attempt of the scenario this result is (a reset of a graded scenario starts the next). */
  readonly attempt: number;
}

export interface ScoringDeps {
  readonly db: Pick<Database, 'withTenant'>;
  readonly scenarios: Pick<ScenarioStore, 'get' | 'transition'>;
  readonly runtime: Pick<LabRuntime, 'exec'>;
  /** The template version a scenario was created from. */
  readonly templates: (id: string, version: string) => LabTemplate | undefined;
  readonly storage: ObjectStorage;
  readonly signingKey: VerdictSigningKey;
  readonly audit: Pick<AuditTrail, 'record'>;
  /** The scenario's audit trail so far, for audit.jsonl (default: only the grading events). */
  readonly auditSource?: (tenantId: string, scenarioId: string) => Promise<Array<Record<string, unknown>>>;
  /** Secret from which per-scenario template variables are derived (must match the orchestrator's). */
  readonly variableSecret?: Uint8Array;
  readonly compression?: Exclude<EvidenceCompression, 'none'>;
  readonly clock?: () => Date;
  /** A scenario left `grading` longer than this (a crashed grader) may be graded again. Default 10 min. */
  readonly staleGradingMs?: number;
  /** Gradings, their time and scores (src/forge/scoring/metrics.ts). */
  readonly metrics?: ScoringMetrics;
  /** Grading results as telemetry (src/forge/telemetry). */
  readonly telemetry?: TelemetrySink;
}

/** Runs a LabRuntime command the way a check asks for it (see capture.ts for the contexts). */
export function labExec(runtime: Pick<LabRuntime, 'exec'>, scenarioId: string): DeviceExec {
  return {
    exec: (device, argv, { context, timeoutMs }) =>
      runtime.exec(scenarioId, device, argv, context === 'learner' ? { asLearner: true, timeoutMs } : { enter: context, timeoutMs }),
  };
}

/** The best graded attempt of a scenario (highest percent, the earlier on a tie): what the leaderboard, "my labs" and progress count. */
export function bestAttempt<T extends Pick<ScoreRow, 'percent' | 'attempt'>>(rows: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const r of rows) if (!best || r.percent > best.percent || (r.percent === best.percent && r.attempt < best.attempt)) best = r;
  return best;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Grading on completion (learner submit, TTL end, operator): running -> grading -> scored,
 * artefacts in storage, a scores row and an audit entry. Idempotent: a scored scenario answers
 * with its stored artefacts, unchanged; one being graded right now is 409.
 */
export class ScoringService {
  private readonly clock: () => Date;
  private readonly staleGradingMs: number;

  constructor(private readonly deps: ScoringDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.staleGradingMs = deps.staleGradingMs ?? 10 * 60_000;
  }

  get storage(): ObjectStorage {
    return this.deps.storage;
  }

  async complete(tenantId: string, scenarioId: string, input: CompleteInput): Promise<CompleteResult> {
    const scenario = await this.deps.scenarios.get(tenantId, scenarioId);
    if (scenario.state === 'scored') return this.stored(scenario);
    // Before any transition: a scoreboard whose key was rotated out elsewhere signs nothing more.
    await this.publishedKeySet();
    // Before any transition: a scenario whose template version is not loaded stays as it was.
    const template = this.deps.templates(scenario.template_id, scenario.template_version);
    if (!template) {
      throw new AppError('conflict', `template ${scenario.template_id}@${scenario.template_version} is not loaded; the scenario cannot be graded`, {
        reason: 'template_unavailable',
      });
    }
    if (scenario.state === 'grading') {
      const age = this.clock().getTime() - Date.parse(scenario.updated_at);
      if (age < this.staleGradingMs) throw conflict(`scenario ${scenarioId} is being graded`, { reason: 'grading_in_progress', scenario_id: scenarioId });
      // A grader that stopped after recording the score only missed the last transition.
      const finished = await this.finishedEarlier(tenantId, scenario);
      if (finished) return finished;
    }
    // Refused (409 illegal_transition) unless running; the row lock makes one caller win. The
    // moved row names the attempt being graded (a reset in between cannot shift it).
    const grading = scenario.state === 'grading' ? scenario : await this.deps.scenarios.transition(tenantId, scenarioId, 'grading');
    try {
      return await this.grade(tenantId, grading, template, input);
    } catch (err) {
      await this.deps.scenarios
        .transition(tenantId, scenarioId, 'failed', { error: `grading failed: ${(err as Error).message}`.slice(0, 2000) })
        .catch(() => undefined);
      throw err;
    }
  }

  private async grade(tenantId: string, scenario: Scenario, template: LabTemplate, input: CompleteInput): Promise<CompleteResult> {
    const started = performance.now();
    const gradedAt = this.clock();
    const trail = (await this.deps.auditSource?.(tenantId, scenario.scenario_id)) ?? [];
    const out = await gradeScenario({
      scenario,
      template,
      exec: labExec(this.deps.runtime, scenario.scenario_id),
      variables: scenarioVariables(template.variables, scenario.scenario_id, this.deps.variableSecret),
      ...(input.answers ? { answers: input.answers } : {}),
      ...(input.hintsUsed ? { hintsUsed: input.hintsUsed } : {}),
      reason: input.reason,
      gradedAt,
      signingKey: this.deps.signingKey,
      auditTrail: [
        { at: gradedAt.toISOString(), event: 'grading_started', scenario_id: scenario.scenario_id, reason: input.reason, actor: input.actor },
        ...trail,
      ],
      recordings: await this.recordingsOf(scenario.scenario_id),
      ...(this.deps.compression ? { compression: this.deps.compression } : {}),
    });
    // Each attempt its own files: an earlier attempt's score.json and verdict are never overwritten.
    const artefacts = await writeResults(this.deps.storage, scenario.scenario_id, out.artefacts, scenario.attempt);
    const row: ScoreRow = {
      scenario_id: scenario.scenario_id,
      attempt: scenario.attempt,
      tenant_id: tenantId,
      template_id: scenario.template_id,
      template_version: scenario.template_version,
      track: scenario.track,
      subject: scenario.subject,
      reason: input.reason,
      total: out.score.total,
      max: out.score.max,
      percent: out.score.percent,
      graded_at: out.score.graded_at,
      score_sha256: sha256(out.artefacts.score),
      evidence_sha256: sha256(out.artefacts.evidence),
      key_id: this.deps.signingKey.keyId,
    };
    // The score row and its audit entry commit together.
    await this.deps.db.withTenant(tenantId, async (tx) => {
      await scoreStore.insert(tx, row);
      await this.deps.audit.record(tx, tenantId, {
        action: 'scenario.graded',
        actor: input.actor,
        target: scenario.scenario_id,
        details: {
          attempt: row.attempt,
          total: row.total,
          max: row.max,
          percent: row.percent,
          reason: input.reason,
          score_sha256: row.score_sha256,
          evidence_sha256: row.evidence_sha256,
          key_id: row.key_id,
          redacted: out.redacted,
        },
      });
    });
    await this.deps.scenarios.transition(tenantId, scenario.scenario_id, 'scored');
    this.deps.metrics?.graded.inc({ track: scenario.track, reason: input.reason });
    this.deps.metrics?.seconds.observe({ track: scenario.track }, (performance.now() - started) / 1000);
    this.deps.metrics?.percent.observe({ track: scenario.track }, out.score.percent);
    this.deps.telemetry?.emit({
      kind: 'grading',
      event: 'graded',
      tenant_id: tenantId,
      scenario_id: scenario.scenario_id,
      track: scenario.track,
      details: { total: row.total, max: row.max, percent: row.percent, reason: input.reason, template_id: row.template_id },
    });
    return { score: out.score, artefacts, graded: true, keyId: this.deps.signingKey.keyId, attempt: scenario.attempt };
  }

  /** The stored result of an earlier grading whose scenario stayed `grading`, now marked scored. */
  private async finishedEarlier(tenantId: string, scenario: Scenario): Promise<CompleteResult | undefined> {
    const row = await this.deps.db.withTenant(tenantId, (tx) => scoreStore.get(tx, scenario.scenario_id, scenario.attempt));
    const found = row ? await readResults(this.deps.storage, scenario.scenario_id, scenario.attempt) : undefined;
    if (!row || !found || sha256(found.score) !== row.score_sha256) return undefined;
    await this.deps.scenarios.transition(tenantId, scenario.scenario_id, 'scored');
    return this.describe(scenario.scenario_id, found, scenario.attempt);
  }

  /** Terminal recordings the access layer stored under `scenarios/{id}/recordings/`. */
  private async recordingsOf(scenarioId: string): Promise<Array<{ name: string; bytes: Buffer }>> {
    const prefix = `scenarios/${scenarioId}/recordings/`;
    const out: Array<{ name: string; bytes: Buffer }> = [];
    for (const obj of await this.deps.storage.list(prefix)) {
      const bytes = await this.deps.storage.get(obj.key);
      if (bytes) out.push({ name: obj.key.slice(prefix.length), bytes });
    }
    return out;
  }

  /**
   * The stored artefacts of a scored scenario's current attempt, checked against their own
   * verdict: completing again without a reset grades nothing new (no new work, no new score).
   */
  private async stored(scenario: Scenario): Promise<CompleteResult> {
    const found = await readResults(this.deps.storage, scenario.scenario_id, scenario.attempt);
    if (!found)
      throw conflict(`scenario ${scenario.scenario_id} is scored but its results are not in storage (removed by retention?)`, { reason: 'results_missing' });
    return this.describe(scenario.scenario_id, found, scenario.attempt);
  }

  private describe(scenarioId: string, found: ResultArtefacts, attempt: number): CompleteResult {
    const check = verifyVerdict({ scoreBytes: found.score, evidenceBytes: found.evidence, sigBytes: found.sig, pubBytes: found.pub });
    if (!check.ok) throw new AppError('internal', `stored results of ${scenarioId} fail verification: ${check.problems.join('; ')}`);
    return {
      score: JSON.parse(found.score.toString('utf8')) as ScoreDocument,
      artefacts: locateResults(this.deps.storage, scenarioId, found.evidenceName, attempt),
      graded: false,
      keyId: check.keyId,
      attempt,
    };
  }

  /**
   * The published verdict key set with this scoreboard's key current in it (written when it was
   * missing or lacked the key). 503 when another scoreboard rotated the key out: a rolling key
   * rotation stops old scoreboards from grading rather than letting them sign verdicts that fail
   * against the set.
   */
  private async publishedKeySet(): Promise<VerdictKeySet> {
    try {
      return (await publishVerdictKey(this.deps.storage, this.deps.signingKey, this.clock())).set;
    } catch (err) {
      if (err instanceof VerdictError && err.code === 'verdict_key_retired')
        throw new AppError('unavailable', `this scoreboard cannot sign verdicts: ${err.message}`, { reason: 'verdict_key_retired' });
      throw err;
    }
  }

  /**
   * The verdict key set as published (GET /v1/verdicts/keys): the stored verdict-keys.json, so
   * every scoreboard answers the same after a rotation; an ephemeral key's own one-key set.
   */
  async verdictKeys(): Promise<VerdictKeySet> {
    if (this.deps.signingKey.ephemeral) return this.publishedKeySet();
    const set = await readVerdictKeySet(this.deps.storage);
    if (!set)
      throw new AppError(
        'unavailable',
        `${VERDICT_KEYS_OBJECT} is not in the object store ` +
          `(${this.deps.storage.locate(VERDICT_KEYS_OBJECT)}); it is written when a scoreboard starts or grades`,
      );
    return set;
  }

  /**
   * One graded attempt's score (default the latest), with every graded attempt's row (404 for
   * another tenant's scenario, an ungraded one, or an attempt that was not graded).
   */
  async score(tenantId: string, scenarioId: string, attempt?: number): Promise<CompleteResult & { row: ScoreRow; attempts: ScoreRow[] }> {
    const attempts = await this.deps.db.withTenant(tenantId, (tx) => scoreStore.attempts(tx, scenarioId));
    const row = attempt === undefined ? attempts.at(-1) : attempts.find((r) => r.attempt === attempt);
    if (!row) throw new AppError('not_found', `score of scenario ${scenarioId}${attempt === undefined ? '' : ` attempt ${attempt}`} not found`);
    const found = await readResults(this.deps.storage, scenarioId, row.attempt);
    if (!found) throw new AppError('not_found', `results of scenario ${scenarioId} attempt ${row.attempt} are no longer stored`);
    const sig = parseVerdictSignatureFile(found.sig);
    if (!sig.ok || sha256(found.score) !== row.score_sha256)
      throw new AppError('internal', `stored results of ${scenarioId} attempt ${row.attempt} do not match the score row`);
    return { ...this.describe(scenarioId, found, row.attempt), row, attempts };
  }

  async leaderboard(tenantId: string, track: string, limit: number): Promise<LeaderboardEntry[]> {
    return this.deps.db.withTenant(tenantId, (tx) => scoreStore.leaderboard(tx, track, limit));
  }

  async history(tenantId: string, subject: string, limit: number): Promise<ScoreRow[]> {
    return this.deps.db.withTenant(tenantId, (tx) => scoreStore.history(tx, subject, limit));
  }
}
