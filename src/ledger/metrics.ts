import { Gauge, type Registry } from 'prom-client';
import type { LedgerName } from '../platform/db/schema.js';

/** One log of one tenant as the checkpoint sweep left it. */
export interface LogState {
  readonly log: LedgerName;
  readonly size: number;
  readonly checkpointSize: number;
  readonly checkpointAt: Date;
}

/**
 * What the background checkpoint sweep saw on its last pass over every tenant: entries per log
 * kind (summed over tenants, no tenant label), entries not yet covered by a signed checkpoint,
 * the age of the oldest checkpoint that lags its log, and when the last pass finished.
 */
export class LedgerSweepMetrics {
  private readonly entries: Gauge<'log'>;
  private readonly unsigned: Gauge<'log'>;
  private readonly lagAge: Gauge<'log'>;
  private readonly lastSweep: Gauge;

  constructor(registry: Registry) {
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      (registry.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge<L>({ name, help, labelNames, registers: [registry] });
    this.entries = gauge('ledger_entries', 'Entries in the Merkle logs, summed over tenants, by log', ['log']);
    this.unsigned = gauge('ledger_unsigned_entries', 'Entries appended after the latest signed checkpoint of their log, summed over tenants', ['log']);
    this.lagAge = gauge(
      'ledger_checkpoint_age_seconds',
      'Age of the latest checkpoint of the log that lags longest behind its entries (0: every log is covered)',
      ['log'],
    );
    this.lastSweep = gauge('ledger_checkpoint_sweep_timestamp_seconds', 'When the checkpoint sweep last finished a pass over every tenant (Unix time)', []);
  }

  /** Records a finished pass. */
  record(states: readonly LogState[], now: Date = new Date()): void {
    for (const log of ['decisions', 'audit'] as const) {
      const mine = states.filter((s) => s.log === log);
      this.entries.set(
        { log },
        mine.reduce((n, s) => n + s.size, 0),
      );
      const lagging = mine.filter((s) => s.size > s.checkpointSize);
      this.unsigned.set(
        { log },
        lagging.reduce((n, s) => n + s.size - s.checkpointSize, 0),
      );
      const oldest = Math.min(now.getTime(), ...lagging.map((s) => s.checkpointAt.getTime()));
      this.lagAge.set({ log }, (now.getTime() - oldest) / 1000);
    }
    this.lastSweep.set(now.getTime() / 1000);
  }
}
