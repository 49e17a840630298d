/** One problem found while loading policies: which file, which policy, where, why. */
export interface PolicyIssue {
  /** Source name: a policy file (`training.cedar`), the schema file, or a directory. */
  readonly source: string;
  readonly policyId?: string;
  /** 1-based line and column in the source, when Cedar reported a location. */
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
}

export function formatIssue(i: PolicyIssue): string {
  const where = i.line === undefined ? i.source : `${i.source}:${i.line}:${i.column ?? 1}`;
  return i.policyId ? `${where}: policy ${i.policyId}: ${i.message}` : `${where}: ${i.message}`;
}

export type PolicyLoadErrorCode =
  /** The policy directory does not exist or cannot be read. */
  | 'policy_dir_missing'
  /** No policies at all: an engine with none would deny everything silently. */
  | 'policy_set_empty'
  /** No schema file (schema.cedarschema or schema.cedarschema.json). */
  | 'policy_schema_missing'
  /** The schema does not parse or does not resolve. */
  | 'policy_schema_invalid'
  /** A policy file does not parse. */
  | 'policy_syntax'
  /** A policy without an `@id("...")` annotation, or an id used twice. */
  | 'policy_id'
  /** Policy templates (`?principal` slots) are not supported by the engine. */
  | 'policy_template_unsupported'
  /** A policy does not type-check against the schema (unknown attribute, wrong type, ...). */
  | 'policy_validation';

/**
 * Loading or reloading policies failed. The engine keeps serving the version it had (a
 * reload is all or nothing); `issues` lists every problem found, each naming its file.
 */
export class PolicyLoadError extends Error {
  constructor(
    readonly code: PolicyLoadErrorCode,
    readonly issues: readonly PolicyIssue[],
  ) {
    super(`policy load failed (${code}), ${issues.length} problem(s):\n${issues.map(formatIssue).join('\n')}`);
    this.name = 'PolicyLoadError';
  }
}
