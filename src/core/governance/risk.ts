import { threatLevelRank, type Ruleset } from '../engine/ruleset.js';
import type { Doctrine } from '../engine/doctrine.js';
import type { RateLimitPolicy } from '../ratelimit/policy.js';
import type { GovernedKind } from '../../platform/db/schema.js';

export type Risk = 'low' | 'medium' | 'high';

export interface RiskAssessment {
  readonly risk: Risk;
  readonly reasons: string[];
  readonly requiredApprovals: number;
  /** The scope every approver must hold. */
  readonly approverScope: 'governance:approve' | 'admin';
}

const MODE_RANK = { observe: 0, guarded: 1, active: 2 } as const;

/**
 * How risky a change is, computed by the server from the proposal against what runs now:
 * loosening the doctrine, changing allowlists, rules that can block and loosened rate limits are
 * high risk (two approvals by admins); removing rules is medium; the rest is low.
 */
export function assessRisk(kind: GovernedKind, current: unknown, proposed: unknown): RiskAssessment {
  const reasons: string[] = [];
  let risk = 'low' as Risk;
  const raise = (to: Risk, reason: string) => {
    reasons.push(reason);
    if (to === 'high' || (to === 'medium' && risk === 'low')) risk = to;
  };

  if (kind === 'ruleset') {
    const before = current as Ruleset;
    const after = proposed as Ruleset;
    const old = new Map(before.rules.map((r) => [r.id, JSON.stringify(r)]));
    for (const rule of after.rules) {
      const blocks = (rule.mitigations ?? []).some((m) => m.action === 'block_ip');
      if (blocks && old.get(rule.id) !== JSON.stringify(rule)) raise('high', `rule ${rule.id} can block and is new or changed`);
      else if (!old.has(rule.id)) raise('low', `rule ${rule.id} is new`);
    }
    const kept = new Set(after.rules.map((r) => r.id));
    for (const id of old.keys()) if (!kept.has(id)) raise('medium', `rule ${id} is removed`);
    for (const level of ['low', 'medium', 'high', 'critical'] as const) {
      if (after.thresholds[level] < before.thresholds[level])
        raise('high', `threshold ${level} lowered (${before.thresholds[level]} -> ${after.thresholds[level]})`);
    }
  } else if (kind === 'doctrine') {
    const before = current as Doctrine;
    const after = proposed as Doctrine;
    if (MODE_RANK[after.mode] > MODE_RANK[before.mode]) raise('high', `mode loosened ${before.mode} -> ${after.mode}`);
    if (JSON.stringify([...after.allowlist_cidrs].sort()) !== JSON.stringify([...before.allowlist_cidrs].sort())) raise('high', 'allowlist changed');
    if (threatLevelRank(after.block_min_threat_level) < threatLevelRank(before.block_min_threat_level))
      raise('high', `block_min_threat_level lowered ${before.block_min_threat_level} -> ${after.block_min_threat_level}`);
    if (after.max_active_blocks > before.max_active_blocks) raise('high', 'max_active_blocks raised');
    if (after.blocks_per_window.max / after.blocks_per_window.window_s > before.blocks_per_window.max / before.blocks_per_window.window_s)
      raise('high', 'blocks_per_window raised');
    for (const [action, s] of Object.entries(after.max_duration_s)) {
      const prev = (before.max_duration_s as Record<string, number | undefined>)[action];
      if (s !== undefined && (prev === undefined || s > prev)) raise('high', `max_duration_s.${action} raised`);
    }
    if (reasons.length === 0) raise('medium', 'doctrine tightened or unchanged in effect');
  } else {
    const before = current as RateLimitPolicy;
    const after = proposed as RateLimitPolicy;
    for (const [name, c] of Object.entries(after.classes)) {
      const prev = Object.hasOwn(before.classes, name) ? before.classes[name] : undefined; // a class may be named `constructor`
      const rate = (b: { points: number; duration_s: number }) => b.points / b.duration_s;
      if (!prev || rate(c.per_key) > rate(prev.per_key) || rate(c.per_tenant) > rate(prev.per_tenant))
        raise('high', `rate limits of class ${name} loosened or new`);
    }
    if (after.invalid_keys.points > before.invalid_keys.points) raise('high', 'invalid-key budget raised');
    if (reasons.length === 0) raise('low', 'rate limits tightened or unchanged');
  }
  if (reasons.length === 0) reasons.push('no effective change');
  return { risk, reasons, requiredApprovals: risk === 'high' ? 2 : 1, approverScope: risk === 'high' ? 'admin' : 'governance:approve' };
}
