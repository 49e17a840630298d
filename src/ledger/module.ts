import { Counter } from 'prom-client';
import type { Platform } from '../platform/platform.js';
import { storageFromConfig } from '../platform/storage/from-config.js';
import { AuditTrail } from './audit.js';
import { FailOpenAudit } from './fail-open-audit.js';
import { verifierOf } from './note.js';
import { LEDGER_NAMES, LedgerService } from './service.js';
import { LedgerSweepMetrics, type LogState } from './metrics.js';
import { loadLedgerSigningKey } from './signing-key.js';
import { CheckpointWitness } from './witness.js';

export interface LedgerModule {
  readonly ledger: LedgerService;
  readonly audit: AuditTrail;
  readonly failOpen: FailOpenAudit;
  /** The checkpoint witness (FG_LEDGER_WITNESS=storage), synced by the background checkpointer. */
  readonly witness: CheckpointWitness | undefined;
}

function witnessRefusals(platform: Pick<Platform, 'metrics'>): Counter<'log'> {
  const { registry } = platform.metrics;
  return (
    (registry.getSingleMetric('ledger_witness_refused_total') as Counter<'log'> | undefined) ??
    new Counter({
      name: 'ledger_witness_refused_total',
      help: 'Checkpoints the ledger witness refused to export: the database no longer extends the exported history',
      labelNames: ['log'] as const,
      registers: [registry],
    })
  );
}

/**
 * The ledger with its signing key and the background checkpointer: every interval, each log that
 * grew gets a new signed checkpoint (appends past the entry threshold get one at the next tick),
 * and the witness exports the checkpoints issued since its last tick, on demand ones included.
 */
export async function createLedgerModule(platform: Pick<Platform, 'config' | 'db' | 'log' | 'security' | 'metrics' | 'onClose'>): Promise<LedgerModule> {
  const { config } = platform;
  // dev keeps its generated key next to its data; a throwaway in-memory database gets an ephemeral one.
  const persistDevKey = config.env === 'dev' && platform.db.location !== 'memory';
  const signingKey = await loadLedgerSigningKey({ keyPath: config.keys.ledgerKeyPath, dataDir: persistDevKey ? config.dataDir : undefined });
  const ledger = new LedgerService(
    platform.db,
    signingKey,
    { origin: config.ledger.origin, checkpointIntervalS: config.ledger.checkpointIntervalS, checkpointMaxEntries: config.ledger.checkpointMaxEntries },
    platform.security,
  );
  platform.log.info({ key_id: signingKey.keyId, key_source: signingKey.source }, 'ledger signing key loaded');
  const witness =
    config.ledger.witness === 'storage'
      ? new CheckpointWitness({
          storage: storageFromConfig(config),
          ledger,
          trusted: [verifierOf(signingKey.signer)],
          log: platform.log,
          security: platform.security,
          refusals: witnessRefusals(platform),
        })
      : undefined;
  const sweepMetrics = new LedgerSweepMetrics(platform.metrics.registry);
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      const tenants = await platform.db.db.selectFrom('tenants').select('id').execute();
      const states: LogState[] = [];
      for (const { id } of tenants) {
        for (const log of LEDGER_NAMES) {
          const latest = await ledger.checkpoint(id, log);
          states.push({ log, size: await ledger.size(id, log), checkpointSize: latest.tree_size, checkpointAt: new Date(latest.created_at) });
          // A store that is down delays the export (retried next tick), never the checkpoints.
          await witness
            ?.sync(id, log)
            .catch((err: unknown) => platform.log.warn({ err, tenant_id: id, log }, 'ledger witness export failed; retrying next interval'));
        }
      }
      sweepMetrics.record(states);
    })()
      .catch((err: unknown) => platform.log.warn({ err }, 'background checkpoint failed; retrying next interval'))
      .finally(() => (running = false));
  }, config.ledger.checkpointIntervalS * 1000);
  timer.unref();
  platform.onClose(() => clearInterval(timer));
  const audit = new AuditTrail(ledger);
  const failOpen = new FailOpenAudit(platform.db, audit, platform.log);
  platform.onClose(() => failOpen.close());
  return { ledger, audit, failOpen, witness };
}
