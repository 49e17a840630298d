import { gateMitigations, type CompiledDoctrine, type EnforcementState, type GateClause, type ProposedMitigation } from './doctrine.js';
import { EventValidationError } from './errors.js';
import { parseOccurredAt, type SecurityEvent } from './event.js';
import { fieldAsKey } from './fields.js';
import { normalizeIp } from './ip.js';
import { MITIGATION_ACTIONS, threatLevelFor, type CompiledRule, type CompiledRuleset, type MitigationAction, type ThreatLevel } from './ruleset.js';
import { distinctMember, windowKey, type WindowStore } from './windows.js';

export interface EvaluationContext {
  /** The tenant the caller bound (from the API key); window state and caps are per tenant. */
  readonly tenantId: string;
  readonly ruleset: CompiledRuleset;
  readonly doctrine: CompiledDoctrine;
  /** Correlation state. A canary replay passes a fresh MemoryWindowStore. */
  readonly windows: WindowStore;
  readonly enforcement: EnforcementState;
}

export interface WindowHit {
  readonly count: number;
  readonly threshold: number;
  readonly window_s: number;
  /** Key field -> value, e.g. {"payload.src_ip": "203.0.113.7"}. */
  readonly key: Readonly<Record<string, string>>;
  readonly distinct: string | null;
}

export interface RuleHit {
  readonly rule_id: string;
  readonly score: number;
  readonly tags: readonly string[];
  readonly window: WindowHit | null;
}

export interface MitigationDecision {
  readonly action: MitigationAction;
  /** The value acted on (IP addresses normalised), or null for an untargeted alert. */
  readonly target: string | null;
  /** The event field the target came from. */
  readonly target_field: string | null;
  readonly duration_s: number;
  readonly applied: boolean;
  readonly gated_by: GateClause | null;
  /** Rules that proposed it, in ruleset order. */
  readonly rule_ids: readonly string[];
}

export interface Decision {
  readonly threat_level: ThreatLevel;
  readonly score: number;
  readonly rules_triggered: readonly string[];
  readonly rule_hits: readonly RuleHit[];
  readonly mitigations: readonly MitigationDecision[];
  readonly explanation: string;
  readonly ruleset_version: string;
  readonly doctrine_version: string;
  /** What the decision is about; see entityKey(). */
  readonly entity: string;
}

/**
 * The entity a decision is about, for "previous decision for the same entity": the source IP
 * (normalised) when there is one, else the username, the API key id, or the event source.
 */
export function entityKey(event: SecurityEvent): string {
  const ip = fieldAsKey(event, 'payload.src_ip');
  const normalized = ip === undefined ? undefined : normalizeIp(ip);
  if (normalized) return `ip:${normalized}`;
  const user = fieldAsKey(event, 'payload.username');
  if (user !== undefined) return `user:${user}`;
  const key = fieldAsKey(event, 'payload.key_id');
  if (key !== undefined) return `key:${key}`;
  return `source:${event.source}`;
}

/** A key or target value: IP addresses in canonical form so ::ffff:1.2.3.4 and 1.2.3.4 agree. */
function keyValue(event: SecurityEvent, path: string): string | undefined {
  const v = fieldAsKey(event, path);
  return v === undefined ? undefined : (normalizeIp(v) ?? v);
}

/**
 * A rule's hit on the event. Only a windowed rule that matches waits (for its counter); the rest
 * answer at once, so an event costs one promise per counter it touches, not one per rule.
 */
function evaluateRule(rule: CompiledRule, event: SecurityEvent, atMs: number, ctx: EvaluationContext): RuleHit | undefined | Promise<RuleHit | undefined> {
  if (!rule.when(event)) return undefined;
  const w = rule.window;
  if (!w) return { rule_id: rule.id, score: rule.score, tags: rule.tags, window: null };
  const values: string[] = [];
  for (const field of w.key) {
    const v = keyValue(event, field);
    if (v === undefined) return undefined; // no key, no counter: the rule cannot apply
    values.push(v);
  }
  let member: string | undefined;
  if (w.distinct !== undefined) {
    const d = keyValue(event, w.distinct);
    if (d === undefined) return undefined;
    member = distinctMember(d);
  } else if (event.event_id !== undefined) member = `e:${event.event_id}`;
  const counted = ctx.windows.record({
    key: windowKey(ctx.tenantId, rule.id, w.key, values, w.distinct),
    atMs,
    windowMs: w.window_s * 1000,
    mode: w.distinct !== undefined ? 'distinct' : 'count',
    member,
  });
  return counted.then((count): RuleHit | undefined => {
    if (count < w.threshold) return undefined;
    const key = Object.fromEntries(w.key.map((f, i) => [f, values[i]!]));
    return {
      rule_id: rule.id,
      score: rule.score,
      tags: rule.tags,
      window: { count, threshold: w.threshold, window_s: w.window_s, key, distinct: w.distinct ?? null },
    };
  });
}

interface Proposal extends ProposedMitigation {
  readonly target_field: string | null;
  readonly rule_ids: string[];
}

/** One proposal per (action, target): longest duration, every proposing rule; stable order. */
function collectProposals(hits: readonly RuleHit[], rules: ReadonlyMap<string, CompiledRule>, event: SecurityEvent, notes: string[]): Proposal[] {
  const merged = new Map<string, Proposal>();
  for (const hit of hits) {
    for (const spec of rules.get(hit.rule_id)!.mitigations) {
      let target: string | null = null;
      if (spec.target !== undefined) {
        const v = keyValue(event, spec.target);
        if (v === undefined) {
          notes.push(`${hit.rule_id}: ${spec.action} skipped, the event has no ${spec.target}`);
          continue;
        }
        target = v;
      }
      const id = `${spec.action}\u0000${target ?? ''}`;
      const prev = merged.get(id);
      const duration = spec.duration_s ?? 0;
      if (prev) merged.set(id, { ...prev, duration_s: Math.max(prev.duration_s, duration), rule_ids: [...prev.rule_ids, hit.rule_id] });
      else merged.set(id, { action: spec.action, target, target_field: spec.target ?? null, duration_s: duration, rule_ids: [hit.rule_id] });
    }
  }
  return [...merged.values()].sort((a, b) => {
    const byAction = MITIGATION_ACTIONS.indexOf(a.action) - MITIGATION_ACTIONS.indexOf(b.action);
    if (byAction !== 0) return byAction;
    const ta = a.target ?? '';
    const tb = b.target ?? '';
    return ta < tb ? -1 : ta > tb ? 1 : 0;
  });
}

function explain(score: number, level: ThreatLevel, hits: readonly RuleHit[], mitigations: readonly MitigationDecision[], notes: readonly string[]): string {
  if (hits.length === 0) return 'no rule triggered; score 0 (none)';
  const rules = hits.map((h) => {
    if (!h.window) return `${h.rule_id} +${h.score}`;
    const key = Object.entries(h.window.key)
      .map(([f, v]) => `${f}=${v}`)
      .join(', ');
    const what = h.window.distinct ? `distinct ${h.window.distinct}` : 'events';
    return `${h.rule_id} +${h.score} (${h.window.count} ${what} in ${h.window.window_s} s for ${key}, threshold ${h.window.threshold})`;
  });
  const parts = [`score ${score} (${level}): ${rules.join('; ')}`];
  for (const m of mitigations) {
    const target = m.target === null ? '' : ` ${m.target}`;
    const duration = m.duration_s > 0 ? ` for ${m.duration_s} s` : '';
    parts.push(`${m.action}${target}${duration}: ${m.applied ? 'applied' : `not applied (${m.gated_by})`}`);
  }
  parts.push(...notes);
  return parts.join('. ');
}

/**
 * THE decision path: every decision FrostGate makes (/defend, /ingest, canary replays) comes
 * from here. Deterministic: the output depends only on the event, the window state, the
 * enforcement counts, the ruleset and the doctrine (no clock, no randomness, stable order).
 * The caller adds decision_id and ledger_index.
 */
export async function evaluate(event: SecurityEvent, context: EvaluationContext): Promise<Decision> {
  const atMs = parseOccurredAt(event.occurred_at);
  if (atMs === undefined) throw new EventValidationError([{ path: 'occurred_at', message: `"${event.occurred_at}" is not an RFC 3339 timestamp` }]);
  const { ruleset, doctrine } = context;
  // Every counter is recorded in rule order before any is awaited, as the rules are listed. A rule
  // that throws becomes a rejection among the others, so a counter already asked for (a Redis call
  // that may fail too) is still awaited, never left to reject unhandled.
  const pending = ruleset.rules.map((rule) => {
    try {
      return evaluateRule(rule, event, atMs, context);
    } catch (err) {
      return Promise.reject(err);
    }
  });
  const counted = pending.filter((o): o is Promise<RuleHit | undefined> => o instanceof Promise);
  const counts = counted.length === 0 ? [] : await Promise.all(counted);
  let next = 0;
  const outcomes = pending.map((o) => (o instanceof Promise ? counts[next++] : o));
  const hits = outcomes.filter((h): h is RuleHit => h !== undefined);
  const score = hits.reduce((sum, h) => sum + h.score, 0);
  const threat_level = threatLevelFor(score, ruleset.thresholds);
  const notes: string[] = [];
  const rulesById = new Map(ruleset.rules.map((r) => [r.id, r]));
  const proposals = collectProposals(hits, rulesById, event, notes);
  const gates =
    proposals.length === 0
      ? []
      : await gateMitigations(proposals, { tenantId: context.tenantId, atMs, threatLevel: threat_level }, doctrine, context.enforcement);
  const mitigations: MitigationDecision[] = proposals.map((p, i) => ({
    action: p.action,
    target: p.target,
    target_field: p.target_field,
    duration_s: gates[i]!.duration_s,
    applied: gates[i]!.applied,
    gated_by: gates[i]!.gated_by,
    rule_ids: p.rule_ids,
  }));
  return {
    threat_level,
    score,
    rules_triggered: hits.map((h) => h.rule_id),
    rule_hits: hits,
    mitigations,
    explanation: explain(score, threat_level, hits, mitigations, notes),
    ruleset_version: ruleset.version,
    doctrine_version: doctrine.version,
    entity: entityKey(event),
  };
}
