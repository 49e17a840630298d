import type { Logger } from '../../platform/log.js';
import type { Orchestrator } from '../orchestrator/service.js';
import type { LabRuntime } from '../runtime/types.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { AccessLimits } from './limits.js';
import type { PolicyEngine } from '../../policy/engine.js';
import type { ResultArtefacts } from '../scoring/results.js';

/** One criterion as the learner sees it after grading. */
export interface CriterionResultView {
  readonly id: string;
  readonly description: string;
  readonly points: number;
  readonly awarded: number;
  readonly status: string;
}

export interface ScoreView {
  readonly total: number;
  readonly max: number;
  readonly graded_at: string;
  /** Which attempt of the scenario this score is (the latest graded one); 1 when absent. */
  readonly attempt?: number;
  /** The evidence archive's file name (evidence.tar.zst or evidence.tar.gz). */
  readonly evidence?: string;
  readonly criteria: readonly CriterionResultView[];
}

/**
 * What the Submit button needs from grading (the scoreboard module provides it): start grading
 * the scenario, and read its score once grading has ended.
 */
export interface GradingPort {
  /** Grades the scenario with the learner's answers and unlocked hints; `subject` (the learner) is recorded as who asked. */
  complete(
    tenantId: string,
    scenarioId: string,
    subject: string,
    given?: { answers?: Record<string, unknown>; hintsUsed?: Record<string, number[]> },
  ): Promise<void>;
  /** undefined while the scenario has not been graded. */
  score(tenantId: string, scenarioId: string): Promise<ScoreView | undefined>;
  /** The stored result files (score.json, the evidence archive, verdict.sig, verdict.pub); undefined before grading. */
  results(tenantId: string, scenarioId: string): Promise<ResultArtefacts | undefined>;
}

export interface AccessDeps {
  /** Verifies access links and lab sessions; issues the session a link opens. */
  readonly tokens: Pick<ScenarioTokens, 'verify' | 'issue'>;
  /** destroy: "End lab" (absent: the button is hidden and end answers 503). */
  readonly scenarios: Pick<Orchestrator, 'get' | 'extend'> & Partial<Pick<Orchestrator, 'destroy' | 'reset'>>;
  readonly runtime: Pick<LabRuntime, 'spawnShell' | 'openShell'>;
  /** Title, tasks and networks of the template a scenario was made from. */
  readonly templates: Pick<TemplateCatalog, 'get'>;
  /** Absent: the Submit button is disabled and submit answers 503. */
  readonly grading?: GradingPort;
  /** Root of the object store (FG_STORAGE_DIR); recordings go under scenarios/{id}/recordings/. */
  readonly storageDir: string;
  /**
   * Copies a finished or flushed recording to where the grader reads evidence when that is not
   * this directory (an S3 bucket); absent when the object store is the storage directory itself.
   */
  readonly publishRecording?: (scenarioId: string, file: string) => Promise<void>;
  /** Minutes one click on Extend adds; 0 hides the button. Default 15. */
  readonly extendMinutes?: number;
  readonly limits?: Partial<AccessLimits>;
  /** The frostgate.security logger: every refused learner request is logged there, and hint unlocks and ended labs. */
  readonly security?: Pick<Logger, 'warn' | 'info'>;
  /** A learner's terminal session started or ended (telemetry). */
  readonly onSession?: (event: 'started' | 'ended', owner: { scenarioId: string; device: string; subject: string }, sessionId: string) => void;
  readonly now?: () => number;
  /** The extension gate (policies/extend.cedar); absent: extensions are not limited (tests of other parts). */
  readonly policy?: Pick<PolicyEngine, 'authorize'>;
  /** Writes an entry to the tenant's audit ledger (each extension, reset and ended lab). */
  readonly audit?: (tenantId: string, entry: { action: string; actor: string; target: string; details: Record<string, unknown> }) => Promise<void>;
}
