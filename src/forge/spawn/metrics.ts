import { Counter, type Registry } from 'prom-client';
import { TRACKS } from '../templates/schema.js';

/**
 * `spawns_total{track,result}`. result: created, replayed (an idempotent retry), refused_policy,
 * refused_quota, invalid_track (an unknown track, or a template not of the track), conflict (request_id reused with another body), failed (the lab
 * could not be built). An unknown track is counted as track="unknown" so a caller cannot grow
 * the label set.
 */
export type SpawnResult = 'created' | 'replayed' | 'refused_policy' | 'refused_quota' | 'refused_entitlement' | 'invalid_track' | 'conflict' | 'failed';

export interface SpawnMetrics {
  readonly spawns: Counter<'track' | 'result'>;
}

/** Registered on the platform's registry by this module; reused when it already is (several modules, one registry). */
export function createSpawnMetrics(registry: Registry): SpawnMetrics {
  const existing = registry.getSingleMetric('spawns_total') as Counter<'track' | 'result'> | undefined;
  if (existing) return { spawns: existing };
  const spawns = new Counter({
    name: 'spawns_total',
    help: 'Spawn requests by track and result',
    labelNames: ['track', 'result'] as const,
    registers: [registry],
  });
  // The series alerts and the completion rate divide by start at 0, so a first failure is an increase.
  for (const track of TRACKS) for (const result of ['created', 'failed'] as const) spawns.inc({ track, result }, 0);
  return { spawns };
}
