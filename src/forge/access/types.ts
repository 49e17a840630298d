import type { Logger } from '../../platform/log.js';
import type { Orchestrator } from '../orchestrator/service.js';
import type { LabRuntime } from '../runtime/types.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { AccessLimits } from './limits.js';

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
  readonly criteria: readonly CriterionResultView[];
}

/**
 * What the Submit button needs from grading (the scoreboard module provides it): start grading
 * the scenario, and read its score once grading has ended.
 */
export interface GradingPort {
  /** Grades the scenario; `subject` (the learner) is recorded as who asked. */
  complete(tenantId: string, scenarioId: string, subject: string): Promise<void>;
  /** undefined while the scenario has not been graded. */
  score(tenantId: string, scenarioId: string): Promise<ScoreView | undefined>;
}

export interface AccessDeps {
  readonly tokens: Pick<ScenarioTokens, 'verify'>;
  readonly scenarios: Pick<Orchestrator, 'get' | 'extend'>;
  readonly runtime: Pick<LabRuntime, 'spawnShell'>;
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
  /** The frostgate.security logger: every refused learner request is logged there. */
  readonly security?: Pick<Logger, 'warn'>;
  readonly now?: () => number;
}
