import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import type { BindTenant } from '../../platform/auth/tenant.js';
import type { ActiveVersions } from '../governance/active.js';
import { DatabaseQueue, JetStreamQueue, type DurableQueue } from '../../platform/bus/queue.js';
import { NatsBus } from '../../platform/bus/bus.js';
import { createDecisionMetrics, registerBacklogMetrics, registerDecisionGauges } from './metrics.js';
import { IngestBacklog } from './ingest-backlog.js';
import { IngestService } from './ingest.js';
import { BouncerDecisions } from './bouncer.js';
import { BlockRemovals } from './block-removals.js';
import type { AuditTrail } from '../../ledger/audit.js';
import { decisionRoutes } from './routes.js';
import { DecisionService } from './service.js';

export interface DecisionsModule {
  readonly service: DecisionService;
  readonly ingest: IngestService;
  readonly routes: AppPlugin;
}

/** JetStream when NATS is configured (production), the database queue embedded. */
async function openIngestQueue(platform: Pick<Platform, 'db' | 'bus'>): Promise<DurableQueue> {
  return platform.bus instanceof NatsBus ? JetStreamQueue.open(platform.bus.nc, 'FG_INGEST', 'frostgate-ingest') : new DatabaseQueue(platform.db, 'INGEST');
}

export async function createDecisionsModule(
  platform: Pick<Platform, 'db' | 'redis' | 'metrics' | 'bus' | 'log' | 'security' | 'onClose' | 'config' | 'health'>,
  deps: { active: ActiveVersions; bindTenant: BindTenant; consumeIngest: boolean; audit: AuditTrail },
): Promise<DecisionsModule> {
  const service = new DecisionService(platform.db, deps.active, platform.redis, createDecisionMetrics(platform.metrics.registry));
  const backlog = new IngestBacklog(platform.db, {
    maxEvents: platform.config.ingest.maxBacklogEvents,
    maxSeconds: platform.config.ingest.maxBacklogSeconds,
  });
  registerBacklogMetrics(platform.metrics.registry, backlog);
  // Reported, never failing readiness: a full backlog slows producers down, it does not take the node out.
  platform.health.register({
    name: 'ingest_backlog',
    check: async () => {
      const b = await backlog.current();
      return {
        events: b.events,
        batches: b.batches,
        seconds_of_work: Math.round(b.seconds * 10) / 10,
        decided_per_s: Math.round(b.decidedPerS),
        max_events: backlog.bounds.maxEvents,
        max_seconds: backlog.bounds.maxSeconds,
        accepting: b.events < backlog.bounds.maxEvents && b.seconds <= backlog.bounds.maxSeconds,
      };
    },
  });
  const queue = await openIngestQueue(platform);
  const ingest = new IngestService(platform.db, queue, service, platform.log.child({ module: 'ingest' }), backlog);
  if (deps.consumeIngest) {
    ingest.start();
    platform.onClose(() => ingest.stop());
  }
  const bouncer = new BouncerDecisions(platform.db);
  bouncer.start();
  registerDecisionGauges(platform.metrics.registry, {
    activeBlocks: () => bouncer.activeBlockCount(),
    ...(deps.consumeIngest ? { ingestBacklog: () => queue.depth() } : {}),
  });
  platform.onClose(() => bouncer.close());
  // Lookups in other processes may lag by the bouncer cache's TTL (1 s, plus a refresh read); this one's never do.
  service.onCommitted((tenantId, records) => {
    if (records.some((r) => r.mitigations.some((m) => m.action === 'block_ip' && m.applied))) bouncer.invalidate(tenantId);
  });
  return {
    service,
    ingest,
    routes: {
      name: 'decisions',
      plugin: decisionRoutes({
        service,
        ingest,
        bouncer,
        removals: new BlockRemovals(platform.db, deps.audit),
        bindTenant: deps.bindTenant,
        security: platform.security,
      }),
    },
  };
}
