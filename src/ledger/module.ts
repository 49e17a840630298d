import type { Platform } from '../platform/platform.js';
import { AuditTrail } from './audit.js';
import { FailOpenAudit } from './fail-open-audit.js';
import { LedgerService } from './service.js';
import { loadLedgerSigningKey } from './signing-key.js';

export interface LedgerModule {
  readonly ledger: LedgerService;
  readonly audit: AuditTrail;
  readonly failOpen: FailOpenAudit;
}

/**
 * The ledger with its signing key and the background checkpointer: every interval, each log that
 * grew gets a new signed checkpoint (appends past the entry threshold get one at the next tick).
 */
export async function createLedgerModule(platform: Pick<Platform, 'config' | 'db' | 'log' | 'security' | 'onClose'>): Promise<LedgerModule> {
  const { config } = platform;
  // dev keeps its generated key next to its data; a throwaway in-memory database gets an ephemeral one.
  const persistDevKey = config.env === 'dev' && platform.db.location !== 'memory';
  const signingKey = await loadLedgerSigningKey({ keyPath: config.keys.ledgerKeyPath, dataDir: persistDevKey ? config.dataDir : undefined });
  const ledger = new LedgerService(platform.db, signingKey, { origin: config.ledger.origin, checkpointIntervalS: config.ledger.checkpointIntervalS, checkpointMaxEntries: config.ledger.checkpointMaxEntries }, platform.security);
  platform.log.info({ key_id: signingKey.keyId, key_source: signingKey.source }, 'ledger signing key loaded');
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      const tenants = await platform.db.db.selectFrom('tenants').select('id').execute();
      for (const { id } of tenants) for (const log of ['decisions', 'audit'] as const) await ledger.checkpoint(id, log);
    })()
      .catch((err: unknown) => platform.log.warn({ err }, 'background checkpoint failed; retrying next interval'))
      .finally(() => (running = false));
  }, config.ledger.checkpointIntervalS * 1000);
  timer.unref();
  platform.onClose(() => clearInterval(timer));
  const audit = new AuditTrail(ledger);
  const failOpen = new FailOpenAudit(platform.db, audit, platform.log);
  platform.onClose(() => failOpen.close());
  return { ledger, audit, failOpen };
}
