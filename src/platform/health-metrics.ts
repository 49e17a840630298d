import { Counter, Gauge, type Registry } from 'prom-client';
import type { CheckResult, HealthRegistry } from './health.js';

type Readiness = { ok: boolean; checks: Record<string, CheckResult> };

/**
 * Readiness as metrics: `health_ready` and `health_check_up{check}` are evaluated when Prometheus
 * scrapes, and every evaluation (a probe's or a scrape's) that changes the answer counts in
 * `health_ready_transitions_total`, so flapping between two scrapes is still seen.
 * `frostgate_info{role,version}` names what runs behind each target.
 */
export function trackReadiness(registry: Registry, health: HealthRegistry, info: { role: string; version: string }): () => Promise<Readiness> {
  let last: boolean | undefined;
  const transitions =
    (registry.getSingleMetric('health_ready_transitions_total') as Counter | undefined) ??
    new Counter({ name: 'health_ready_transitions_total', help: 'Changes of the readiness answer (ready to not ready and back)', registers: [registry] });
  const run = async (): Promise<Readiness> => {
    const result = await health.run();
    if (last !== undefined && last !== result.ok) transitions.inc();
    last = result.ok;
    return result;
  };
  if (!registry.getSingleMetric('health_ready')) {
    // Both gauges of one scrape share one evaluation (prom-client collects metrics concurrently).
    let inFlight: Promise<Readiness> | undefined;
    const once = () => (inFlight ??= run().finally(() => (inFlight = undefined)));
    new Gauge({
      name: 'health_ready',
      help: 'Readiness of this process, evaluated at scrape time: 1 ready, 0 not',
      registers: [registry],
      async collect() {
        this.set((await once()).ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'health_check_up',
      help: 'Each readiness check, evaluated at scrape time: 1 answers, 0 does not',
      labelNames: ['check'] as const,
      registers: [registry],
      async collect() {
        for (const [check, r] of Object.entries((await once()).checks)) this.set({ check }, r.ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'frostgate_info',
      help: 'The role and version this process runs (always 1)',
      labelNames: ['role', 'version'] as const,
      registers: [registry],
    }).set(info, 1);
  }
  return run;
}
