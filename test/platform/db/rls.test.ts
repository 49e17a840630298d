import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../../../src/platform/db/database.js';
import { generateKey } from '../../../src/core/auth/key-format.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../../helpers/postgres.js';

/** Tenant isolation is enforced by the database itself, on both engines. */
for (const kind of ['embedded', 'postgres'] as const) {
  describe(`row-level security (${kind})`, () => {
    let db: Database;
    let throwaway: ThrowawayDatabase | undefined;

    before(async () => {
      throwaway = kind === 'postgres' ? await createThrowawayDatabase() : undefined;
      db = await openDatabase({ url: throwaway?.url, embeddedDir: 'memory', migrate: true });
      await db.db
        .insertInto('tenants')
        .values([
          { id: 'acme', disabled_at: null },
          { id: 'globex', disabled_at: null },
        ])
        .execute();
      for (const tenant of ['acme', 'globex']) {
        for (let i = 0; i < 3; i++) {
          const k = generateKey();
          await db.withTenant(tenant, (tx) =>
            tx
              .insertInto('api_keys')
              .values({
                id: k.id,
                tenant_id: tenant,
                digest: k.digest,
                name: `${tenant}-${i}`,
                scopes: ['decisions:read'],
                expires_at: null,
                revoked_at: null,
                last_used_at: null,
                created_by: 'test',
              })
              .execute(),
          );
        }
      }
    });
    after(async () => {
      await db?.close();
      await throwaway?.drop();
    });

    it('runs application queries as a role that RLS applies to', async () => {
      const r = await sql<{
        super: boolean;
        bypass: boolean;
      }>`SELECT rolsuper AS super, rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user`.execute(db.db);
      assert.deepEqual(r.rows[0], { super: false, bypass: false });
    });

    it('a query that forgets its tenant filter sees only its own tenant', async () => {
      const rows = await db.withTenant('acme', (tx) => tx.selectFrom('api_keys').select(['tenant_id', 'name']).execute());
      assert.equal(rows.length, 3);
      assert.ok(rows.every((r) => r.tenant_id === 'acme'));
    });

    it('outside a tenant transaction no tenant rows are visible at all', async () => {
      const rows = await db.db.selectFrom('api_keys').selectAll().execute();
      assert.equal(rows.length, 0);
    });

    it('an insert for another tenant is refused', async () => {
      const k = generateKey();
      await assert.rejects(
        db.withTenant('acme', (tx) =>
          tx
            .insertInto('api_keys')
            .values({ id: k.id, tenant_id: 'globex', digest: k.digest, scopes: [], expires_at: null, revoked_at: null, last_used_at: null, created_by: null })
            .execute(),
        ),
        /row-level security/,
      );
    });

    it("an update cannot move a row to another tenant, nor touch another tenant's rows", async () => {
      await assert.rejects(
        db.withTenant('acme', (tx) => tx.updateTable('api_keys').set({ tenant_id: 'globex' }).execute()),
        /row-level security/,
      );
      const touched = await db.withTenant('acme', (tx) =>
        tx.updateTable('api_keys').set({ name: 'pwned' }).where('name', 'like', 'globex%').executeTakeFirst(),
      );
      assert.equal(Number(touched.numUpdatedRows), 0);
    });

    it("the database refuses the 'unknown' and empty tenants", async () => {
      await assert.rejects(db.db.insertInto('tenants').values({ id: 'unknown', disabled_at: null }).execute(), /check constraint/);
      await assert.rejects(db.db.insertInto('tenants').values({ id: '', disabled_at: null }).execute(), /check constraint/);
      await assert.rejects(
        db.withTenant('unknown', async () => undefined),
        /not allowed/,
      );
    });

    it('migrations are idempotent', async () => {
      const again = await db.migrate();
      assert.deepEqual(again.applied, []);
      assert.ok(again.alreadyApplied >= 1);
      assert.deepEqual(await db.pendingMigrations(), []);
    });
  });
}
