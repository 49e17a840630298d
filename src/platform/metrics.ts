import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per platform instance (tests start many in one process), holding every metric
 * the product exports. Modules receive the counters they use, not the registry.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    failOpenTriggered: new Counter({
      name: 'fail_open_triggered_total',
      help: 'Requests let through because a fail-open switch was acknowledged and its dependency failed',
      labelNames: ['component'] as const,
      registers: [registry],
    }),
    authSuccess: new Counter({ name: 'auth_success_total', help: 'Requests authenticated by an API key', registers: [registry] }),
    authFailure: new Counter({
      name: 'auth_failure_total',
      help: 'Requests refused by the auth gate, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    rateLimit: new Counter({
      name: 'rate_limit_total',
      help: 'Rate-limit outcomes: allowed, limited, bypass, unavailable (fail closed), fail_open',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    governance: new Counter({
      name: 'governance_operations_total',
      help: 'Governance operations by action (propose, approve, reject, withdraw, canary, deploy, rollback) and result',
      labelNames: ['action', 'result'] as const,
      registers: [registry],
    }),
    tenantMismatch: new Counter({ name: 'tenant_mismatch_total', help: "Requests naming a tenant other than their key's", registers: [registry] }),
  };
  // Series alerts watch start at 0, so the first occurrence is an increase Prometheus can see.
  for (const component of ['auth', 'ratelimit']) metrics.failOpenTriggered.inc({ component }, 0);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
