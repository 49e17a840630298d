import { Counter, Histogram, type Registry } from 'prom-client';

/** Gradings that produced a verdict: how many, how long they took, how learners scored. */
export interface ScoringMetrics {
  readonly graded: Counter<'track' | 'reason'>;
  readonly seconds: Histogram<'track'>;
  readonly percent: Histogram<'track'>;
}

export function createScoringMetrics(registry: Registry): ScoringMetrics {
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    graded:
      existing<Counter<'track' | 'reason'>>('scenarios_graded_total') ??
      new Counter({
        name: 'scenarios_graded_total',
        help: 'Scenarios graded into a signed verdict, by track and reason (submit, ttl, ...)',
        labelNames: ['track', 'reason'] as const,
        registers: [registry],
      }),
    seconds:
      existing<Histogram<'track'>>('grading_duration_seconds') ??
      new Histogram({
        name: 'grading_duration_seconds',
        help: 'Time to grade a scenario (checks in the lab, evidence, signature, storage), by track',
        labelNames: ['track'] as const,
        buckets: [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
        registers: [registry],
      }),
    percent:
      existing<Histogram<'track'>>('scenario_score_percent') ??
      new Histogram({
        name: 'scenario_score_percent',
        help: 'Score of each graded scenario in percent of its maximum, by track',
        labelNames: ['track'] as const,
        buckets: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
        registers: [registry],
      }),
  };
}
