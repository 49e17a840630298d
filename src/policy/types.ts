/**
 * The policy engine's public data shapes. They mirror Cedar's JSON formats (entity uids,
 * `__entity` references inside values, `__extn` for extension values) so a caller builds
 * them once and the engine hands them to Cedar without copying.
 */

/** An entity uid: `{ type: 'Learner', id: 'alice' }`; actions use type `Action`. */
export interface EntityUid {
  readonly type: string;
  readonly id: string;
}

/** A reference to an entity inside an attribute or context value. */
export interface EntityRefValue {
  readonly __entity: EntityUid;
}

/** A Cedar extension value, e.g. `{ __extn: { fn: 'decimal', arg: '0.05' } }`. */
export interface ExtensionValue {
  readonly __extn: { readonly fn: string; readonly arg: CedarValue } | { readonly fn: string; readonly args: readonly CedarValue[] };
}

/** A Cedar value in JSON form. Numbers must be integers (Cedar `Long`). */
export type CedarValue = boolean | number | string | EntityRefValue | ExtensionValue | readonly CedarValue[] | { readonly [attribute: string]: CedarValue };

/** An entity the decision needs (its attributes or its parents are read by a policy). */
export interface PolicyEntity {
  readonly uid: EntityUid;
  readonly attrs?: { readonly [attribute: string]: CedarValue };
  readonly parents?: readonly EntityUid[];
}

export interface AuthorizationRequest {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context?: { readonly [attribute: string]: CedarValue };
  /**
   * Only the entities whose attributes or parents the policies read (each costs ~20 µs);
   * an entity that is only compared by uid need not be passed.
   */
  readonly entities?: readonly PolicyEntity[];
}

export interface PolicyDecision {
  readonly decision: 'allow' | 'deny';
  /**
   * Ids (`@id` annotations) of the policies that determined the decision: the permits
   * that matched for an allow, the forbids that matched for a deny. Empty for a default
   * deny (no permit matched).
   */
  readonly reasons: readonly string[];
  /**
   * Why the request could not be evaluated cleanly: request or entities not matching the
   * schema, or a policy that failed at evaluation (`<policy id>: <message>`). Any error
   * makes the decision `deny`, even if Cedar itself would have allowed (fail closed: an
   * erroring forbid is otherwise skipped by Cedar).
   */
  readonly errors: readonly string[];
  /** The policy version that decided; audit records should name it. */
  readonly version: string;
}

/** Policy texts keyed by source name (a file name such as `training.cedar`). */
export type PolicySources = Readonly<Record<string, string>>;

/** Everything a version is built from: the policy texts and the schema. */
export interface PolicyBundle {
  readonly policies: PolicySources;
  /** Cedar human schema text, or the JSON schema format as an object. */
  readonly schema: string | SchemaJsonObject;
}

/** Cedar's JSON schema format (namespace name -> definition); validated by Cedar, not here. */
export type SchemaJsonObject = { readonly [namespace: string]: unknown };

export interface PolicyHealth {
  readonly ready: boolean;
  readonly version: string;
  readonly policy_count: number;
  readonly sources: readonly string[];
  readonly loaded_at: string;
  readonly cedar_version: string;
  readonly reloads: number;
}
