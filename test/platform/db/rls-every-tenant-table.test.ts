import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { openDatabase, type Database } from '../../../src/platform/db/database.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from '../../helpers/postgres.js';

interface TableRls {
  table: string;
  enabled: boolean;
  forced: boolean;
  /** USING and WITH CHECK expressions of each policy that applies to every command. */
  policies: Array<{ using: string | null; check: string | null }>;
}

/** Every table (plain or partitioned) in `schema` with a tenant_id column, and its row-level security. */
async function tenantTables(db: Kysely<unknown>, schema: 'public' | 'temp'): Promise<TableRls[]> {
  const ns = schema === 'public' ? sql`n.nspname = 'public'` : sql`n.oid = pg_my_temp_schema()`;
  const rows = await sql<{ table: string; enabled: boolean; forced: boolean; policies: Array<{ using: string | null; check: string | null }> | null }>`
    SELECT c.relname AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
      (SELECT json_agg(json_build_object('using', pg_get_expr(p.polqual, p.polrelid), 'check', pg_get_expr(p.polwithcheck, p.polrelid)))
       FROM pg_policy p WHERE p.polrelid = c.oid AND p.polcmd = '*' AND p.polpermissive) AS policies
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${ns} AND c.relkind IN ('r', 'p')
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped)
    ORDER BY c.relname`.execute(db);
  return rows.rows.map((r) => ({ ...r, policies: r.policies ?? [] }));
}

/** What is wrong with a table's row-level security: it must be enabled, forced, and keyed on app.tenant_id both ways. */
function rlsProblems(t: TableRls): string[] {
  const problems: string[] = [];
  if (!t.enabled) problems.push(`${t.table}: row-level security is not enabled`);
  if (!t.forced) problems.push(`${t.table}: row-level security is not forced (the table owner would bypass it)`);
  const keyed = (expr: string | null) => expr !== null && /\btenant_id\b/.test(expr) && /current_setting\('app\.tenant_id'/.test(expr);
  // Without WITH CHECK, Postgres checks new rows with the USING expression.
  if (!t.policies.some((p) => keyed(p.using) && (p.check === null || keyed(p.check))))
    problems.push(`${t.table}: no policy for all commands compares tenant_id with app.tenant_id`);
  return problems;
}

/** Every tenant table of the migrated schema is isolated by the database itself, on both engines. */
for (const kind of ['embedded', 'postgres'] as const) {
  describe(`row-level security on every table with a tenant_id (${kind})`, () => {
    let db: Database;
    let throwaway: ThrowawayDatabase | undefined;
    before(async () => {
      throwaway = kind === 'postgres' ? await createThrowawayDatabase() : undefined;
      db = await openDatabase({ url: throwaway?.url, embeddedDir: 'memory', migrate: true });
    });
    after(async () => {
      await db?.close();
      await throwaway?.drop();
    });

    it('each one has row-level security enabled, forced, and a tenant policy', async () => {
      const tables = await tenantTables(db.db as Kysely<unknown>, 'public');
      // The catalog query finds the tables it should (so an empty answer cannot pass).
      for (const known of ['api_keys', 'decisions', 'governance_approvals', 'ledger_entries', 'scenarios'])
        assert.ok(
          tables.some((t) => t.table === known),
          `${known} found`,
        );
      assert.ok(tables.length >= 15, `tenant tables: ${tables.map((t) => t.table).join(', ')}`);
      assert.deepEqual(tables.flatMap(rlsProblems), []);
    });

    it('the check itself fails a table that is missing any part (a control table made here)', async () => {
      // Temporary tables live in this session's own schema: the control never touches the real one.
      const stages = await db.db.transaction().execute(async (tx) => {
        const seen: string[][] = [];
        const check = async () => (await tenantTables(tx as unknown as Kysely<unknown>, 'temp')).flatMap(rlsProblems);
        await sql`CREATE TEMP TABLE rls_control (tenant_id text NOT NULL, v int) ON COMMIT DROP`.execute(tx);
        seen.push(await check());
        await sql`ALTER TABLE rls_control ENABLE ROW LEVEL SECURITY`.execute(tx);
        seen.push(await check());
        await sql`ALTER TABLE rls_control FORCE ROW LEVEL SECURITY`.execute(tx);
        seen.push(await check());
        await sql`CREATE POLICY loose ON rls_control USING (tenant_id = current_setting('app.tenant_id', true)) WITH CHECK (true)`.execute(tx);
        seen.push(await check());
        await sql`CREATE POLICY tenant_isolation ON rls_control USING (tenant_id = current_setting('app.tenant_id', true))`.execute(tx);
        seen.push(await check());
        return seen;
      });
      assert.equal(stages[0]!.length, 3, stages[0]!.join('; '));
      assert.match(stages[1]!.join('; '), /not forced/);
      assert.doesNotMatch(stages[1]!.join('; '), /not enabled/);
      assert.deepEqual(stages[2], ['rls_control: no policy for all commands compares tenant_id with app.tenant_id']);
      assert.equal(stages[3]!.length, 1, 'a policy whose WITH CHECK lets any tenant in does not count');
      assert.deepEqual(stages[4], []);
    });
  });
}
