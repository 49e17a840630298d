import { normalizeIp } from '../engine/ip.js';
import { AppError } from '../../platform/http/problem.js';

/** Entity kinds entityKey() produces (src/core/engine/evaluate.ts). */
const ENTITY_KEY = /^(?:ip|user|key|source):./;

/**
 * The stored entity key a filter value means: an IP address (v4 or v6, in any spelling) becomes
 * `ip:<canonical form>` so `2001:DB8::1` and `::ffff:192.0.2.1` find what the engine stored;
 * an explicit key such as `user:alice` is taken as is. Anything else is refused, naming the field,
 * rather than silently matching nothing.
 */
export function entityFilter(field: string, value: string): string {
  const ip = normalizeIp(value);
  if (ip) return `ip:${ip}`;
  if (value.startsWith('ip:')) {
    const inner = normalizeIp(value.slice(3));
    if (inner) return `ip:${inner}`;
  } else if (ENTITY_KEY.test(value)) {
    return value;
  }
  throw new AppError('validation_failed', `${field}: must be an IP address or an entity key (ip:, user:, key:, source:)`, {
    errors: [{ path: field, message: 'not an IP address or entity key' }],
  });
}

/**
 * Opaque page cursor: the id of the last decision returned. The query resumes strictly after that
 * row's ledger index, the tenant's total order of decisions (decisions committed in one group
 * share a timestamp, so no timestamp can serve as the order).
 */
export function encodeCursor(decisionId: string): string {
  return Buffer.from(JSON.stringify({ after: decisionId })).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string' && /^dec_[a-z0-9]{24}$/.test(parsed.after)) return parsed.after;
  } catch {
    // fall through to the problem below
  }
  throw new AppError('validation_failed', 'querystring/cursor: not a cursor returned by this endpoint', {
    errors: [{ path: 'querystring/cursor', message: 'not a cursor returned by this endpoint' }],
  });
}
