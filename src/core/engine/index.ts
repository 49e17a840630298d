/**
 * FrostGate's decision engine: the one evaluate() every decision goes through, rulesets and
 * doctrine as validated data, correlation windows (memory or Redis). Pure apart from the
 * injected WindowStore and EnforcementState.
 */
export { evaluate, entityKey } from './evaluate.js';
export type { Decision, EvaluationContext, MitigationDecision, RuleHit, WindowHit } from './evaluate.js';
export { decisionDiff } from './diff.js';
export type { DecisionDiff, DiffableDecision, MitigationRef } from './diff.js';
export { SecurityEventSchema, EVENT_TYPES, EVENT_LIMITS, KNOWN_PAYLOAD_FIELDS, eventIssues, parseEvent, parseOccurredAt, isSecurityEvent } from './event.js';
export type { SecurityEvent, EventCheckOptions } from './event.js';
export {
  RulesetSchema,
  RuleSchema,
  WindowSpecSchema,
  MitigationSpecSchema,
  ThreatLevelSchema,
  MitigationActionSchema,
  THREAT_LEVELS,
  MITIGATION_ACTIONS,
  compileRuleset,
  rulesetIssues,
  loadRuleset,
  loadDefaultRuleset,
  threatLevelFor,
  threatLevelRank,
  DEFAULT_RULESET_URL,
} from './ruleset.js';
export type { Ruleset, Rule, CompiledRuleset, CompiledRule, ThreatLevel, MitigationAction, MitigationSpec, WindowSpec } from './ruleset.js';
export { ConditionSchema } from './conditions.js';
export type { Condition } from './conditions.js';
export {
  DoctrineSchema,
  DOCTRINE_MODES,
  GATE_CLAUSES,
  NO_ENFORCEMENT,
  compileDoctrine,
  doctrineIssues,
  loadDoctrine,
  loadDefaultDoctrine,
  DEFAULT_DOCTRINE_URL,
} from './doctrine.js';
export type { Doctrine, CompiledDoctrine, DoctrineMode, GateClause, EnforcementState } from './doctrine.js';
export { MemoryWindowStore, RedisWindowStore, windowKey } from './windows.js';
export type { WindowStore, WindowRecord, MemoryWindowStoreOptions, RedisWindowStoreOptions } from './windows.js';
export { assertSafeRegex, compileSafeRegex, MAX_REGEX_INPUT, MAX_REGEX_PATTERN } from './safe-regex.js';
export type { SafeRegex } from './safe-regex.js';
export { parseIp, parseCidr, normalizeIp, cidrContains } from './ip.js';
export type { IpAddress, Cidr } from './ip.js';
export { RulesetValidationError, DoctrineValidationError, EventValidationError, UnsafeRegexError, WindowStoreError, formatIssues } from './errors.js';
export type { ValidationIssue } from './errors.js';
