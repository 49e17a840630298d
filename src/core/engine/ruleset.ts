import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { canonicalJson, sha256Hex } from './canonical.js';
import { compileCondition, ConditionSchema, type Predicate } from './conditions.js';
import { RulesetValidationError, type ValidationIssue } from './errors.js';
import { fieldPathProblem } from './fields.js';
import { schemaIssues } from './schema-issues.js';

export const THREAT_LEVELS = ['none', 'low', 'medium', 'high', 'critical'] as const;
export type ThreatLevel = (typeof THREAT_LEVELS)[number];
export const ThreatLevelSchema = Type.Union(THREAT_LEVELS.map((l) => Type.Literal(l)));

export function threatLevelRank(level: ThreatLevel): number {
  return THREAT_LEVELS.indexOf(level);
}

export const MITIGATION_ACTIONS = ['block_ip', 'rate_limit', 'challenge', 'alert'] as const;
export type MitigationAction = (typeof MITIGATION_ACTIONS)[number];
export const MitigationActionSchema = Type.Union(MITIGATION_ACTIONS.map((a) => Type.Literal(a)));

/** 30 days: the longest duration a rule may propose (doctrine usually clamps lower). */
export const MAX_RULE_DURATION_S = 30 * 86_400;

export const MitigationSpecSchema = Type.Object(
  {
    action: MitigationActionSchema,
    /** Event field holding what the action applies to, e.g. payload.src_ip. Optional for alert. */
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    duration_s: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RULE_DURATION_S })),
  },
  { additionalProperties: false },
);
export type MitigationSpec = Static<typeof MitigationSpecSchema>;

export const WindowSpecSchema = Type.Object(
  {
    /** Event fields whose values together name one counter, e.g. [payload.src_ip]. */
    key: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 4 }),
    window_s: Type.Integer({ minimum: 1, maximum: 86_400 }),
    /** The rule fires when the count inside the window reaches this. */
    threshold: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /** Count distinct values of this field instead of events. */
    distinct: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type WindowSpec = Static<typeof WindowSpecSchema>;

const ID_PATTERN = '^[a-z0-9][a-z0-9_.-]{0,63}$';

export const RuleSchema = Type.Object(
  {
    id: Type.String({ pattern: ID_PATTERN }),
    description: Type.String({ minLength: 1, maxLength: 500 }),
    score: Type.Integer({ minimum: 0, maximum: 1000 }),
    tags: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9_.:-]{0,63}$' }), { maxItems: 16 })),
    enabled: Type.Optional(Type.Boolean()),
    when: ConditionSchema,
    window: Type.Optional(WindowSpecSchema),
    mitigations: Type.Optional(Type.Array(MitigationSpecSchema, { maxItems: 8 })),
  },
  { additionalProperties: false },
);
export type Rule = Static<typeof RuleSchema>;

const Threshold = Type.Integer({ minimum: 1, maximum: 1_000_000 });

export const RulesetSchema = Type.Object(
  {
    version: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:+-]*$' }),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    /** Minimum total score for each threat level; below `low` is none. */
    thresholds: Type.Object({ low: Threshold, medium: Threshold, high: Threshold, critical: Threshold }, { additionalProperties: false }),
    rules: Type.Array(RuleSchema, { maxItems: 1000 }),
  },
  { additionalProperties: false, $id: 'Ruleset' },
);
export type Ruleset = Static<typeof RulesetSchema>;

export interface CompiledRule {
  readonly id: string;
  readonly description: string;
  readonly score: number;
  readonly tags: readonly string[];
  readonly when: Predicate;
  readonly window: WindowSpec | undefined;
  readonly mitigations: readonly MitigationSpec[];
}

export interface CompiledRuleset {
  readonly version: string;
  /** sha256 of the ruleset's canonical JSON: tells two rulesets with the same version apart. */
  readonly digest: string;
  readonly thresholds: Ruleset['thresholds'];
  /** Enabled rules, in file order (which is the order of rules_triggered). */
  readonly rules: readonly CompiledRule[];
  readonly source: Ruleset;
}

const DISRUPTIVE_NEEDS = new Set<MitigationAction>(['block_ip', 'rate_limit', 'challenge']);

function semanticIssues(ruleset: Ruleset, issues: ValidationIssue[]): CompiledRule[] {
  const t = ruleset.thresholds;
  const order = ['low', 'medium', 'high', 'critical'] as const;
  for (let i = 1; i < order.length; i++) {
    const prev = order[i - 1]!;
    const cur = order[i]!;
    if (t[cur] <= t[prev]) issues.push({ path: `thresholds.${cur}`, message: `must be greater than thresholds.${prev} (${t[prev]}), got ${t[cur]}` });
  }
  const firstIndex = new Map<string, number>();
  const compiled: CompiledRule[] = [];
  ruleset.rules.forEach((rule, i) => {
    const at = `rules[${i}]`;
    const seen = firstIndex.get(rule.id);
    if (seen !== undefined) issues.push({ path: `${at}.id`, message: `duplicate rule id "${rule.id}" (first at rules[${seen}])` });
    else firstIndex.set(rule.id, i);
    const when = compileCondition(rule.when, `${at}.when`, issues);
    if (rule.window) {
      rule.window.key.forEach((k, j) => {
        const p = fieldPathProblem(k);
        if (p) issues.push({ path: `${at}.window.key[${j}]`, message: p });
      });
      if (rule.window.distinct !== undefined) {
        const p = fieldPathProblem(rule.window.distinct);
        if (p) issues.push({ path: `${at}.window.distinct`, message: p });
        if (rule.window.key.includes(rule.window.distinct))
          issues.push({ path: `${at}.window.distinct`, message: 'is also a key field, so it would always count 1' });
      }
    }
    (rule.mitigations ?? []).forEach((m, j) => {
      const mp = `${at}.mitigations[${j}]`;
      if (m.target !== undefined) {
        const p = fieldPathProblem(m.target);
        if (p) issues.push({ path: `${mp}.target`, message: p });
      } else if (DISRUPTIVE_NEEDS.has(m.action)) issues.push({ path: `${mp}.target`, message: `is required for ${m.action}` });
      if (m.duration_s === undefined && DISRUPTIVE_NEEDS.has(m.action)) issues.push({ path: `${mp}.duration_s`, message: `is required for ${m.action}` });
    });
    if (when && rule.enabled !== false) {
      compiled.push({
        id: rule.id,
        description: rule.description,
        score: rule.score,
        tags: rule.tags ?? [],
        when,
        window: rule.window,
        mitigations: rule.mitigations ?? [],
      });
    }
  });
  return compiled;
}

/** Every problem in a ruleset candidate, with JSON paths; [] when it compiles. */
export function rulesetIssues(input: unknown): ValidationIssue[] {
  const issues = schemaIssues(RulesetSchema, input);
  if (issues.length > 0) return issues;
  semanticIssues(input as Ruleset, issues);
  return issues;
}

/** Validates and compiles a ruleset (parsed YAML/JSON data); throws RulesetValidationError. */
export function compileRuleset(input: unknown): CompiledRuleset {
  const issues = schemaIssues(RulesetSchema, input);
  if (issues.length > 0) throw new RulesetValidationError(issues);
  const ruleset = input as Ruleset;
  const rules = semanticIssues(ruleset, issues);
  if (issues.length > 0) throw new RulesetValidationError(issues);
  return Object.freeze({
    version: ruleset.version,
    digest: sha256Hex(canonicalJson(ruleset)),
    thresholds: ruleset.thresholds,
    rules: Object.freeze(rules),
    source: ruleset,
  });
}

/** YAML (a superset of JSON) text to data; a syntax error becomes a validation error with its line. */
export function parseDocumentText(text: string, onError: (issues: ValidationIssue[]) => Error): unknown {
  try {
    return parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const line = err.linePos?.[0];
      throw onError([{ path: '', message: `${line ? `line ${line.line}, column ${line.col}: ` : ''}${err.message.split('\n')[0]}` }]);
    }
    throw err;
  }
}

export function loadRuleset(text: string): CompiledRuleset {
  return compileRuleset(parseDocumentText(text, (issues) => new RulesetValidationError(issues)));
}

export const DEFAULT_RULESET_URL = new URL('../../../rules/default.yaml', import.meta.url);

let defaultRuleset: CompiledRuleset | undefined;

/** The shipped default ruleset (rules/default.yaml), validated once and cached. */
export function loadDefaultRuleset(): CompiledRuleset {
  defaultRuleset ??= loadRuleset(readFileSync(DEFAULT_RULESET_URL, 'utf8'));
  return defaultRuleset;
}

/** The threat level a total score maps to under a ruleset's thresholds. */
export function threatLevelFor(score: number, thresholds: Ruleset['thresholds']): ThreatLevel {
  if (score >= thresholds.critical) return 'critical';
  if (score >= thresholds.high) return 'high';
  if (score >= thresholds.medium) return 'medium';
  if (score >= thresholds.low) return 'low';
  return 'none';
}
