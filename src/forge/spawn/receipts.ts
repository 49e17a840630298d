import { createHmac, timingSafeEqual } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';

/**
 * Purchase receipts and entitlement tokens. A receipt is `base64url(JSON).base64url(HMAC-SHA256)`
 * under RECEIPT_HMAC_SECRET, issued by the billing side; it is exchanged once for an entitlement
 * token: an HS256 JWT under ET_HMAC_SECRET carrying track, tier, credits and expiry.
 */
export interface Receipt {
  readonly receipt_id: string;
  readonly tenant: string;
  readonly subject: string;
  readonly track: string;
  readonly tier: 'basic' | 'pro' | 'enterprise';
  readonly credits: number;
  /** Unix seconds: the entitlement's end. */
  readonly expires_at: number;
}

export interface Entitlement extends Receipt {
  readonly jti: string;
}

export class ReceiptError extends Error {
  readonly code = 'receipt_invalid';
}

export class EntitlementError extends Error {
  readonly code = 'entitlement_invalid';
}

const TIERS = new Set(['basic', 'pro', 'enterprise']);

export function signReceipt(receipt: Receipt, secret: string): string {
  const body = Buffer.from(JSON.stringify(receipt)).toString('base64url');
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

export function verifyReceipt(token: string, secret: string, nowS = Math.floor(Date.now() / 1000)): Receipt {
  const [body, mac, extra] = token.split('.');
  if (!body || !mac || extra !== undefined) throw new ReceiptError('receipt is not <payload>.<signature>');
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new ReceiptError('receipt signature does not verify');
  let r: Receipt;
  try {
    r = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Receipt;
  } catch {
    throw new ReceiptError('receipt payload is not JSON');
  }
  if (typeof r.receipt_id !== 'string' || typeof r.subject !== 'string' || typeof r.track !== 'string' || typeof r.tenant !== 'string')
    throw new ReceiptError('receipt lacks receipt_id, tenant, subject or track');
  if (!TIERS.has(r.tier)) throw new ReceiptError(`receipt tier ${JSON.stringify(r.tier)} is not basic, pro or enterprise`);
  if (!Number.isInteger(r.credits) || r.credits < 0) throw new ReceiptError('receipt credits must be a non-negative integer');
  if (!Number.isInteger(r.expires_at) || r.expires_at <= nowS) throw new ReceiptError('receipt has expired');
  return r;
}

export async function issueEntitlement(receipt: Receipt, secret: string): Promise<string> {
  return new SignJWT({ tid: receipt.tenant, trk: receipt.track, tier: receipt.tier, credits: receipt.credits, rcp: receipt.receipt_id })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('frostgate')
    .setAudience('frostgate:entitlement')
    .setSubject(receipt.subject)
    .setJti(`ent_${receipt.receipt_id}`)
    .setIssuedAt()
    .setExpirationTime(receipt.expires_at)
    .sign(Buffer.from(secret));
}

export async function verifyEntitlement(token: string, secret: string): Promise<Entitlement> {
  try {
    const { payload } = await jwtVerify(token, Buffer.from(secret), { issuer: 'frostgate', audience: 'frostgate:entitlement', algorithms: ['HS256'] });
    const p = payload as Record<string, unknown>;
    return {
      receipt_id: String(p.rcp),
      tenant: String(p.tid),
      subject: String(p.sub),
      track: String(p.trk),
      tier: p.tier as Receipt['tier'],
      credits: Number(p.credits),
      expires_at: Number(p.exp),
      jti: String(p.jti),
    };
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new EntitlementError('entitlement has expired');
    throw new EntitlementError('entitlement token does not verify');
  }
}
