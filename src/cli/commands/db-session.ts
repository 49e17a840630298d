import { loadConfig } from '../../config/config.js';
import { EmbeddedDatabaseLockedError, openDatabase, type Database } from '../../platform/db/database.js';
import { CliError } from '../errors.js';
import { AuditTrail } from '../../ledger/audit.js';
import { LedgerService } from '../../ledger/service.js';
import { loadLedgerSigningKey } from '../../ledger/signing-key.js';

/** The audit trail for one-shot commands: key and tenant operations from the CLI are audited too. */
export async function cliAuditTrail(db: Database): Promise<AuditTrail> {
  const { config } = loadConfig();
  const key = await loadLedgerSigningKey({ keyPath: config.keys.ledgerKeyPath, dataDir: config.env === 'dev' ? config.dataDir : undefined });
  return new AuditTrail(
    new LedgerService(db, key, {
      origin: config.ledger.origin,
      checkpointIntervalS: config.ledger.checkpointIntervalS,
      checkpointMaxEntries: config.ledger.checkpointMaxEntries,
    }),
  );
}

/** Opens the configured database for a one-shot command, migrating the embedded one in dev/test. */
export async function withDatabase<T>(fn: (db: Database) => Promise<T>): Promise<T> {
  const { config } = loadConfig();
  let db: Database;
  try {
    db = await openDatabase({
      url: config.db.url,
      embeddedDir: config.dataDir,
      appRole: config.db.appRole,
      poolSize: 2,
      migrate: config.env === 'dev' || config.env === 'test',
    });
  } catch (err) {
    if (err instanceof EmbeddedDatabaseLockedError) {
      throw new CliError(
        'database_locked',
        err.message,
        'while the server runs on the embedded database, use its HTTP API (POST /tenants, POST /keys) with an admin key',
      );
    }
    throw err;
  }
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
