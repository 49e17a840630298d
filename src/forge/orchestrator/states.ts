import { AppError } from '../../platform/http/problem.js';
import type { ScenarioStateName } from '../../platform/db/schema.js';

export type ScenarioState = ScenarioStateName;

export const SCENARIO_STATES: readonly ScenarioState[] = ['pending', 'provisioning', 'running', 'grading', 'scored', 'destroyed', 'failed', 'expired'];

/**
 * The lifecycle (DESIGN.md): pending -> provisioning -> running -> grading -> scored ->
 * destroyed, plus failed and expired. running/scored -> provisioning is a reset (the lab is
 * rebuilt from the template). destroyed and expired are final: their lab is gone.
 */
export const TRANSITIONS: Readonly<Record<ScenarioState, readonly ScenarioState[]>> = {
  pending: ['provisioning', 'failed', 'destroyed', 'expired'],
  provisioning: ['running', 'failed', 'destroyed', 'expired'],
  running: ['provisioning', 'grading', 'failed', 'destroyed', 'expired'],
  grading: ['scored', 'failed', 'destroyed', 'expired'],
  scored: ['provisioning', 'destroyed', 'expired'],
  failed: ['destroyed'],
  destroyed: [],
  expired: [],
};

/** States in which the scenario's lab exists and must be kept by reconcile. */
export const LAB_LIVE_STATES: ReadonlySet<ScenarioState> = new Set(['running', 'grading', 'scored']);

/** States a TTL still applies to (anything whose lab exists or may yet exist). */
export const ACTIVE_STATES: ReadonlySet<ScenarioState> = new Set(['pending', 'provisioning', 'running', 'grading', 'scored']);

export function canTransition(from: ScenarioState, to: ScenarioState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * An action the scenario's current state does not allow (an illegal transition, or extending
 * a lab that is gone). Answered as 409 conflict; `reason` is the stable machine-readable part.
 */
export class ScenarioStateError extends AppError {
  readonly reason = 'illegal_transition';
  constructor(
    readonly scenarioId: string,
    readonly from: ScenarioState,
    readonly action: ScenarioState | 'extend' | 'exec',
  ) {
    super('conflict', `scenario ${scenarioId} is ${from}; it cannot ${verb(action)}`, {
      reason: 'illegal_transition',
      scenario_id: scenarioId,
      state: from,
      action,
    });
    this.name = 'ScenarioStateError';
  }
}

function verb(action: ScenarioState | 'extend' | 'exec'): string {
  if (action === 'extend') return 'be extended';
  if (action === 'exec') return 'run commands';
  return `move to ${action}`;
}

export function assertTransition(scenarioId: string, from: ScenarioState, to: ScenarioState): void {
  if (!canTransition(from, to)) throw new ScenarioStateError(scenarioId, from, to);
}
