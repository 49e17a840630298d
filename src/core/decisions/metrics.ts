import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { IngestBacklog } from './ingest-backlog.js';

/**
 * The decision metrics, registered on the platform's registry by this module rather than in
 * src/platform/metrics.ts: only the decision path records them. Reused when the registry already
 * has them (a second module on the same platform must not throw "already registered").
 */
export interface DecisionMetrics {
  /** Stored decisions by threat level and path (defend, ingest); replays of a known event_id are not counted. */
  readonly decisions: Counter<'threat_level' | 'path'>;
  /** Time spent in evaluate() alone (rules, windows, doctrine), without validation or storage. */
  readonly evaluateSeconds: Histogram<'path'>;
  /** Group commits read and written again because another process appended to the same tenant's log in between. */
  readonly groupConflicts: Counter;
  /** Events per group commit (one read and one write statement each), by path: how well writes batch. */
  readonly groupSize: Histogram<'path'>;
  /** Stored decisions by each rule that triggered (a decision with three rules counts once for each). */
  readonly rulesTriggered: Counter<'rule'>;
}

export function createDecisionMetrics(registry: Registry): DecisionMetrics {
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    decisions:
      existing<Counter<'threat_level' | 'path'>>('decisions_total') ??
      new Counter({
        name: 'decisions_total',
        help: 'Decisions stored, by threat level and path',
        labelNames: ['threat_level', 'path'] as const,
        registers: [registry],
      }),
    evaluateSeconds:
      existing<Histogram<'path'>>('decision_evaluate_duration_seconds') ??
      new Histogram({
        name: 'decision_evaluate_duration_seconds',
        help: 'Duration of evaluate() for one event (rules, correlation windows, doctrine)',
        labelNames: ['path'] as const,
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
        registers: [registry],
      }),
    groupConflicts:
      existing<Counter>('decision_group_conflicts_total') ??
      new Counter({
        name: 'decision_group_conflicts_total',
        help: "Decision group commits retried because another process appended to the tenant's decisions log between their read and their write",
        registers: [registry],
      }),
    groupSize:
      existing<Histogram<'path'>>('decision_group_size') ??
      new Histogram({
        name: 'decision_group_size',
        help: 'Events per decision group commit (one read and one write statement each), by path',
        labelNames: ['path'] as const,
        buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
        registers: [registry],
      }),
    rulesTriggered:
      existing<Counter<'rule'>>('decision_rules_triggered_total') ??
      new Counter({
        name: 'decision_rules_triggered_total',
        help: 'Stored decisions by rule triggered (one count per rule of each decision)',
        labelNames: ['rule'] as const,
        registers: [registry],
      }),
  };
}

/** The /ingest backlog as gauges, read when scraped (one shared sample at most every 250 ms). */
export function registerBacklogMetrics(registry: Registry, backlog: Pick<IngestBacklog, 'current'>): void {
  if (registry.getSingleMetric('ingest_backlog_events')) return;
  new Gauge({
    name: 'ingest_backlog_events',
    help: 'Events accepted by /ingest (all tenants and processes) and not decided yet',
    registers: [registry],
    async collect() {
      // A failed read shows as NaN (the database check of /health says why), not as a stale value.
      this.set(
        await backlog.current().then(
          (b) => b.events,
          () => Number.NaN,
        ),
      );
    },
  });
  new Gauge({
    name: 'ingest_backlog_seconds',
    help: "Seconds of work the /ingest backlog stands for at this process's decide rate while busy (0 before it has decided)",
    registers: [registry],
    async collect() {
      this.set(
        await backlog.current().then(
          (b) => b.seconds,
          () => Number.NaN,
        ),
      );
    },
  });
}

/**
 * Gauges read when Prometheus scrapes: blocks in force this process serves to bouncers, and the
 * ingest batches accepted but not yet decided (the durable queue's depth; only where the ingest
 * consumer runs, so a fleet does not count one queue several times).
 */
export function registerDecisionGauges(registry: Registry, sources: { activeBlocks: () => number; ingestBacklog?: () => Promise<number> }): void {
  if (!registry.getSingleMetric('bouncer_active_blocks'))
    new Gauge({
      name: 'bouncer_active_blocks',
      help: 'IP blocks in force among the tenants whose bouncers pulled from this process',
      registers: [registry],
      collect() {
        this.set(sources.activeBlocks());
      },
    });
  const backlog = sources.ingestBacklog;
  if (backlog && !registry.getSingleMetric('ingest_backlog_batches'))
    new Gauge({
      name: 'ingest_backlog_batches',
      help: 'Ingest batches stored durably but not yet decided (the ingest queue depth)',
      registers: [registry],
      async collect() {
        // A queue that does not answer keeps the last value: one dependency down must not fail the whole scrape (readiness names it).
        await backlog().then(
          (n) => this.set(n),
          () => undefined,
        );
      },
    });
}
