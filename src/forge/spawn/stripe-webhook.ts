import { unsafeInputError, unsafeInputIssues } from '../../platform/http/input-guard.js';
import { AppError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { tenantIdProblem } from '../../platform/db/tenant-id.js';
import type { EntitlementService } from './entitlements.js';
import type { Receipt } from './receipts.js';
import { StripeSignatureError, verifyStripeSignature } from './stripe.js';

/** How long an entitlement bought through Stripe lasts when the checkout does not say. */
export const DEFAULT_ENTITLEMENT_DAYS = 90;

export interface StripeWebhookResult {
  readonly received: true;
  /** What the event did: granted, already_granted (a redelivery), or ignored (another event type, unpaid). */
  readonly outcome: 'granted' | 'already_granted' | 'ignored';
  readonly entitlement_id?: string;
}

/**
 * Stripe checkout webhooks. The signature (Stripe-Signature, HMAC-SHA256 over "<t>.<raw body>"
 * with the endpoint secret, 5 minute tolerance) is the only authority: the event names the
 * tenant, learner, track, tier and credits in the checkout session's metadata, set by the
 * checkout page. A paid `checkout.session.completed` grants the entitlement once (redeliveries
 * answer already_granted); other events are acknowledged and ignored.
 *
 * Metadata: tenant_id, subject, track, tier, credits, and optionally valid_days.
 */
export class StripeWebhook {
  constructor(
    private readonly deps: {
      readonly secret: string | undefined;
      readonly entitlements: EntitlementService;
      readonly security: Logger;
      readonly clock?: () => Date;
    },
  ) {}

  async handle(rawBody: string, signatureHeader: string | undefined): Promise<StripeWebhookResult> {
    if (!this.deps.secret) {
      this.deps.security.warn({ type: 'stripe_webhook_refused', reason: 'not_configured' }, 'Stripe webhook called but STRIPE_WEBHOOK_SECRET is not set');
      throw new AppError('unavailable', 'the Stripe webhook is not configured (STRIPE_WEBHOOK_SECRET is unset)', { reason: 'stripe_not_configured' });
    }
    const nowS = Math.floor((this.deps.clock?.() ?? new Date()).getTime() / 1000);
    try {
      verifyStripeSignature(rawBody, signatureHeader, this.deps.secret, nowS);
    } catch (err) {
      if (!(err instanceof StripeSignatureError)) throw err;
      this.deps.security.warn({ type: 'stripe_webhook_refused', reason: 'bad_signature', detail: err.message }, 'Stripe webhook signature refused');
      throw new AppError('bad_request', `Stripe signature refused: ${err.message}`, { reason: 'stripe_signature_invalid' });
    }
    let event: StripeEvent;
    try {
      event = JSON.parse(rawBody) as StripeEvent;
    } catch {
      throw new AppError('malformed_json', 'the signed Stripe event is not JSON');
    }
    // The raw body passed the edge as text (it is signed); decoded, it is held to the rules of every JSON body.
    const unsafe = unsafeInputIssues(event, 'body');
    if (unsafe.length > 0) throw unsafeInputError(unsafe);
    const session = event?.data?.object;
    if (event?.type !== 'checkout.session.completed' || !session || session.payment_status !== 'paid') return { received: true, outcome: 'ignored' };
    const receipt = receiptFrom(session, nowS);
    const granted = await this.deps.entitlements.grantFromPayment(receipt.tenant, receipt, {
      externalRef: String(session.id),
      amountCents: nonNegativeInt(session.amount_total),
      currency: typeof session.currency === 'string' ? session.currency : 'usd',
    });
    return granted
      ? { received: true, outcome: 'granted', entitlement_id: granted.entitlement.entitlement_id }
      : { received: true, outcome: 'already_granted', entitlement_id: `ent_${receipt.receipt_id}` };
  }
}

interface CheckoutSession {
  readonly id?: unknown;
  readonly payment_status?: unknown;
  readonly amount_total?: unknown;
  readonly currency?: unknown;
  readonly client_reference_id?: unknown;
  readonly metadata?: Record<string, unknown>;
}

interface StripeEvent {
  readonly id?: unknown;
  readonly type?: unknown;
  readonly data?: { readonly object?: CheckoutSession };
}

/** The checkout session as a receipt (the same shape receipts exchange into). */
function receiptFrom(session: CheckoutSession, nowS: number): Receipt {
  const m = session.metadata ?? {};
  const missing = ['tenant_id', 'subject', 'track', 'tier', 'credits'].filter((k) => typeof m[k] !== 'string' || m[k] === '');
  if (typeof session.id !== 'string' || !/^[A-Za-z0-9_]{1,190}$/.test(session.id)) missing.unshift('id');
  if (missing.length > 0)
    throw new AppError('unprocessable', `checkout session lacks ${missing.join(', ')} (set them as metadata on the checkout session)`, {
      reason: 'stripe_metadata_missing',
    });
  const tenant = String(m.tenant_id);
  const tenantProblem = tenantIdProblem(tenant);
  if (tenantProblem) throw new AppError('unprocessable', `checkout metadata tenant_id: ${tenantProblem}`, { reason: 'stripe_metadata_invalid' });
  const credits = Number(m.credits);
  const days = m.valid_days === undefined ? DEFAULT_ENTITLEMENT_DAYS : Number(m.valid_days);
  if (!Number.isInteger(credits) || credits < 1 || credits > 10_000)
    throw new AppError('unprocessable', 'checkout metadata credits must be an integer 1..10000', { reason: 'stripe_metadata_invalid' });
  if (!Number.isInteger(days) || days < 1 || days > 3660)
    throw new AppError('unprocessable', 'checkout metadata valid_days must be an integer 1..3660', { reason: 'stripe_metadata_invalid' });
  return {
    receipt_id: `stripe_${String(session.id)}`,
    tenant,
    subject: String(m.subject),
    track: String(m.track),
    tier: String(m.tier) as Receipt['tier'],
    credits,
    expires_at: nowS + days * 86_400,
  };
}

function nonNegativeInt(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0;
}
