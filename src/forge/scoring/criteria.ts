import type { CheckSpec, CombinatorCheckSpec, LeafCheckSpec } from '../templates/checks.js';
import type { SuccessCriterion } from '../templates/schema.js';
import type { ScenarioVariables } from '../templates/variables.js';
import { captureStream, type CapturedCommand, type ExecContext } from './capture.js';
import { CheckFailed, type Answers, type CommandOutcome } from './checks/context.js';
import { runLeafCheck } from './checks/run.js';

/**
 * Evaluates a template's successCriteria against a lab: each leaf check with its timeout and
 * convergence retries, combinators (all / any / at_least k), dependencies (a criterion whose
 * dependency did not pass is `skipped`, never run) and hint penalties.
 */

/** Runs argv in a device; the scoring service binds it to a LabRuntime and a scenario. */
export interface DeviceExec {
  exec(
    device: string,
    argv: readonly string[],
    opts: { context: ExecContext; timeoutMs: number },
  ): Promise<CommandOutcome & { startedAt: string; endedAt: string }>;
}

export type CheckStatus = 'passed' | 'failed' | 'error';

export interface CheckOutcome {
  readonly type: string;
  readonly status: CheckStatus;
  readonly detail: string;
  readonly attempts: number;
  /** Commands of the last attempt (leaf checks). */
  readonly commands: readonly CapturedCommand[];
  /** Combinators: the outcome of each child. */
  readonly checks?: readonly CheckOutcome[];
}

export type CriterionStatus = 'passed' | 'failed' | 'skipped' | 'error';

export interface CriterionResult {
  readonly id: string;
  readonly description: string;
  readonly status: CriterionStatus;
  readonly points: number;
  readonly awarded: number;
  readonly penalty: number;
  readonly hints_used: readonly number[];
  readonly depends_on: readonly string[];
  readonly detail: string;
  /** Absent for skipped criteria (nothing ran). */
  readonly outcome?: CheckOutcome;
}

export interface EvaluateInput {
  readonly criteria: readonly SuccessCriterion[];
  readonly exec: DeviceExec;
  readonly answers?: Answers;
  readonly variables?: ScenarioVariables;
  /** criterion id -> indices of the hints the learner revealed. */
  readonly hintsUsed?: Readonly<Record<string, readonly number[]>>;
  /** Test seam for convergence waits. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

const DEFAULT_TIMEOUT_S = 10;
const DEFAULT_INTERVAL_S = 1;

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isCombinator(spec: CheckSpec): spec is CombinatorCheckSpec {
  return spec.type === 'all' || spec.type === 'any' || spec.type === 'at_least';
}

interface Timing {
  readonly timeout_s?: number;
  readonly wait_s?: number;
  readonly interval_s?: number;
}

class Evaluator {
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  constructor(private readonly input: EvaluateInput) {
    this.sleep = input.sleep ?? realSleep;
    this.now = input.now ?? Date.now;
  }

  async check(spec: CheckSpec, criterionId: string): Promise<CheckOutcome> {
    if (isCombinator(spec)) return this.combinator(spec, criterionId);
    return this.leaf(spec, criterionId);
  }

  private async combinator(spec: CombinatorCheckSpec, criterionId: string): Promise<CheckOutcome> {
    const children: CheckOutcome[] = [];
    for (const child of spec.checks) children.push(await this.check(child, criterionId));
    const passed = children.filter((c) => c.status === 'passed').length;
    const needed = spec.type === 'all' ? children.length : spec.type === 'any' ? 1 : (spec.k ?? children.length);
    const ok = passed >= needed;
    const errored = !ok && children.some((c) => c.status === 'error');
    return {
      type: spec.type,
      status: ok ? 'passed' : errored ? 'error' : 'failed',
      detail: `${passed}/${children.length} checks passed, ${needed} needed`,
      attempts: 1,
      commands: [],
      checks: children,
    };
  }

  private async leaf(spec: LeafCheckSpec, criterionId: string): Promise<CheckOutcome> {
    const timing = spec as Timing;
    const timeoutMs = (timing.timeout_s ?? DEFAULT_TIMEOUT_S) * 1000;
    const deadline = this.now() + (timing.wait_s ?? 0) * 1000;
    const intervalMs = (timing.interval_s ?? DEFAULT_INTERVAL_S) * 1000;
    let attempts = 0;
    for (;;) {
      attempts++;
      const commands: CapturedCommand[] = [];
      let status: CheckStatus;
      let detail: string;
      try {
        const verdict = await runLeafCheck(
          spec,
          {
            criterionId,
            answers: this.input.answers ?? {},
            variables: this.input.variables ?? {},
            run: async (device, argv, context, ms) => {
              const res = await this.input.exec.exec(device, argv, { context, timeoutMs: ms });
              commands.push({
                device,
                context,
                argv: [...argv],
                started_at: res.startedAt,
                ended_at: res.endedAt,
                exit_code: res.exitCode,
                timed_out: res.timedOut,
                stdout: captureStream(res.stdout),
                stderr: captureStream(res.stderr),
              });
              return res;
            },
          },
          timeoutMs,
        );
        status = verdict.pass ? 'passed' : 'failed';
        detail = verdict.detail;
      } catch (err) {
        // A tool that printed nothing usable is a failed attempt; anything else (the lab is
        // gone, the device does not exist) is an error and is not retried.
        if (!(err instanceof CheckFailed)) return { type: spec.type, status: 'error', detail: (err as Error).message, attempts, commands };
        status = 'failed';
        detail = err.message;
      }
      if (status === 'passed' || this.now() + intervalMs > deadline) return { type: spec.type, status, detail, attempts, commands };
      await this.sleep(intervalMs);
    }
  }
}

/** Grades every criterion, in template order; dependencies are evaluated first when needed. */
export async function evaluateCriteria(input: EvaluateInput): Promise<CriterionResult[]> {
  const evaluator = new Evaluator(input);
  const byId = new Map(input.criteria.map((c) => [c.id, c]));
  const done = new Map<string, Promise<CriterionResult>>();

  const grade = (criterion: SuccessCriterion): Promise<CriterionResult> => {
    let pending = done.get(criterion.id);
    if (!pending) {
      pending = gradeOne(criterion);
      done.set(criterion.id, pending);
    }
    return pending;
  };

  const gradeOne = async (c: SuccessCriterion): Promise<CriterionResult> => {
    const dependsOn = c.depends_on ?? [];
    const hintsUsed = [...new Set(input.hintsUsed?.[c.id] ?? [])]
      .filter((i) => Number.isInteger(i) && i >= 0 && i < (c.hints?.length ?? 0))
      .sort((a, b) => a - b);
    const penalty = Math.min(
      c.points,
      hintsUsed.reduce((sum, i) => sum + (c.hints?.[i]?.penalty ?? 0), 0),
    );
    const base = { id: c.id, description: c.description, points: c.points, penalty, hints_used: hintsUsed, depends_on: dependsOn };
    for (const dep of dependsOn) {
      const target = byId.get(dep);
      const result = target ? await grade(target) : undefined;
      if (result?.status !== 'passed') {
        return { ...base, penalty: 0, status: 'skipped', awarded: 0, detail: `skipped: ${dep} did not pass` };
      }
    }
    const outcome = await evaluator.check(c.check as CheckSpec, c.id);
    const awarded = outcome.status === 'passed' ? c.points - penalty : 0;
    return { ...base, status: outcome.status, awarded, detail: outcome.detail, outcome };
  };

  const results: CriterionResult[] = [];
  // Sequential on purpose: checks share the lab, and two convergence waits in parallel would
  // only compete for the same two cores the lab runs on.
  for (const c of input.criteria) results.push(await grade(c));
  return results;
}
