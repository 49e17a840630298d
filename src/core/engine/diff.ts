import type { Decision, MitigationDecision } from './evaluate.js';
import type { GateClause } from './doctrine.js';
import type { ThreatLevel } from './ruleset.js';

/** The parts of a stored decision a diff compares (a persisted decision row fits). */
export type DiffableDecision = Pick<Decision, 'threat_level' | 'score' | 'rules_triggered' | 'ruleset_version' | 'doctrine_version'> & {
  readonly mitigations: readonly Pick<MitigationDecision, 'action' | 'target' | 'duration_s' | 'applied' | 'gated_by'>[];
};

export interface MitigationRef {
  readonly action: string;
  readonly target: string | null;
}

interface MitigationState {
  readonly duration_s: number;
  readonly applied: boolean;
  readonly gated_by: GateClause | null;
}

export interface DecisionDiff {
  /** No previous decision for this entity. */
  readonly first: boolean;
  readonly changed: boolean;
  readonly threat_level: { readonly from: ThreatLevel | null; readonly to: ThreatLevel } | null;
  readonly score: { readonly from: number | null; readonly to: number } | null;
  readonly rules_added: readonly string[];
  readonly rules_removed: readonly string[];
  readonly mitigations_added: readonly MitigationRef[];
  readonly mitigations_removed: readonly MitigationRef[];
  readonly mitigations_changed: readonly (MitigationRef & { readonly from: MitigationState; readonly to: MitigationState })[];
  readonly ruleset_version: { readonly from: string; readonly to: string } | null;
  readonly doctrine_version: { readonly from: string; readonly to: string } | null;
  readonly summary: string;
}

function refId(m: MitigationRef): string {
  return `${m.action}\u0000${m.target ?? ''}`;
}

/** What changed between the previous decision about an entity and this one (for persistence). */
export function decisionDiff(previous: DiffableDecision | null | undefined, current: DiffableDecision): DecisionDiff {
  const prevRules = new Set(previous?.rules_triggered ?? []);
  const curRules = new Set(current.rules_triggered);
  const prevM = new Map((previous?.mitigations ?? []).map((m) => [refId(m), m]));
  const curM = new Map(current.mitigations.map((m) => [refId(m), m]));
  const ref = (m: MitigationRef): MitigationRef => ({ action: m.action, target: m.target });
  const state = (m: MitigationState): MitigationState => ({ duration_s: m.duration_s, applied: m.applied, gated_by: m.gated_by });
  const mitigations_changed = [...curM.entries()]
    .filter(([id, m]) => {
      const p = prevM.get(id);
      return p !== undefined && (p.applied !== m.applied || p.gated_by !== m.gated_by || p.duration_s !== m.duration_s);
    })
    .map(([id, m]) => ({ ...ref(m), from: state(prevM.get(id)!), to: state(m) }));
  const diff = {
    first: previous == null,
    threat_level: previous?.threat_level === current.threat_level ? null : { from: previous?.threat_level ?? null, to: current.threat_level },
    score: previous?.score === current.score ? null : { from: previous?.score ?? null, to: current.score },
    rules_added: current.rules_triggered.filter((r) => !prevRules.has(r)),
    rules_removed: (previous?.rules_triggered ?? []).filter((r) => !curRules.has(r)),
    mitigations_added: current.mitigations.filter((m) => !prevM.has(refId(m))).map(ref),
    mitigations_removed: (previous?.mitigations ?? []).filter((m) => !curM.has(refId(m))).map(ref),
    mitigations_changed,
    ruleset_version: previous && previous.ruleset_version !== current.ruleset_version ? { from: previous.ruleset_version, to: current.ruleset_version } : null,
    doctrine_version:
      previous && previous.doctrine_version !== current.doctrine_version ? { from: previous.doctrine_version, to: current.doctrine_version } : null,
  };
  const parts: string[] = [];
  if (diff.first) parts.push(`first decision: ${current.threat_level}`);
  else if (diff.threat_level) parts.push(`threat level ${diff.threat_level.from} -> ${diff.threat_level.to}`);
  if (!diff.first && diff.rules_added.length) parts.push(`rules added: ${diff.rules_added.join(', ')}`);
  if (diff.rules_removed.length) parts.push(`rules removed: ${diff.rules_removed.join(', ')}`);
  if (!diff.first && diff.mitigations_added.length)
    parts.push(`mitigations added: ${diff.mitigations_added.map((m) => `${m.action} ${m.target ?? ''}`.trim()).join(', ')}`);
  if (diff.mitigations_removed.length)
    parts.push(`mitigations removed: ${diff.mitigations_removed.map((m) => `${m.action} ${m.target ?? ''}`.trim()).join(', ')}`);
  if (mitigations_changed.length) parts.push(`mitigations changed: ${mitigations_changed.map((m) => `${m.action} ${m.target ?? ''}`.trim()).join(', ')}`);
  const changed =
    diff.first ||
    diff.threat_level !== null ||
    diff.score !== null ||
    diff.rules_added.length + diff.rules_removed.length + diff.mitigations_added.length + diff.mitigations_removed.length + mitigations_changed.length > 0 ||
    diff.ruleset_version !== null ||
    diff.doctrine_version !== null;
  return { ...diff, changed, summary: parts.length ? parts.join('; ') : changed ? 'score or versions changed' : 'no change' };
}
