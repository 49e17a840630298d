import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Profile } from '../../config/variables.js';
import type { Database, Tx } from '../../platform/db/database.js';
import { AppError } from '../../platform/http/problem.js';
import { TIERS, TRACKS } from '../templates/schema.js';
import type { BillingLedger } from './billing.js';
import type { BillingMode } from '../../config/config.js';
import { EntitlementError, issueEntitlement, ReceiptError, verifyEntitlement, verifyReceipt, type Receipt, signReceipt } from './receipts.js';

/** An entitlement as stored: the grant, and how many of its credits spawns have used. */
export interface StoredEntitlement {
  readonly entitlement_id: string;
  readonly tenant_id: string;
  readonly subject: string;
  readonly track: string;
  readonly tier: string;
  readonly credits: number;
  readonly credits_used: number;
  readonly expires_at: string;
  readonly source: 'receipt' | 'stripe';
}

export interface GrantedEntitlement {
  readonly entitlement: StoredEntitlement;
  /** The entitlement token (HS256 JWT under ET_HMAC_SECRET) the learner's client may present to spawn. */
  readonly token: string;
}

export interface EntitlementSecrets {
  readonly receiptHmacSecret: string;
  readonly etHmacSecret: string;
}

/** What `frostgate receipts issue` and POST /v1/receipts ask for (defaults: pro, 5 credits, 30 days). */
export interface DevReceiptRequest {
  readonly subject: string;
  readonly track: string;
  readonly tier?: Receipt['tier'];
  readonly credits?: number;
  readonly days?: number;
}

export interface IssuedDevReceipt extends GrantedEntitlement {
  /** The receipt as signed under RECEIPT_HMAC_SECRET (already exchanged: presenting it again is a replay). */
  readonly receipt: string;
}

const KNOWN_TRACKS: ReadonlySet<string> = new Set(TRACKS);
const KNOWN_TIERS: ReadonlySet<string> = new Set(TIERS);

/**
 * Entitlements: granted from a signed receipt (exchange) or a verified Stripe checkout, each
 * grant once (the entitlement id derives from the receipt id, so a second exchange of the same
 * receipt is refused as a replay), each grant a billing event and an audit ledger entry. The
 * stored row is the truth of credits used; the token only proves the grant.
 */
export class EntitlementService {
  constructor(
    private readonly db: Pick<Database, 'withTenant'>,
    private readonly billing: BillingLedger,
    private readonly secrets: EntitlementSecrets,
    private readonly mode: BillingMode,
    private readonly profile: Profile = 'dev',
  ) {}

  /**
   * A receipt this installation signs and grants at once, paid with fake_charge: how a
   * newcomer gets an entitlement without a payment provider. Refused (403) unless
   * BILLING_MODE=fake_charge in a dev, test or staging profile, exactly where fake_charge is allowed.
   */
  async issueDevReceipt(tenantId: string, req: DevReceiptRequest, actor: string): Promise<IssuedDevReceipt> {
    if (this.mode !== 'fake_charge' || this.profile === 'prod')
      throw new AppError(
        'forbidden',
        `issuing receipts needs BILLING_MODE=fake_charge in a dev, test or staging profile (this is ${this.profile} with ${this.mode}); entitlements come from real purchases here`,
        { reason: 'fake_charge_only' },
      );
    const receipt: Receipt = {
      receipt_id: `dev_${randomBytes(9).toString('hex')}`,
      tenant: tenantId,
      subject: req.subject,
      track: req.track,
      tier: req.tier ?? 'pro',
      credits: req.credits ?? 5,
      expires_at: Math.floor(Date.now() / 1000) + (req.days ?? 30) * 86_400,
    };
    const granted = await this.grant(tenantId, receipt, 'receipt', actor, { externalRef: receipt.receipt_id });
    return { ...granted, receipt: signReceipt(receipt, this.secrets.receiptHmacSecret) };
  }

  /** Verifies a receipt (HMAC under RECEIPT_HMAC_SECRET) without granting anything. */
  verifyReceipt(receipt: string): Receipt {
    try {
      return verifyReceipt(receipt, this.secrets.receiptHmacSecret);
    } catch (err) {
      if (err instanceof ReceiptError) throw new AppError('forbidden', `receipt refused: ${err.message}`, { reason: 'receipt_invalid' });
      throw err;
    }
  }

  /** Exchanges a verified receipt of `tenantId` for an entitlement token, once per receipt. */
  async exchange(tenantId: string, receipt: Receipt, actor: string): Promise<GrantedEntitlement> {
    return this.grant(tenantId, receipt, 'receipt', actor, { externalRef: receipt.receipt_id });
  }

  /**
   * Grants from a payment (Stripe checkout). Returns undefined when this payment already granted
   * its entitlement (providers deliver an event more than once).
   */
  async grantFromPayment(
    tenantId: string,
    receipt: Receipt,
    payment: { externalRef: string; amountCents: number; currency: string },
  ): Promise<GrantedEntitlement | undefined> {
    try {
      return await this.grant(tenantId, receipt, 'stripe', 'stripe', payment);
    } catch (err) {
      if (err instanceof AppError && err.extensions.reason === 'receipt_replayed') return undefined;
      throw err;
    }
  }

  /** Verifies an entitlement token (signature under ET_HMAC_SECRET, expiry). */
  async verifyToken(token: string) {
    try {
      return await verifyEntitlement(token, this.secrets.etHmacSecret);
    } catch (err) {
      if (err instanceof EntitlementError) throw new AppError('forbidden', `entitlement token refused: ${err.message}`, { reason: 'entitlement_invalid' });
      throw err;
    }
  }

  /**
   * Inside the spawn's tenant transaction: the entitlement that pays for a spawn of `track` by
   * `subject`. With a presented token, exactly the entitlement it names (when stored in this
   * tenant); otherwise the learner's live entitlement for the track with credits left that ends
   * last. Undefined when there is none: the training gate then refuses.
   */
  async forSpawn(tx: Tx, q: { subject: string; track: string; entitlementId?: string; now: Date }): Promise<StoredEntitlement | undefined> {
    if (q.entitlementId !== undefined) {
      const r = await sql<StoredEntitlement>`SELECT * FROM entitlements WHERE entitlement_id = ${q.entitlementId}`.execute(tx);
      return r.rows[0] ? normalise(r.rows[0]) : undefined;
    }
    const r = await sql<StoredEntitlement>`SELECT * FROM entitlements
      WHERE subject = ${q.subject} AND track = ${q.track} AND expires_at > ${q.now.toISOString()}::timestamptz AND credits_used < credits
      ORDER BY expires_at DESC, entitlement_id LIMIT 1`.execute(tx);
    return r.rows[0] ? normalise(r.rows[0]) : undefined;
  }

  /** Reserves one credit; false when none is left (a concurrent spawn took the last one). */
  async reserveCredit(tx: Tx, entitlementId: string): Promise<boolean> {
    const r =
      await sql`UPDATE entitlements SET credits_used = credits_used + 1 WHERE entitlement_id = ${entitlementId} AND credits_used < credits RETURNING entitlement_id`.execute(
        tx,
      );
    return r.rows.length === 1;
  }

  /** Gives back a credit reserved for a spawn whose lab could not be built. */
  async releaseCredit(tx: Tx, entitlementId: string): Promise<void> {
    await sql`UPDATE entitlements SET credits_used = credits_used - 1 WHERE entitlement_id = ${entitlementId} AND credits_used > 0`.execute(tx);
  }

  private async grant(
    tenantId: string,
    receipt: Receipt,
    source: 'receipt' | 'stripe',
    actor: string,
    payment: { externalRef: string; amountCents?: number; currency?: string },
  ): Promise<GrantedEntitlement> {
    if (receipt.tenant !== tenantId) throw new AppError('tenant_mismatch', `the receipt is for tenant ${receipt.tenant}, not ${tenantId}`);
    if (!KNOWN_TRACKS.has(receipt.track))
      throw new AppError('unprocessable', `receipt track ${JSON.stringify(receipt.track)} is not one of ${TRACKS.join(', ')}`, { reason: 'receipt_invalid' });
    if (!KNOWN_TIERS.has(receipt.tier))
      throw new AppError('unprocessable', `receipt tier ${JSON.stringify(receipt.tier)} is not one of ${TIERS.join(', ')}`, { reason: 'receipt_invalid' });
    const entitlementId = `ent_${receipt.receipt_id}`;
    if (!/^ent_[A-Za-z0-9_.:-]{1,200}$/.test(entitlementId))
      throw new AppError('unprocessable', 'receipt_id may hold only letters, digits and . _ : - (at most 200)', { reason: 'receipt_invalid' });
    const stored = await this.db.withTenant(tenantId, async (tx) => {
      const tenant = await sql<{ id: string }>`SELECT id FROM tenants WHERE id = ${tenantId}`.execute(tx);
      if (tenant.rows.length === 0)
        throw new AppError('unprocessable', `tenant ${tenantId} does not exist; the grant cannot be recorded`, { reason: 'unknown_tenant' });
      const inserted =
        await sql<StoredEntitlement>`INSERT INTO entitlements (entitlement_id, tenant_id, subject, track, tier, credits, expires_at, source, ledger_index)
        VALUES (${entitlementId}, ${tenantId}, ${receipt.subject}, ${receipt.track}, ${receipt.tier}, ${receipt.credits}, ${new Date(receipt.expires_at * 1000).toISOString()}::timestamptz, ${source}, 0)
        ON CONFLICT (entitlement_id) DO NOTHING RETURNING *`.execute(tx);
      if (inserted.rows.length === 0) return undefined;
      const { ledgerIndex } = await this.billing.record(tx, tenantId, actor, {
        kind: 'grant',
        mode: source === 'stripe' ? 'stripe' : this.mode,
        subject: receipt.subject,
        track: receipt.track,
        entitlementId,
        credits: receipt.credits,
        externalRef: payment.externalRef,
        ...(payment.amountCents !== undefined ? { amountCents: payment.amountCents } : {}),
        ...(payment.currency !== undefined ? { currency: payment.currency } : {}),
      });
      await sql`UPDATE entitlements SET ledger_index = ${ledgerIndex} WHERE entitlement_id = ${entitlementId}`.execute(tx);
      return normalise(inserted.rows[0]!);
    });
    // Each receipt grants once: exchanging it again is a replay, whoever presents it.
    if (!stored)
      throw new AppError('conflict', `receipt ${receipt.receipt_id} was already exchanged; each receipt grants one entitlement`, {
        reason: 'receipt_replayed',
      });
    return { entitlement: stored, token: await issueEntitlement(receipt, this.secrets.etHmacSecret) };
  }
}

function normalise(row: StoredEntitlement): StoredEntitlement {
  return { ...row, credits: Number(row.credits), credits_used: Number(row.credits_used), expires_at: new Date(row.expires_at).toISOString() };
}
