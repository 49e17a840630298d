/** One problem found while validating a ruleset, doctrine or event: where (a JSON path) and why. */
export interface ValidationIssue {
  /** JSON path from the document root, e.g. `rules[3].when.all[0].cidr[1]`; '' for the root. */
  readonly path: string;
  readonly message: string;
}

export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n');
}

abstract class ValidationFailure extends Error {
  abstract readonly code: string;
  constructor(
    what: string,
    readonly issues: readonly ValidationIssue[],
  ) {
    super(`${what} has ${issues.length} problem(s):\n${formatIssues(issues)}`);
  }
}

export class RulesetValidationError extends ValidationFailure {
  readonly code = 'invalid_ruleset';
  constructor(issues: readonly ValidationIssue[]) {
    super('ruleset', issues);
  }
}

export class DoctrineValidationError extends ValidationFailure {
  readonly code = 'invalid_doctrine';
  constructor(issues: readonly ValidationIssue[]) {
    super('doctrine', issues);
  }
}

export class EventValidationError extends ValidationFailure {
  readonly code = 'invalid_event';
  constructor(issues: readonly ValidationIssue[]) {
    super('event', issues);
  }
}

/** A regular expression outside the linear-time-safe subset (see docs in safe-regex.ts). */
export class UnsafeRegexError extends Error {
  readonly code = 'unsafe_regex';
}

/** The correlation window backend failed; the decision cannot be made (fail closed). */
export class WindowStoreError extends Error {
  readonly code = 'window_store_unavailable';
}
