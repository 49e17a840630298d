export { TemplateSchema, TRACKS, TIERS, type TemplateDocument, type TemplateDevice, type SuccessCriterion, type Track, type Tier } from './schema.js';
export { loadTemplate, parseTemplate, contentVersion, type LabTemplate } from './load.js';
export { templateLimits, toLabSpec } from './to-spec.js';
export { TemplateCatalog } from './catalog.js';
export { TemplateInvalidError, formatProblem, type TemplateProblem } from './errors.js';
export { scenarioVariables, substituteVariables, type ScenarioVariables } from './variables.js';
export { CHECK_TYPES, LEAF_CHECK_TYPES, type CheckSpec, type LeafCheckSpec, type CombinatorCheckSpec, type VariableSpec } from './checks.js';
