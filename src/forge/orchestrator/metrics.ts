import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LabRuntime } from '../runtime/types.js';
import { LAB_LIVE_STATES } from './states.js';
import type { ScenarioStore } from './store.js';

/** Lab builds and the leftovers reconcile removes; registered once per registry. */
export interface OrchestratorMetrics {
  /** Time from `provisioning` to a lab that runs (or a build that failed), by runtime driver. */
  readonly labBuild: Histogram<'driver' | 'result'>;
  /** Labs found on a host without a live scenario and removed by reconcile: each one was a leak. */
  readonly leftoversRemoved: Counter;
}

export function createOrchestratorMetrics(registry: Registry): OrchestratorMetrics {
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    labBuild:
      existing<Histogram<'driver' | 'result'>>('lab_build_duration_seconds') ??
      new Histogram({
        name: 'lab_build_duration_seconds',
        help: 'Time to build a lab (namespaces, links, devices), by runtime driver and result (ok, failed)',
        labelNames: ['driver', 'result'] as const,
        buckets: [0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120],
        registers: [registry],
      }),
    leftoversRemoved:
      existing<Counter>('lab_leftovers_removed_total') ??
      new Counter({ name: 'lab_leftovers_removed_total', help: 'Labs reconcile found without a live scenario and removed', registers: [registry] }),
  };
}

/**
 * Gauges read at scrape time from the runtime: `labs_running{worker}` (labs whose devices run
 * on this host) and, where the scenario store is known, `labs_orphaned{worker}`: labs whose
 * scenario is no longer live (a leak until the next reconcile removes it).
 */
export function registerLabGauges(
  registry: Registry,
  opts: { worker: string; runtime: Pick<LabRuntime, 'list'>; store?: Pick<ScenarioStore, 'states'>; running?: boolean },
): void {
  const labs = () => opts.runtime.list().catch(() => undefined);
  if (opts.running !== false && !registry.getSingleMetric('labs_running'))
    new Gauge({
      name: 'labs_running',
      help: 'Labs running, by the worker (host) they run on',
      labelNames: ['worker'] as const,
      registers: [registry],
      async collect() {
        const list = await labs();
        if (list) this.set({ worker: opts.worker }, list.filter((l) => l.status === 'running').length);
      },
    });
  const store = opts.store;
  if (store && !registry.getSingleMetric('labs_orphaned'))
    new Gauge({
      name: 'labs_orphaned',
      help: 'Labs present whose scenario is not live (destroyed, expired, failed or unknown): leaked until reconcile removes them',
      labelNames: ['worker'] as const,
      registers: [registry],
      async collect() {
        const list = await labs();
        if (!list) return; // a runtime that does not answer keeps the last value; readiness reports it
        const ids = list.map((l) => l.scenarioId).filter((id): id is string => id !== undefined);
        const live = new Set((await store.states(ids)).filter((r) => LAB_LIVE_STATES.has(r.state) || r.state === 'provisioning').map((r) => r.scenario_id));
        this.set({ worker: opts.worker }, list.filter((l) => l.scenarioId === undefined || !live.has(l.scenarioId)).length);
      },
    });
}
