import { sql } from 'kysely';
import type { Tx } from '../../platform/db/database.js';

/** Spawn's SQL: the spawn_requests rows (idempotency key, quota holds, launch state) and the per-tenant lock. */

export interface SpawnRow {
  readonly request_id: string;
  readonly body_digest: string;
  readonly subject: string;
  readonly track: string;
  readonly template_id: string;
  readonly template_version: string;
  readonly scenario_id: string;
  readonly entitlement_id: string | null;
  readonly status: 'pending' | 'launched';
}

export interface NewSpawnRow {
  readonly tenantId: string;
  readonly requestId: string;
  readonly bodyDigest: string;
  readonly subject: string;
  readonly track: string;
  readonly templateId: string;
  readonly templateVersion: string;
  readonly scenarioId: string;
  readonly entitlementId: string;
  readonly clientId: string | null;
  readonly createdAt: Date;
}

/** One spawn decision at a time per tenant: held until the transaction ends. */
export async function lockTenantSpawns(tx: Tx, tenantId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`fg_spawn:${tenantId}`}))`.execute(tx);
}

export async function findSpawn(tx: Tx, requestId: string): Promise<SpawnRow | undefined> {
  const existing = await sql<SpawnRow>`SELECT * FROM spawn_requests WHERE request_id = ${requestId}`.execute(tx);
  return existing.rows[0];
}

/** Pending spawns created after `since` (older ones no longer hold quota). */
export async function pendingSpawns(tx: Tx, since: Date): Promise<Array<{ scenario_id: string; subject: string }>> {
  const pending = await sql<{
    scenario_id: string;
    subject: string;
  }>`SELECT scenario_id, subject FROM spawn_requests WHERE status = 'pending' AND created_at > ${since.toISOString()}::timestamptz`.execute(tx);
  return pending.rows;
}

export async function spawnsSince(tx: Tx, subject: string, since: Date): Promise<number> {
  const today = await sql<{
    n: string;
  }>`SELECT count(*) AS n FROM spawn_requests WHERE subject = ${subject} AND created_at >= ${since.toISOString()}::timestamptz`.execute(tx);
  return Number(today.rows[0]?.n ?? 0);
}

export async function insertPendingSpawn(tx: Tx, row: NewSpawnRow): Promise<void> {
  await sql`INSERT INTO spawn_requests (tenant_id, request_id, body_digest, subject, track, template_id, template_version, scenario_id, entitlement_id, client_id, status, created_at)
    VALUES (${row.tenantId}, ${row.requestId}, ${row.bodyDigest}, ${row.subject}, ${row.track}, ${row.templateId}, ${row.templateVersion}, ${row.scenarioId}, ${row.entitlementId}, ${row.clientId}, 'pending', ${row.createdAt.toISOString()}::timestamptz)`.execute(
    tx,
  );
}

export async function deleteSpawn(tx: Tx, requestId: string, scenarioId: string): Promise<void> {
  await sql`DELETE FROM spawn_requests WHERE request_id = ${requestId} AND scenario_id = ${scenarioId}`.execute(tx);
}

export async function markLaunched(tx: Tx, requestId: string): Promise<void> {
  await sql`UPDATE spawn_requests SET status = 'launched', launched_at = now() WHERE request_id = ${requestId}`.execute(tx);
}
