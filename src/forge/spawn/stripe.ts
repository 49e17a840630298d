import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Stripe webhook signatures (the `Stripe-Signature` header: `t=<unix>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">[,v1=...]`), verified offline with the endpoint's signing secret and a
 * timestamp tolerance against replays. This is the real scheme; only the network call to Stripe
 * is absent, since payments cannot run here.
 */
export class StripeSignatureError extends Error {
  readonly code = 'stripe_signature_invalid';
}

export const DEFAULT_TOLERANCE_S = 300;

export function stripeSignatureHeader(payload: string, secret: string, timestampS: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestampS}.${payload}`).digest('hex');
  return `t=${timestampS},v1=${v1}`;
}

export function verifyStripeSignature(
  payload: string,
  header: string | undefined,
  secret: string,
  nowS = Math.floor(Date.now() / 1000),
  toleranceS = DEFAULT_TOLERANCE_S,
): void {
  if (!header) throw new StripeSignatureError('missing Stripe-Signature header');
  const parts = header.split(',').map((p) => p.trim().split('=') as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  const signatures = parts.filter(([k]) => k === 'v1').map(([, v]) => v);
  if (!Number.isInteger(t) || signatures.length === 0) throw new StripeSignatureError('Stripe-Signature lacks t= or v1=');
  if (Math.abs(nowS - t) > toleranceS) throw new StripeSignatureError(`Stripe-Signature timestamp is outside the ${toleranceS} s tolerance`);
  const expected = createHmac('sha256', secret).update(`${t}.${payload}`).digest();
  const ok = signatures.some((s) => {
    const given = Buffer.from(s, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!ok) throw new StripeSignatureError('no v1 signature matches the payload');
}
