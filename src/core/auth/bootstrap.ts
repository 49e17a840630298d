import { sql } from 'kysely';
import type { Database } from '../../platform/db/database.js';
import { generateKey } from './key-format.js';
import type { KeyAudit } from './store.js';

export interface BootstrapResult {
  /** Present only on the start that created it: shown once, never stored. */
  readonly key?: string;
  readonly keyId: string;
  readonly tenantId: string;
}

/** The identity of whoever holds the bootstrap admin key: the person who started FrostGate first. */
export const ROOT_IDENTITY = 'root';

/**
 * Creates the first tenant and its admin key exactly once per database. The key belongs to the root
 * identity, minted by the operator (the first start), so keys it mints belong to root as well. The claim, the tenant and
 * the key commit in one transaction, so two processes starting together cannot both create one.
 */
export async function ensureBootstrapAdmin(db: Database, tenantId: string, audit?: KeyAudit): Promise<BootstrapResult> {
  const generated = generateKey();
  return db.withTenant(tenantId, async (tx) => {
    const claim = await sql<{ value: { key_id: string; tenant_id: string } }>`
      INSERT INTO platform_state (key, value)
      VALUES ('bootstrap_admin', ${JSON.stringify({ key_id: generated.id, tenant_id: tenantId })}::jsonb)
      ON CONFLICT (key) DO NOTHING
      RETURNING value`.execute(tx);
    if (claim.rows.length === 0) {
      const existing = await tx.selectFrom('platform_state').select('value').where('key', '=', 'bootstrap_admin').executeTakeFirstOrThrow();
      const value = existing.value as { key_id: string; tenant_id: string };
      return { keyId: value.key_id, tenantId: value.tenant_id };
    }
    await tx
      .insertInto('tenants')
      .values({ id: tenantId, name: 'bootstrap tenant', disabled_at: null })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    await tx
      .insertInto('api_keys')
      .values({
        id: generated.id,
        tenant_id: tenantId,
        digest: generated.digest,
        name: 'bootstrap admin',
        scopes: ['admin'],
        expires_at: null,
        revoked_at: null,
        last_used_at: null,
        created_by: 'bootstrap',
        created_by_identity: 'operator',
        owner: ROOT_IDENTITY,
      })
      .execute();
    await audit?.record(tx, tenantId, {
      action: 'key.create',
      actor: 'bootstrap',
      target: generated.id,
      details: { scopes: ['admin'], name: 'bootstrap admin', owner: ROOT_IDENTITY, created_by_identity: 'operator', vouched_by: 'operator' },
    });
    return { key: generated.key, keyId: generated.id, tenantId };
  });
}
