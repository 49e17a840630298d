/**
 * Typed builders for the requests the repository policies expect (policies/schema.cedarschema).
 * The engine itself stays generic; these keep the Cedar shapes of the spawn and deploy
 * gates in one place, next to the schema they must match, so the spawn and governance
 * modules do not hand-write `__entity` references.
 */
import type { AuthorizationRequest, PolicyDecision } from './types.js';

const unixSeconds = (t: Date | number): number => (typeof t === 'number' ? Math.floor(t) : Math.floor(t.getTime() / 1000));
const ref = (type: string, id: string) => ({ __entity: { type, id } });

export type Tier = 'basic' | 'pro' | 'enterprise';

export interface SpawnPolicyInput {
  /** The learner (spawn `subject`). */
  readonly subject: string;
  /** The tenant the spawn acts for; the spawn gate (spawn.cedar) then requires the entitlement to be of it. */
  readonly tenant?: string;
  readonly template: {
    readonly id: string;
    readonly track: string;
    /** A Tier; any other string reaches Cedar as it is. */
    readonly tier: string;
  };
  /** The verified entitlement for this spawn; omit when the learner holds none. */
  readonly entitlement?: {
    readonly track: string;
    /** A Tier; any other string reaches Cedar as it is. */
    readonly tier: string;
    readonly credits: number;
    /** Date, or unix seconds. */
    readonly expiresAt: Date | number;
    /** The learner the entitlement was issued to (must equal `subject` to be allowed). */
    readonly subject: string;
    /** The tenant the entitlement was granted in. */
    readonly tenant?: string;
  };
  /** Decision time (Date or unix seconds). */
  readonly now: Date | number;
  readonly usage: { readonly activeLabsSubject: number; readonly activeLabsTenant: number; readonly spawnsToday: number };
  readonly limits: { readonly maxConcurrentPerSubject: number; readonly maxConcurrentPerTenant: number; readonly maxSpawnsPerDay: number };
}

/** Request for Action::"spawn" (training gate + quota gate). Passes one entity: the Template. */
export function spawnAuthorizationRequest(input: SpawnPolicyInput): AuthorizationRequest {
  const e = input.entitlement;
  return {
    principal: { type: 'Learner', id: input.subject },
    action: { type: 'Action', id: 'spawn' },
    resource: { type: 'Template', id: input.template.id },
    context: {
      now: unixSeconds(input.now),
      ...(input.tenant !== undefined ? { tenant: ref('Tenant', input.tenant) } : {}),
      ...(e
        ? {
            entitlement: {
              track: ref('Track', e.track),
              tier: e.tier,
              credits: e.credits,
              expires_at: unixSeconds(e.expiresAt),
              subject: ref('Learner', e.subject),
              ...(e.tenant !== undefined ? { tenant: ref('Tenant', e.tenant) } : {}),
            },
          }
        : {}),
      active_labs_subject: input.usage.activeLabsSubject,
      active_labs_tenant: input.usage.activeLabsTenant,
      spawns_today: input.usage.spawnsToday,
      limits: {
        max_concurrent_per_subject: input.limits.maxConcurrentPerSubject,
        max_concurrent_per_tenant: input.limits.maxConcurrentPerTenant,
        max_spawns_per_day: input.limits.maxSpawnsPerDay,
      },
    },
    entities: [
      { uid: { type: 'Template', id: input.template.id }, attrs: { tier: input.template.tier }, parents: [{ type: 'Track', id: input.template.track }] },
    ],
  };
}

export interface ExtendPolicyInput {
  readonly subject: string;
  readonly template: { readonly id: string; readonly track: string; readonly tier: string; readonly maxExtensions?: number };
  readonly extensionsTaken: number;
}

/** Request for Action::"extend" (policies/extend.cedar). Passes one entity: the Template. */
export function extendAuthorizationRequest(input: ExtendPolicyInput): AuthorizationRequest {
  return {
    principal: { type: 'Learner', id: input.subject },
    action: { type: 'Action', id: 'extend' },
    resource: { type: 'Template', id: input.template.id },
    context: {
      extensions_taken: input.extensionsTaken,
      ...(input.template.maxExtensions !== undefined ? { template_max_extensions: input.template.maxExtensions } : {}),
    },
    entities: [
      { uid: { type: 'Template', id: input.template.id }, attrs: { tier: input.template.tier }, parents: [{ type: 'Track', id: input.template.track }] },
    ],
  };
}

export interface DeployPolicyInput {
  /** The operator (API key subject or console user) asking to deploy. */
  readonly operator: string;
  readonly change: {
    readonly id: string;
    /** Tenant the change belongs to; omit for global defaults. */
    readonly tenant?: string;
    readonly kind: string;
    /** 'low', 'medium', 'high', or what the change says. */
    readonly risk: string;
    /** 'human', 'analyzer', or what the change says. */
    readonly origin: string;
    /** Approvals by principals other than the author. */
    readonly approvals: number;
    readonly requiredApprovals: number;
    readonly canary?: {
      readonly passed: boolean;
      readonly eventsReplayed: number;
      readonly decisionsChanged: number;
      readonly newlyBlockedEntities: number;
    };
  };
}

/** Request for Action::"deploy" (governance deploy gate). Passes one entity: the Change. */
export function deployAuthorizationRequest(input: DeployPolicyInput): AuthorizationRequest {
  const c = input.change;
  return {
    principal: { type: 'Operator', id: input.operator },
    action: { type: 'Action', id: 'deploy' },
    resource: { type: 'Change', id: c.id },
    context: {},
    entities: [
      {
        uid: { type: 'Change', id: c.id },
        attrs: {
          kind: c.kind,
          risk: c.risk,
          origin: c.origin,
          approvals: c.approvals,
          required_approvals: c.requiredApprovals,
          ...(c.canary
            ? {
                canary: {
                  passed: c.canary.passed,
                  events_replayed: c.canary.eventsReplayed,
                  decisions_changed: c.canary.decisionsChanged,
                  newly_blocked_entities: c.canary.newlyBlockedEntities,
                },
              }
            : {}),
        },
        parents: c.tenant ? [{ type: 'Tenant', id: c.tenant }] : [],
      },
    ],
  };
}

/**
 * Why a spawn was refused, for the HTTP status: `quota` (429) when only quota policies
 * decided, `policy` (403) for any training refusal or a default deny, `error` (500: the
 * request did not match the schema or a policy failed; a bug, logged with `errors`),
 * `null` when allowed.
 */
export function spawnRefusalKind(d: PolicyDecision): 'quota' | 'policy' | 'error' | null {
  if (d.decision === 'allow') return null;
  if (d.errors.length > 0) return 'error';
  if (d.reasons.length > 0 && d.reasons.every((r) => r.startsWith('quota.'))) return 'quota';
  return 'policy';
}
