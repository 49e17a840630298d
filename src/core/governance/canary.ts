import { MemoryWindowStore } from '../engine/windows.js';
import { NO_ENFORCEMENT, type CompiledDoctrine } from '../engine/doctrine.js';
import { evaluate, type Decision } from '../engine/evaluate.js';
import type { CompiledRuleset } from '../engine/ruleset.js';
import type { SecurityEvent } from '../engine/event.js';

/** Where canaries get "the tenant's last N events": implemented by the decisions module. */
export interface CanaryEventSource {
  recentEvents(tenantId: string, limit: number): Promise<SecurityEvent[]>;
}

export interface CanaryResult {
  readonly passed: boolean;
  readonly events_replayed: number;
  readonly decisions_changed: number;
  readonly changed_ratio: number;
  readonly by_threat_level: Record<string, number>;
  readonly newly_blocked: string[];
  readonly unblocked: string[];
  readonly samples: Array<{ event_id: string | null; before: string; after: string; rules_before: readonly string[]; rules_after: readonly string[] }>;
  readonly deployed: { ruleset: string; doctrine: string };
  readonly proposed: { ruleset: string; doctrine: string };
  readonly ran_at: string;
}

const blocked = (d: Decision) => d.mitigations.some((m) => m.action === 'block_ip' && m.applied);

/**
 * Replays events through the deployed and the proposed versions with fresh, private window
 * stores and no enforcement state: nothing the live engine sees is touched.
 */
export async function runCanary(
  tenantId: string,
  events: readonly SecurityEvent[],
  deployed: { ruleset: CompiledRuleset; doctrine: CompiledDoctrine },
  proposed: { ruleset: CompiledRuleset; doctrine: CompiledDoctrine },
): Promise<CanaryResult> {
  const before = { windows: new MemoryWindowStore(), enforcement: NO_ENFORCEMENT };
  const after = { windows: new MemoryWindowStore(), enforcement: NO_ENFORCEMENT };
  const byLevel: Record<string, number> = {};
  const newlyBlocked = new Set<string>();
  const unblocked = new Set<string>();
  const samples: CanaryResult['samples'] = [];
  let changed = 0;
  for (const event of events) {
    const a = await evaluate(event, { tenantId, ruleset: deployed.ruleset, doctrine: deployed.doctrine, ...before });
    const b = await evaluate(event, { tenantId, ruleset: proposed.ruleset, doctrine: proposed.doctrine, ...after });
    const differs = a.threat_level !== b.threat_level || a.rules_triggered.join() !== b.rules_triggered.join() || blocked(a) !== blocked(b);
    if (!differs) continue;
    changed++;
    const key = `${a.threat_level}->${b.threat_level}`;
    byLevel[key] = (byLevel[key] ?? 0) + 1;
    if (!blocked(a) && blocked(b)) newlyBlocked.add(b.entity);
    if (blocked(a) && !blocked(b)) unblocked.add(a.entity);
    if (samples.length < 20)
      samples.push({
        event_id: event.event_id ?? null,
        before: a.threat_level,
        after: b.threat_level,
        rules_before: a.rules_triggered,
        rules_after: b.rules_triggered,
      });
  }
  return {
    passed: events.length > 0,
    events_replayed: events.length,
    decisions_changed: changed,
    changed_ratio: events.length === 0 ? 0 : changed / events.length,
    by_threat_level: byLevel,
    newly_blocked: [...newlyBlocked].sort(),
    unblocked: [...unblocked].sort(),
    samples,
    deployed: { ruleset: deployed.ruleset.version, doctrine: deployed.doctrine.version },
    proposed: { ruleset: proposed.ruleset.version, doctrine: proposed.doctrine.version },
    ran_at: new Date().toISOString(),
  };
}
