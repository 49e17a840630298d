import { compileDoctrine, loadDefaultDoctrine, type CompiledDoctrine, type Doctrine } from '../engine/doctrine.js';
import { compileRuleset, loadDefaultRuleset, type CompiledRuleset, type Ruleset } from '../engine/ruleset.js';
import { RulesetValidationError, DoctrineValidationError } from '../engine/errors.js';
import { DEFAULT_RATE_LIMIT_POLICY, parseRateLimitPolicy, type RateLimitPolicy } from '../ratelimit/policy.js';
import { InvalidRateLimitPolicyError } from '../ratelimit/policy.js';
import type { GovernedKind } from '../../platform/db/schema.js';

/** What each kind's content compiles to: the same compilers the engine and limiter load with. */
export interface GovernedContent {
  ruleset: { source: Ruleset; compiled: CompiledRuleset };
  doctrine: { source: Doctrine; compiled: CompiledDoctrine };
  ratelimit: { source: RateLimitPolicy; compiled: RateLimitPolicy };
}

export interface ContentProblem {
  readonly path: string;
  readonly message: string;
}

export class InvalidContentError extends Error {
  readonly code = 'invalid_content';
  constructor(
    readonly kind: GovernedKind,
    readonly problems: readonly ContentProblem[],
  ) {
    super(`invalid ${kind}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  }
}

/** Validates proposed content with the engine's own schema; precise errors with paths. */
export function compileContent<K extends GovernedKind>(kind: K, content: unknown): GovernedContent[K] {
  try {
    if (kind === 'ruleset') return { source: content as Ruleset, compiled: compileRuleset(content) } as GovernedContent[K];
    if (kind === 'doctrine') return { source: content as Doctrine, compiled: compileDoctrine(content) } as GovernedContent[K];
    const policy = parseRateLimitPolicy(content);
    return { source: policy, compiled: policy } as GovernedContent[K];
  } catch (err) {
    if (err instanceof RulesetValidationError || err instanceof DoctrineValidationError) {
      throw new InvalidContentError(
        kind,
        err.issues.map((i) => ({ path: i.path, message: i.message })),
      );
    }
    if (err instanceof InvalidRateLimitPolicyError) throw new InvalidContentError(kind, err.issues);
    throw err;
  }
}

export function versionOf(kind: GovernedKind, content: unknown): string {
  const version = (content as { version?: unknown }).version;
  return typeof version === 'string' || typeof version === 'number' ? String(version) : '';
}

/** The shipped defaults every tenant runs until it deploys its own version. */
export function defaultContent(kind: GovernedKind): { version: string; source: unknown } {
  if (kind === 'ruleset') {
    const r = loadDefaultRuleset();
    return { version: r.version, source: r.source };
  }
  if (kind === 'doctrine') {
    const d = loadDefaultDoctrine();
    return { version: d.version, source: d.source };
  }
  return { version: DEFAULT_RATE_LIMIT_POLICY.version, source: DEFAULT_RATE_LIMIT_POLICY };
}
