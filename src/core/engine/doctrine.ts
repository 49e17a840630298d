import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { canonicalJson, sha256Hex } from './canonical.js';
import { DoctrineValidationError, type ValidationIssue } from './errors.js';
import { anyCidrContains, isNonHostAddress, parseCidr, parseIp, type Cidr } from './ip.js';
import {
  MITIGATION_ACTIONS,
  MitigationActionSchema,
  parseDocumentText,
  threatLevelRank,
  ThreatLevelSchema,
  type MitigationAction,
  type ThreatLevel,
} from './ruleset.js';
import { schemaIssues } from './schema-issues.js';

/**
 * Doctrine: the rules of engagement that decide which proposed mitigations are applied.
 * - observe: nothing is applied (decisions show what would have been);
 * - guarded: only non-disruptive actions (default: alert) are applied;
 * - active: everything that passes the other clauses is applied.
 */
export const DOCTRINE_MODES = ['observe', 'guarded', 'active'] as const;
export type DoctrineMode = (typeof DOCTRINE_MODES)[number];

const Duration = Type.Integer({ minimum: 0, maximum: 30 * 86_400 });

export const DoctrineSchema = Type.Object(
  {
    version: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:+-]*$' }),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    mode: Type.Union(DOCTRINE_MODES.map((m) => Type.Literal(m))),
    /** Addresses in these networks are never the target of a disruptive action. */
    allowlist_cidrs: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000 }),
    /** block_ip is applied only when the decision's threat level is at least this. */
    block_min_threat_level: ThreatLevelSchema,
    /** At most this many block_ip decisions active at once for a tenant. */
    max_active_blocks: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    /** At most `max` block_ip decisions applied per `window_s` seconds for a tenant. */
    blocks_per_window: Type.Object(
      { window_s: Type.Integer({ minimum: 1, maximum: 86_400 }), max: Type.Integer({ minimum: 0, maximum: 10_000_000 }) },
      { additionalProperties: false },
    ),
    /** Longest duration per action; longer proposals are clamped. */
    max_duration_s: Type.Object(
      { block_ip: Type.Optional(Duration), rate_limit: Type.Optional(Duration), challenge: Type.Optional(Duration), alert: Type.Optional(Duration) },
      { additionalProperties: false },
    ),
    /** Actions guarded mode applies. Default [alert]; block_ip is always disruptive. */
    non_disruptive_actions: Type.Optional(Type.Array(MitigationActionSchema, { maxItems: MITIGATION_ACTIONS.length })),
  },
  { additionalProperties: false, $id: 'Doctrine' },
);
export type Doctrine = Static<typeof DoctrineSchema>;

/** The doctrine clause that kept a mitigation from being applied. */
export const GATE_CLAUSES = [
  'invalid_target',
  'not_a_host',
  'allowlist',
  'min_threat_level',
  'max_active_blocks',
  'blocks_per_window',
  'mode_observe',
  'mode_guarded',
] as const;
export type GateClause = (typeof GATE_CLAUSES)[number];

export interface CompiledDoctrine {
  readonly version: string;
  readonly digest: string;
  readonly mode: DoctrineMode;
  readonly allowlist: readonly Cidr[];
  readonly blockMinThreatLevel: ThreatLevel;
  readonly maxActiveBlocks: number;
  readonly blocksPerWindow: { readonly windowS: number; readonly max: number };
  readonly maxDurationS: Readonly<Partial<Record<MitigationAction, number>>>;
  readonly nonDisruptive: ReadonlySet<MitigationAction>;
  readonly source: Doctrine;
}

export function doctrineIssues(input: unknown): ValidationIssue[] {
  const issues = schemaIssues(DoctrineSchema, input);
  if (issues.length > 0) return issues;
  const d = input as Doctrine;
  d.allowlist_cidrs.forEach((text, i) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) issues.push({ path: `allowlist_cidrs[${i}]`, message: `invalid CIDR "${text}": ${parsed.reason}` });
  });
  const blockAt = d.non_disruptive_actions?.indexOf('block_ip') ?? -1;
  if (blockAt >= 0) issues.push({ path: `non_disruptive_actions[${blockAt}]`, message: 'block_ip is always disruptive' });
  return issues;
}

export function compileDoctrine(input: unknown): CompiledDoctrine {
  const issues = doctrineIssues(input);
  if (issues.length > 0) throw new DoctrineValidationError(issues);
  const d = input as Doctrine;
  return Object.freeze({
    version: d.version,
    digest: sha256Hex(canonicalJson(d)),
    mode: d.mode,
    allowlist: d.allowlist_cidrs.map((text) => (parseCidr(text) as { ok: true; cidr: Cidr }).cidr),
    blockMinThreatLevel: d.block_min_threat_level,
    maxActiveBlocks: d.max_active_blocks,
    blocksPerWindow: { windowS: d.blocks_per_window.window_s, max: d.blocks_per_window.max },
    maxDurationS: { ...d.max_duration_s },
    nonDisruptive: new Set<MitigationAction>(d.non_disruptive_actions ?? ['alert']),
    source: d,
  });
}

export function loadDoctrine(text: string): CompiledDoctrine {
  return compileDoctrine(parseDocumentText(text, (issues) => new DoctrineValidationError(issues)));
}

export const DEFAULT_DOCTRINE_URL = new URL('../../../rules/doctrine.default.yaml', import.meta.url);
let defaultDoctrine: CompiledDoctrine | undefined;

/** The shipped default doctrine (rules/doctrine.default.yaml), validated once and cached. */
export function loadDefaultDoctrine(): CompiledDoctrine {
  defaultDoctrine ??= loadDoctrine(readFileSync(DEFAULT_DOCTRINE_URL, 'utf8'));
  return defaultDoctrine;
}

/**
 * What the caller knows about enforcement already in force, so the engine stays pure. Counts
 * are of applied block_ip decisions for the tenant, as of `atMs` (the event's time).
 */
export interface EnforcementState {
  activeBlocks(tenantId: string, atMs: number): number | Promise<number>;
  /** block_ip decisions applied in (sinceMs, atMs]. */
  blocksApplied(tenantId: string, sinceMs: number, atMs: number): number | Promise<number>;
}

/** No blocks in force: for tests and replays that start from nothing. */
export const NO_ENFORCEMENT: EnforcementState = { activeBlocks: () => 0, blocksApplied: () => 0 };

export interface ProposedMitigation {
  readonly action: MitigationAction;
  /** Resolved target value (an IP address is normalised), or null for an untargeted alert. */
  readonly target: string | null;
  readonly duration_s: number;
}

export interface GateResult {
  readonly duration_s: number;
  readonly applied: boolean;
  readonly gated_by: GateClause | null;
}

/**
 * Gates proposals in order (the order matters for the caps: earlier applied blocks count against
 * later ones). The first failing clause names the gate, checked in this order: invalid_target,
 * not_a_host, allowlist, min_threat_level, max_active_blocks, blocks_per_window, then the mode, so an
 * observe-mode decision still says which clause would have stopped an action.
 */
export async function gateMitigations(
  proposals: readonly ProposedMitigation[],
  situation: { readonly tenantId: string; readonly atMs: number; readonly threatLevel: ThreatLevel },
  doctrine: CompiledDoctrine,
  enforcement: EnforcementState,
): Promise<GateResult[]> {
  let blocksAppliedHere = 0;
  let active: number | undefined;
  let recent: number | undefined;
  const results: GateResult[] = [];
  for (const p of proposals) {
    const cap = doctrine.maxDurationS[p.action];
    const duration_s = cap === undefined ? p.duration_s : Math.min(p.duration_s, cap);
    const gate = async (): Promise<GateClause | null> => {
      const disruptive = !doctrine.nonDisruptive.has(p.action);
      const ip = p.target === null ? undefined : parseIp(p.target);
      if (p.action === 'block_ip' && !ip) return 'invalid_target';
      // Whatever the doctrine says: an address no host holds (0.0.0.0, ::, broadcast, multicast).
      if (disruptive && ip && isNonHostAddress(ip)) return 'not_a_host';
      if (disruptive && ip && anyCidrContains(doctrine.allowlist, ip)) return 'allowlist';
      if (p.action === 'block_ip') {
        if (threatLevelRank(situation.threatLevel) < threatLevelRank(doctrine.blockMinThreatLevel)) return 'min_threat_level';
        active ??= await enforcement.activeBlocks(situation.tenantId, situation.atMs);
        if (active + blocksAppliedHere >= doctrine.maxActiveBlocks) return 'max_active_blocks';
        recent ??= await enforcement.blocksApplied(situation.tenantId, situation.atMs - doctrine.blocksPerWindow.windowS * 1000, situation.atMs);
        if (recent + blocksAppliedHere >= doctrine.blocksPerWindow.max) return 'blocks_per_window';
      }
      if (doctrine.mode === 'observe') return 'mode_observe';
      if (doctrine.mode === 'guarded' && disruptive) return 'mode_guarded';
      return null;
    };
    const gated_by = await gate();
    if (gated_by === null && p.action === 'block_ip') blocksAppliedHere++;
    results.push({ duration_s, applied: gated_by === null, gated_by });
  }
  return results;
}
