import type { Tx } from '../platform/db/database.js';
import type { LedgerService } from './service.js';

/** One entry of the security audit trail: who did what to what, and why. */
export interface AuditEvent {
  readonly action: string;
  /** Key id or principal name of who acted. */
  readonly actor: string;
  readonly target?: string;
  readonly reason?: string;
  readonly details?: Record<string, unknown>;
}

/**
 * Writes audit events into the tenant's `audit` log inside the caller's transaction: the change
 * and its audit entry commit together or not at all.
 */
export class AuditTrail {
  constructor(private readonly ledger: Pick<LedgerService, 'append'>) {}

  async record(tx: Tx, tenantId: string, event: AuditEvent): Promise<number> {
    const [entry] = await this.ledger.append(tx, tenantId, 'audit', [
      { type: 'audit', tenant_id: tenantId, at: new Date().toISOString(), ...event, details: event.details ?? {} },
    ]);
    return entry!.index;
  }
}
