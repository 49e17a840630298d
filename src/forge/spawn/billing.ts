import { sql } from 'kysely';
import type { BillingMode } from '../../config/config.js';
import type { AuditTrail } from '../../ledger/audit.js';
import type { Tx } from '../../platform/db/database.js';
import { newId } from '../../platform/ids.js';

export type { BillingMode };

export interface BillingEvent {
  readonly kind: 'grant' | 'charge';
  readonly mode: BillingMode;
  readonly subject: string;
  readonly track: string;
  readonly entitlementId: string;
  readonly scenarioId?: string;
  /** Credits granted (grant) or spent (charge). */
  readonly credits: number;
  readonly amountCents?: number;
  readonly currency?: string;
  /** The payment provider's reference (Stripe checkout session, receipt id). */
  readonly externalRef?: string;
}

/**
 * The billing record: every grant and charge is a billing_events row and an entry of the
 * tenant's audit ledger, written in the caller's transaction so neither exists without the
 * other (nor without the change they pay for). With BILLING_MODE=fake_charge a charge costs
 * nothing (amount 0) and is still recorded.
 */
export class BillingLedger {
  constructor(private readonly audit: Pick<AuditTrail, 'record'>) {}

  async record(tx: Tx, tenantId: string, actor: string, e: BillingEvent): Promise<{ eventId: string; ledgerIndex: number }> {
    const eventId = newId('bil');
    const ledgerIndex = await this.audit.record(tx, tenantId, {
      action: e.kind === 'grant' ? 'entitlement.grant' : 'billing.charge',
      actor,
      target: e.kind === 'grant' ? e.entitlementId : (e.scenarioId ?? e.entitlementId),
      details: {
        billing_event_id: eventId,
        mode: e.mode,
        subject: e.subject,
        track: e.track,
        entitlement_id: e.entitlementId,
        ...(e.scenarioId ? { scenario_id: e.scenarioId } : {}),
        credits: e.credits,
        amount_cents: e.amountCents ?? 0,
        ...(e.currency ? { currency: e.currency } : {}),
        ...(e.externalRef ? { external_ref: e.externalRef } : {}),
      },
    });
    await sql`INSERT INTO billing_events (event_id, tenant_id, kind, mode, subject, track, entitlement_id, scenario_id, credits, amount_cents, currency, external_ref, ledger_index)
      VALUES (${eventId}, ${tenantId}, ${e.kind}, ${e.mode}, ${e.subject}, ${e.track}, ${e.entitlementId}, ${e.scenarioId ?? null}, ${e.credits}, ${e.amountCents ?? 0}, ${e.currency ?? null}, ${e.externalRef ?? null}, ${ledgerIndex})`.execute(
      tx,
    );
    return { eventId, ledgerIndex };
  }
}
