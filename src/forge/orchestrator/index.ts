export { Orchestrator, newScenarioId, type OrchestratorDeps, type StartOptions } from './service.js';
export { ScenarioStore, type Scenario, type ScenarioDevice, type NewScenario, type TransitionPatch } from './store.js';
export {
  ScenarioStateError,
  SCENARIO_STATES,
  TRANSITIONS,
  LAB_LIVE_STATES,
  ACTIVE_STATES,
  canTransition,
  assertTransition,
  type ScenarioState,
} from './states.js';
export { variablesSecretFromConfig } from './variables-secret.js';
