import { sql } from 'kysely';
import type { Database, Tx } from '../../platform/db/database.js';
import { assertTenantId } from '../../platform/db/tenant-id.js';
import { AppError, conflict, notFound } from '../../platform/http/problem.js';
import { generateKey } from './key-format.js';
import type { Scope } from './scopes.js';

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly created_at: string;
  readonly disabled_at: string | null;
}

export interface KeyInfo {
  readonly id: string;
  readonly tenant_id: string;
  readonly name: string;
  readonly scopes: string[];
  readonly created_at: string;
  readonly expires_at: string | null;
  readonly revoked_at: string | null;
  readonly last_used_at: string | null;
  readonly created_by: string | null;
  readonly owner: string;
}

export interface CreatedKey extends KeyInfo {
  /** The full key. Shown once; only its digest is stored. */
  readonly key: string;
}

/** What the auth gate needs to judge a presented key. */
export interface KeyRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly digest: Uint8Array;
  readonly scopes: readonly string[];
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly tenantDisabled: boolean;
  readonly owner: string;
}

export interface CreateKeyInput {
  readonly tenantId: string;
  readonly scopes: readonly Scope[];
  readonly name?: string;
  readonly expiresAt?: Date;
  readonly createdBy?: string;
  /** Who the key acts for; default: the key's own id. */
  readonly owner?: string;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

function toKeyInfo(row: {
  id: string; tenant_id: string; name: string; scopes: string[]; created_at: Date; expires_at: Date | null; revoked_at: Date | null; last_used_at: Date | null; created_by: string | null; owner: string;
}): KeyInfo {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    name: row.name,
    scopes: row.scopes,
    created_at: iso(row.created_at)!,
    expires_at: iso(row.expires_at),
    revoked_at: iso(row.revoked_at),
    last_used_at: iso(row.last_used_at),
    created_by: row.created_by,
    owner: row.owner,
  };
}

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

/** Writes one audit-ledger entry inside the caller's transaction (src/ledger/audit.ts). */
export interface KeyAudit {
  record(tx: Tx, tenantId: string, event: { action: string; actor: string; target?: string; details?: Record<string, unknown> }): Promise<number>;
}

/**
 * Tenants and API keys in the database. Key rows are tenant-scoped (RLS); lookups go through one
 * definer function. Every creation and revocation writes its audit-ledger entry in the same
 * transaction.
 */
export class KeyStore {
  constructor(private readonly db: Database, private readonly audit?: KeyAudit) {}

  /**
   * Creates a tenant; with `firstKey`, also its first key in the same transaction (shown once), so
   * a platform admin can hand a new tenant a key over HTTP without acting for that tenant later.
   */
  async createTenant(id: string, name = '', actor = 'unknown-principal', firstKey?: Omit<CreateKeyInput, 'tenantId'>): Promise<Tenant & { first_key?: CreatedKey }> {
    try {
      assertTenantId(id);
    } catch (err) {
      throw new AppError('invalid_tenant', (err as Error).message);
    }
    try {
      const { row, key } = await this.db.withTenant(id, async (tx) => {
        const inserted = await tx.insertInto('tenants').values({ id, name, disabled_at: null }).returningAll().executeTakeFirstOrThrow();
        await this.audit?.record(tx, id, { action: 'tenant.create', actor, target: id, details: { name } });
        const created = firstKey ? await this.insertKey(tx, { ...firstKey, tenantId: id, createdBy: firstKey.createdBy ?? actor }) : undefined;
        return { row: inserted, key: created };
      });
      const tenant: Tenant = { id: row.id, name: row.name, created_at: iso(row.created_at)!, disabled_at: iso(row.disabled_at) };
      return key ? { ...tenant, first_key: key } : tenant;
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`tenant ${id} already exists`);
      throw err;
    }
  }

  async listTenants(): Promise<Tenant[]> {
    const rows = await this.db.db.selectFrom('tenants').selectAll().orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, created_at: iso(r.created_at)!, disabled_at: iso(r.disabled_at) }));
  }

  async tenantExists(id: string): Promise<boolean> {
    const row = await this.db.db.selectFrom('tenants').select('id').where('id', '=', id).executeTakeFirst();
    return row !== undefined;
  }

  async createKey(input: CreateKeyInput): Promise<CreatedKey> {
    if (!(await this.tenantExists(input.tenantId))) throw notFound(`tenant ${input.tenantId}`);
    return this.db.withTenant(input.tenantId, (tx) => this.insertKey(tx, input));
  }

  /** Inserts a key and its audit entry in the caller's transaction (bound to the key's tenant). */
  private async insertKey(tx: Tx, input: CreateKeyInput): Promise<CreatedKey> {
    const generated = generateKey();
    const inserted = await tx
      .insertInto('api_keys')
      .values({
        id: generated.id,
        tenant_id: input.tenantId,
        digest: generated.digest,
        name: input.name ?? '',
        scopes: [...input.scopes],
        expires_at: input.expiresAt ?? null,
        revoked_at: null,
        last_used_at: null,
        created_by: input.createdBy ?? null,
        owner: input.owner ?? generated.id,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await this.audit?.record(tx, input.tenantId, {
      action: 'key.create',
      actor: input.createdBy ?? 'unknown-principal',
      target: generated.id,
      details: { scopes: [...input.scopes], name: input.name ?? '', expires_at: input.expiresAt?.toISOString() ?? null },
    });
    return { ...toKeyInfo(inserted), key: generated.key };
  }

  async listKeys(tenantId: string): Promise<KeyInfo[]> {
    const rows = await this.db.withTenant(tenantId, (tx) =>
      tx.selectFrom('api_keys').select(['id', 'tenant_id', 'name', 'scopes', 'created_at', 'expires_at', 'revoked_at', 'last_used_at', 'created_by', 'owner']).orderBy('created_at').orderBy('id').execute(),
    );
    return rows.map(toKeyInfo);
  }

  async getKey(tenantId: string, id: string): Promise<KeyInfo> {
    const row = await this.db.withTenant(tenantId, (tx) =>
      tx.selectFrom('api_keys').select(['id', 'tenant_id', 'name', 'scopes', 'created_at', 'expires_at', 'revoked_at', 'last_used_at', 'created_by', 'owner']).where('id', '=', id).executeTakeFirst(),
    );
    if (!row) throw notFound(`key ${id}`);
    return toKeyInfo(row);
  }

  /** Revokes a key of this tenant; a key of another tenant is invisible here (404). */
  async revokeKey(tenantId: string, id: string, actor = 'unknown-principal'): Promise<KeyInfo> {
    const row = await this.db.withTenant(tenantId, async (tx) => {
      const updated = await tx
        .updateTable('api_keys')
        .set({ revoked_at: sql<Date>`COALESCE(revoked_at, now())` })
        .where('id', '=', id)
        .returning(['id', 'tenant_id', 'name', 'scopes', 'created_at', 'expires_at', 'revoked_at', 'last_used_at', 'created_by', 'owner'])
        .executeTakeFirst();
      if (updated) await this.audit?.record(tx, tenantId, { action: 'key.revoke', actor, target: id });
      return updated;
    });
    if (!row) throw notFound(`key ${id}`);
    return toKeyInfo(row);
  }

  /** Through the gate pool: a burst that holds the main pool must not refuse every key (Database.gate). */
  async lookup(id: string): Promise<KeyRecord | undefined> {
    const result = await sql<{
      id: string; tenant_id: string; digest: Uint8Array; scopes: string[]; expires_at: Date | null; revoked_at: Date | null; tenant_disabled: boolean; owner: string;
    }>`SELECT * FROM fg_auth_lookup_key(${id})`.execute(this.db.gate.db);
    const row = result.rows[0];
    if (!row) return undefined;
    return {
      id: row.id,
      tenantId: row.tenant_id,
      digest: row.digest,
      scopes: row.scopes,
      expiresAt: row.expires_at ? new Date(row.expires_at) : null,
      revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
      tenantDisabled: row.tenant_disabled,
      owner: row.owner,
    };
  }

  async touch(ids: readonly string[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await sql`SELECT fg_auth_touch_keys(${[...ids]}::text[], ${at.toISOString()}::timestamptz)`.execute(this.db.db);
  }
}
