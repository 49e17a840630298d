import { sql } from 'kysely';
import type { Database, Tx } from '../../platform/db/database.js';
import { assertTenantId } from '../../platform/db/tenant-id.js';
import { AppError, conflict, notFound } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { generateKey } from './key-format.js';
import type { Scope } from '../../platform/auth/scopes.js';

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
  readonly created_by_identity: string | null;
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

/**
 * Who mints a key. A request's principal (an API key today, a console session once the admin
 * gateway signs people in) mints keys for its own identity only: nobody invents a second person
 * to approve their own governance change. Only the platform operator vouches for whom a key
 * belongs to.
 */
export type Minter =
  | { readonly kind: 'principal'; /** key id (or principal name) */ readonly id: string; readonly identity: string }
  /** The CLI on the server, the first start, a platform admin handing a new tenant its first key, the dev-only global key. */
  | { readonly kind: 'operator'; readonly id: string; readonly identity: string };

/** The operator at the command line (`frostgate keys create`). */
export const CLI_OPERATOR: Minter = { kind: 'operator', id: 'cli', identity: 'operator' };
/** In-process callers that name no minter (tests, tools) act as the operator. */
const IN_PROCESS_OPERATOR: Minter = { kind: 'operator', id: 'operator', identity: 'operator' };

export interface CreateKeyInput {
  readonly tenantId: string;
  readonly scopes: readonly Scope[];
  readonly name?: string;
  readonly expiresAt?: Date;
  /** Default: the operator, in process. */
  readonly minter?: Minter;
  /**
   * Who the key acts for. A principal's key belongs to the principal's identity (naming anyone else
   * is refused: 403 owner_not_vouched); the operator names anyone, default the key's own id.
   */
  readonly owner?: string;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

function toKeyInfo(row: {
  id: string;
  tenant_id: string;
  name: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  created_by: string | null;
  created_by_identity: string | null;
  owner: string;
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
    created_by_identity: row.created_by_identity,
    owner: row.owner || row.id,
  };
}

const KEY_COLUMNS = [
  'id',
  'tenant_id',
  'name',
  'scopes',
  'created_at',
  'expires_at',
  'revoked_at',
  'last_used_at',
  'created_by',
  'created_by_identity',
  'owner',
] as const;

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

/** A key and the keys that minted it, nearest first, each with the identity it belongs to. */
export type KeyLineage = ReadonlyArray<{ readonly id: string; readonly owner: string }>;

/** How far up a created_by chain is followed; chains are a handful of keys deep. */
const MAX_LINEAGE = 64;

/**
 * The key `keyId` and every key up its created_by chain that this transaction's tenant can see
 * (a platform admin that gave the tenant its first key lives in another tenant and ends the
 * chain, as do the operator's keys). Empty when no such key exists.
 */
export async function keyLineage(tx: Tx, keyId: string): Promise<KeyLineage> {
  const rows = await sql<{ id: string; owner: string }>`
    WITH RECURSIVE chain (id, owner, created_by, depth) AS (
      SELECT id, owner, created_by, 0 FROM api_keys WHERE id = ${keyId}
      UNION ALL
      SELECT k.id, k.owner, k.created_by, c.depth + 1 FROM api_keys k JOIN chain c ON k.id = c.created_by WHERE c.depth < ${MAX_LINEAGE}
    )
    SELECT id, owner FROM chain ORDER BY depth`.execute(tx);
  return rows.rows.map((r) => ({ id: r.id, owner: r.owner || r.id }));
}

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
  constructor(
    private readonly db: Database,
    private readonly audit?: KeyAudit,
    private readonly security?: Logger,
  ) {}

  /**
   * Creates a tenant; with `firstKey`, also its first key in the same transaction (shown once), so
   * a platform admin can hand a new tenant a key over HTTP without acting for that tenant later.
   */
  async createTenant(
    id: string,
    name = '',
    actor = 'unknown-principal',
    firstKey?: Omit<CreateKeyInput, 'tenantId'>,
  ): Promise<Tenant & { first_key?: CreatedKey }> {
    try {
      assertTenantId(id);
    } catch (err) {
      throw new AppError('invalid_tenant', (err as Error).message);
    }
    try {
      const { row, key } = await this.db.withTenant(id, async (tx) => {
        const inserted = await tx.insertInto('tenants').values({ id, name, disabled_at: null }).returningAll().executeTakeFirstOrThrow();
        await this.audit?.record(tx, id, { action: 'tenant.create', actor, target: id, details: { name } });
        const created = firstKey ? await this.insertKey(tx, { ...firstKey, tenantId: id }) : undefined;
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
    const minter = input.minter ?? IN_PROCESS_OPERATOR;
    if (minter.kind === 'principal' && input.owner !== undefined && input.owner !== minter.identity) {
      // Refused, and recorded like a success: in the security log and, committed on its own, the audit ledger.
      const details = { owner: input.owner, identity: minter.identity, scopes: [...input.scopes], reason: 'owner_not_vouched' };
      this.security?.warn(
        { type: 'key_event', action: 'create_refused', tenant_id: input.tenantId, key_id: minter.id, ...details },
        'key for an owner the minting principal cannot vouch for refused',
      );
      if (this.audit)
        await this.db.withTenant(input.tenantId, (tx) => this.audit!.record(tx, input.tenantId, { action: 'key.create_refused', actor: minter.id, details }));
      throw new AppError(
        'forbidden',
        `a key created by ${minter.id} belongs to its identity ${minter.identity}, not to ` +
          `${input.owner}; another person gets keys from the operator (frostgate keys create --owner)`,
        { reason: 'owner_not_vouched' },
      );
    }
    return this.db.withTenant(input.tenantId, (tx) => this.insertKey(tx, input));
  }

  /** Inserts a key and its audit entry in the caller's transaction (bound to the key's tenant). */
  private async insertKey(tx: Tx, input: CreateKeyInput): Promise<CreatedKey> {
    const generated = generateKey();
    const minter = input.minter ?? IN_PROCESS_OPERATOR;
    if (minter.kind === 'principal' && input.owner !== undefined && input.owner !== minter.identity)
      throw new AppError('forbidden', `a key created by ${minter.id} belongs to its identity ${minter.identity}`, { reason: 'owner_not_vouched' });
    const owner = minter.kind === 'principal' ? minter.identity : (input.owner ?? generated.id);
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
        created_by: minter.id,
        created_by_identity: minter.identity,
        owner,
      })
      .returning(KEY_COLUMNS)
      .executeTakeFirstOrThrow();
    await this.audit?.record(tx, input.tenantId, {
      action: 'key.create',
      actor: minter.id,
      target: generated.id,
      details: {
        scopes: [...input.scopes],
        name: input.name ?? '',
        expires_at: input.expiresAt?.toISOString() ?? null,
        owner,
        created_by_identity: minter.identity,
        vouched_by: minter.kind,
      },
    });
    return { ...toKeyInfo(inserted), key: generated.key };
  }

  async listKeys(tenantId: string): Promise<KeyInfo[]> {
    const rows = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('api_keys').select(KEY_COLUMNS).orderBy('created_at').orderBy('id').execute());
    return rows.map(toKeyInfo);
  }

  async getKey(tenantId: string, id: string): Promise<KeyInfo> {
    const row = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('api_keys').select(KEY_COLUMNS).where('id', '=', id).executeTakeFirst());
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
        .returning(KEY_COLUMNS)
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
      id: string;
      tenant_id: string;
      digest: Uint8Array;
      scopes: string[];
      expires_at: Date | null;
      revoked_at: Date | null;
      tenant_disabled: boolean;
      owner: string;
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

  /** Every key id with its digest's first 6 bytes, or those created since `since`, across tenants (the gate's key index). */
  async keyIndexSince(since: Date | null): Promise<Array<{ id: string; digestPrefix: Uint8Array; createdAt: Date }>> {
    const result = await sql<{
      id: string;
      digest_prefix: Uint8Array;
      created_at: Date;
    }>`SELECT * FROM fg_auth_key_index(${since ? since.toISOString() : null}::timestamptz)`.execute(this.db.db);
    return result.rows.map((r) => ({ id: r.id, digestPrefix: r.digest_prefix, createdAt: new Date(r.created_at) }));
  }

  async touch(ids: readonly string[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await sql`SELECT fg_auth_touch_keys(${[...ids]}::text[], ${at.toISOString()}::timestamptz)`.execute(this.db.db);
  }
}
