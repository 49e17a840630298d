import { sql, type Insertable } from 'kysely';
import type { Tx } from '../../platform/db/database.js';
import type { ChangeStatus, GovernanceChangesTable, GovernedKind } from '../../platform/db/schema.js';
import { notFound } from '../../platform/http/problem.js';
import type { CanaryResult } from './canary.js';

/** Governance's SQL: change rows, their approvals, immutable versions and the active pointer. */

/** One change row of the caller's tenant (404 otherwise); `lock` holds it for the transaction. */
export async function loadChange(tx: Tx, tenantId: string, id: string, lock = false) {
  let q = tx.selectFrom('governance_changes').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId);
  if (lock) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw notFound(`change ${id}`);
  return row;
}

export type ChangeRow = Awaited<ReturnType<typeof loadChange>>;
export type NewChange = Omit<Insertable<GovernanceChangesTable>, 'content' | 'canary' | 'created_at'> & { readonly content: unknown };

export async function listChanges(tx: Tx, tenantId: string, opts: { status?: ChangeStatus; limit?: number }): Promise<ChangeRow[]> {
  let q = tx
    .selectFrom('governance_changes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('created_at', 'desc')
    .limit(opts.limit ?? 100);
  if (opts.status) q = q.where('status', '=', opts.status);
  return q.execute();
}

/** The change's id when it is this tenant's, else undefined (for naming an unchecked URL id). */
export async function ownChangeId(tx: Tx, tenantId: string, id: string): Promise<string | undefined> {
  const row = await tx.selectFrom('governance_changes').select('id').where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
  return row?.id;
}

export async function insertChange(tx: Tx, change: NewChange): Promise<ChangeRow> {
  return tx
    .insertInto('governance_changes')
    .values({ ...change, content: JSON.stringify(change.content), canary: null })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function setChangeStatus(tx: Tx, id: string, status: ChangeStatus): Promise<void> {
  await tx.updateTable('governance_changes').set({ status }).where('id', '=', id).execute();
}

export async function setCanary(tx: Tx, id: string, result: CanaryResult): Promise<void> {
  await tx
    .updateTable('governance_changes')
    .set({ canary: JSON.stringify(result) })
    .where('id', '=', id)
    .execute();
}

export async function markDeployed(tx: Tx, id: string, previousVersion: string): Promise<void> {
  await tx
    .updateTable('governance_changes')
    .set({ status: 'deployed', deployed_at: new Date(), previous_version: previousVersion })
    .where('id', '=', id)
    .execute();
}

export async function markRolledBack(tx: Tx, id: string, reason: string): Promise<void> {
  await tx.updateTable('governance_changes').set({ status: 'rolled_back', rolled_back_at: new Date(), rollback_reason: reason }).where('id', '=', id).execute();
}

export async function approvalsOf(tx: Tx, changeId: string) {
  return tx.selectFrom('governance_approvals').selectAll().where('change_id', '=', changeId).orderBy('at').execute();
}

export interface ApprovalRow {
  readonly change_id: string;
  readonly tenant_id: string;
  readonly principal_key: string;
  readonly principal_subject: string;
  readonly decision: 'approve' | 'reject';
  readonly reason: string | null;
}

/** Records an approval or rejection; a second rejection by the same principal is a no-op when `idempotent`. */
export async function insertApproval(tx: Tx, approval: ApprovalRow, idempotent = false): Promise<void> {
  let q = tx.insertInto('governance_approvals').values(approval);
  if (idempotent) q = q.onConflict((oc) => oc.doNothing());
  await q.execute();
}

export async function countApprovals(tx: Tx, changeId: string): Promise<number> {
  const count = await tx
    .selectFrom('governance_approvals')
    .select((e) => e.fn.countAll<number>().as('n'))
    .where('change_id', '=', changeId)
    .where('decision', '=', 'approve')
    .executeTakeFirstOrThrow();
  return Number(count.n);
}

export async function versionExists(tx: Tx, tenantId: string, kind: GovernedKind, version: string): Promise<boolean> {
  const row = await tx
    .selectFrom('governed_versions')
    .select('version')
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', kind)
    .where('version', '=', version)
    .executeTakeFirst();
  return row !== undefined;
}

/** The change that deployed `version` of `kind`, or undefined for the shipped default. */
export async function changeOfVersion(tx: Tx, tenantId: string, kind: GovernedKind, version: string): Promise<string | undefined> {
  const row = await tx
    .selectFrom('governed_versions')
    .select(['change_id'])
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', kind)
    .where('version', '=', version)
    .executeTakeFirst();
  return row?.change_id;
}

/** The active pointer of `kind`; `lock` holds it for the transaction. */
export async function activeOf(tx: Tx, tenantId: string, kind: GovernedKind, lock = false): Promise<{ version: string; change_id: string } | undefined> {
  let q = tx.selectFrom('governed_active').select(['version', 'change_id']).where('tenant_id', '=', tenantId).where('kind', '=', kind);
  if (lock) q = q.forUpdate();
  return q.executeTakeFirst();
}

/** The deployed version with its content, as the engine and limiter read it. */
export async function activeWithContent(tx: Tx, tenantId: string, kind: GovernedKind) {
  return tx
    .selectFrom('governed_active as a')
    .innerJoin('governed_versions as v', (j) => j.onRef('v.tenant_id', '=', 'a.tenant_id').onRef('v.kind', '=', 'a.kind').onRef('v.version', '=', 'a.version'))
    .select(['a.version', 'a.change_id', 'v.content'])
    .where('a.tenant_id', '=', tenantId)
    .where('a.kind', '=', kind)
    .executeTakeFirst();
}

/** Stores the version (immutable: a second store is a no-op) and points the active pointer at it. */
export async function activate(tx: Tx, tenantId: string, kind: GovernedKind, version: string, content: unknown, changeId: string): Promise<void> {
  await tx
    .insertInto('governed_versions')
    .values({ tenant_id: tenantId, kind, version, content: JSON.stringify(content), change_id: changeId })
    .onConflict((oc) => oc.doNothing())
    .execute();
  await tx
    .insertInto('governed_active')
    .values({ tenant_id: tenantId, kind, version, change_id: changeId })
    .onConflict((oc) => oc.columns(['tenant_id', 'kind']).doUpdateSet({ version, change_id: changeId, deployed_at: sql`now()` }))
    .execute();
}

/** Points `kind` back at a stored version, or (none stored: the shipped default) removes the pointer. */
export async function restoreActive(tx: Tx, tenantId: string, kind: GovernedKind, version: string, changeId: string | undefined): Promise<void> {
  if (changeId === undefined) {
    await tx.deleteFrom('governed_active').where('tenant_id', '=', tenantId).where('kind', '=', kind).execute();
    return;
  }
  await tx
    .updateTable('governed_active')
    .set({ version, change_id: changeId, deployed_at: sql`now()` })
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', kind)
    .execute();
}
