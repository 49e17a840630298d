import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../../config/config.js';
import type { Principal } from '../../platform/auth/principal.js';
import { digestKey, digestsEqual, keyIdOf } from './key-format.js';
import type { KeyResolver } from './key-resolver.js';
import type { KeyRecord } from './store.js';

/** Why the gate refused a key; the security log and auth_failure_total{reason} carry it, the response never does. */
export type AuthFailureReason = 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked' | 'tenant_disabled' | 'global_key_refused';

/**
 * What a presented key turned out to be, in the style of KeyResolver's Lookup: every way it can
 * fail is a case the caller must handle. `failedOpen` is set when the key was accepted on the
 * last state this node saw because the store did not answer (FG_AUTH_DB_FAIL_OPEN acknowledged).
 */
export type KeyAuthentication =
  | { readonly status: 'accepted'; readonly principal: Principal; readonly failedOpen?: Error }
  | { readonly status: 'refused'; readonly reason: Exclude<AuthFailureReason, 'missing'>; readonly keyId?: string; readonly tenantId?: string }
  | { readonly status: 'store_unavailable'; readonly keyId: string; readonly error: Error };

/** How keys are judged, fixed at start-up from the configuration. */
export interface KeyPolicy {
  /** The shared global key, accepted only in the dev and test profiles. */
  readonly globalKey?: Buffer;
  /** The configured global key outside dev/test: presenting it is refused by name. */
  readonly refusedGlobalKey?: string;
  /** Accept a key on its last known state when the store does not answer. */
  readonly failOpen: boolean;
}

export function keyPolicyOf(config: Pick<Config, 'env' | 'auth'>): KeyPolicy {
  const devProfile = config.env === 'dev' || config.env === 'test';
  const globalKey = config.auth.globalKey;
  return {
    ...(devProfile && globalKey ? { globalKey: Buffer.from(globalKey) } : {}),
    ...(!devProfile && globalKey ? { refusedGlobalKey: globalKey } : {}),
    failOpen: config.auth.dbFailOpen && config.auth.dbFailOpenAcknowledged,
  };
}

function refused(reason: Exclude<AuthFailureReason, 'missing'>, keyId?: string, tenantId?: string): KeyAuthentication {
  return { status: 'refused', reason, ...(keyId ? { keyId } : {}), ...(tenantId ? { tenantId } : {}) };
}

/** The presented key as a principal, or why it is not one. Marks an accepted key as used. */
export async function authenticateKey(presented: string, policy: KeyPolicy, resolver: KeyResolver): Promise<KeyAuthentication> {
  if (policy.globalKey) {
    const candidate = Buffer.from(presented);
    if (candidate.length === policy.globalKey.length && timingSafeEqual(candidate, policy.globalKey))
      return { status: 'accepted', principal: { kind: 'global_key', scopes: ['admin'], subject: 'global-key' } };
  } else if (policy.refusedGlobalKey && presented === policy.refusedGlobalKey) {
    return refused('global_key_refused');
  }

  const keyId = keyIdOf(presented);
  if (!keyId) return refused('malformed');
  const digest = digestKey(presented);
  // An unknown id and a wrong secret take this same path at the same cost: no record is read for
  // either, so timing does not tell which key ids exist (src/core/auth/key-index.ts).
  const screen = await resolver.screen(keyId, digest);
  if (screen.status === 'unknown') return refused('unknown', keyId);
  if (screen.status === 'store_unavailable') return { status: 'store_unavailable', keyId, error: screen.error };
  const lookup = await resolver.resolve(keyId);
  if (lookup.status === 'absent') return refused('unknown', keyId);
  let record: KeyRecord;
  let failedOpen: Error | undefined;
  if (lookup.status === 'found') {
    record = lookup.record;
  } else if (policy.failOpen && lookup.stale && digestsEqual(digest, lookup.stale.digest)) {
    // With the acknowledged switch, the last state this node saw of this very key (same digest)
    // stands in for the store; the ordinary checks below still apply to it.
    record = lookup.stale;
    failedOpen = lookup.error;
  } else {
    return { status: 'store_unavailable', keyId, error: lookup.error };
  }
  if (!digestsEqual(digest, record.digest)) return refused('unknown', keyId);
  if (record.revokedAt) return refused('revoked', keyId, record.tenantId);
  if (record.expiresAt && record.expiresAt.getTime() <= Date.now()) return refused('expired', keyId, record.tenantId);
  if (record.tenantDisabled) return refused('tenant_disabled', keyId, record.tenantId);
  resolver.touch(keyId);
  const principal: Principal = { kind: 'api_key', keyId, tenantId: record.tenantId, scopes: record.scopes, subject: record.owner || keyId };
  return { status: 'accepted', principal, ...(failedOpen ? { failedOpen } : {}) };
}
