import { sql } from 'kysely';
import type { AuditTrail } from '../../ledger/audit.js';
import type { Database, Tx } from '../../platform/db/database.js';
import { AppError, notFound } from '../../platform/http/problem.js';
import { normalizeIp } from '../engine/ip.js';
import { toBlock, type Block } from './crowdsec-format.js';

/**
 * Early removal of a block: an operator lifts an IP's blocks before they end. Decisions stay as
 * the ledger recorded them; a removal is a row of its own (migration 0040) with an audit entry in
 * the same transaction. It ends the entity's blocks decided up to its `through` index: a decision
 * made after it blocks the IP again. The bouncer set (bouncer.ts) reads removals at each refresh,
 * so lookups stop answering the IP and stream pulls list it in `deleted`.
 */

export interface BlockRemoval {
  readonly ip: string;
  readonly removed_at: string;
  readonly removed_by: string;
  readonly reason: string;
  /** The decisions whose blocks were lifted. */
  readonly decision_ids: string[];
  /** When the longest of them would have ended. */
  readonly blocked_until: string;
  readonly audit_index: number;
}

/** A removal as the bouncer set applies it. */
export interface LiftRow {
  readonly entity: string;
  readonly through: number;
  readonly removedAtMs: number;
  /** The lifted block, ended at the removal: what a stream pull reports deleted. */
  readonly lifted: Block;
  /** The entity's block in force decided after the removal, if any (it keeps the IP blocked). */
  readonly later?: Block;
}

/** How long after a removal every stream pull lists it in `deleted`, whatever the puller's position. */
export const LIFT_REPORT_WINDOW_MS = 60_000;

export class BlockRemovals {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditTrail,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Lifts every block in force on `ip` for the tenant; 404 when none is. */
  async remove(tenantId: string, ipText: string, actor: string, reason: string): Promise<BlockRemoval> {
    const ip = normalizeIp(ipText);
    if (!ip)
      throw new AppError('validation_failed', 'params/ip: must be an IPv4 or IPv6 address', { errors: [{ path: 'params/ip', message: 'not an IP address' }] });
    const entity = `ip:${ip}`;
    return this.db.withTenant(tenantId, async (tx) => {
      // One removal of an entity at a time: the second sees the first's row and what it lifted.
      await sql`SELECT pg_advisory_xact_lock(hashtext(${`block-removal:${tenantId}:${entity}`}))`.execute(tx);
      const now = new Date(this.clock());
      const lifted = await sql<{ through: string | number | null }>`
        SELECT max(through_ledger_index) AS through FROM decision_block_removals WHERE tenant_id = ${tenantId} AND entity = ${entity}`.execute(tx);
      const liftedThrough = Number(lifted.rows[0]?.through ?? -1);
      const blocks = await tx
        .selectFrom('decisions')
        .select(['decision_id', 'ledger_index', 'rules_triggered', 'block_until'])
        .where('tenant_id', '=', tenantId)
        .where('entity', '=', entity)
        .where('block_until', '>', now)
        .where('ledger_index', '>', liftedThrough)
        .orderBy('block_until', 'desc')
        .execute();
      if (blocks.length === 0) throw notFound(`a block in force on ${ip}`);
      const longest = blocks[0]!;
      const through = Math.max(...blocks.map((b) => Number(b.ledger_index)));
      const decisionIds = blocks.map((b) => b.decision_id);
      const blockedUntil = new Date(longest.block_until!);
      const auditIndex = await this.audit.record(tx, tenantId, {
        action: 'decision.block_remove',
        actor,
        target: entity,
        reason,
        details: { decision_ids: decisionIds, through_ledger_index: through, blocked_until: blockedUntil.toISOString() },
      });
      await tx
        .insertInto('decision_block_removals')
        .values({
          tenant_id: tenantId,
          entity,
          through_ledger_index: through,
          lifted_ledger_index: Number(longest.ledger_index),
          rules_triggered: longest.rules_triggered,
          blocked_until: blockedUntil,
          removed_at: now,
          removed_by: actor,
          reason,
          audit_index: auditIndex,
        })
        .execute();
      return {
        ip,
        removed_at: now.toISOString(),
        removed_by: actor,
        reason,
        decision_ids: decisionIds,
        blocked_until: blockedUntil.toISOString(),
        audit_index: auditIndex,
      };
    });
  }

  /** Of the decisions listed as blocks in force, those no removal has lifted. */
  async withoutLifted<D extends { entity: string; ledger_index: number }>(tenantId: string, decisions: readonly D[]): Promise<D[]> {
    if (decisions.length === 0) return [];
    const rows = await this.db.withTenant(tenantId, (tx) =>
      tx
        .selectFrom('decision_block_removals')
        .select(['entity', (e) => e.fn.max('through_ledger_index').as('through')])
        .where('tenant_id', '=', tenantId)
        .where('entity', 'in', [...new Set(decisions.map((d) => d.entity))])
        .groupBy('entity')
        .execute(),
    );
    const through = new Map(rows.map((r) => [r.entity, Number(r.through)]));
    return decisions.filter((d) => d.ledger_index > (through.get(d.entity) ?? -1));
  }
}

/**
 * Removals whose lifted blocks would still be in force after `horizonMs` (older ones change
 * nothing a bouncer set holds), each with the entity's block decided after it, if one is in force.
 * Read by the bouncer set in its refresh transaction; removals are rare operator actions.
 */
export async function readLifts(tx: Tx, tenantId: string, horizonMs: number, nowMs: number): Promise<LiftRow[]> {
  const { rows } = await sql<{
    entity: string;
    through_ledger_index: string | number;
    lifted_ledger_index: string | number;
    rules_triggered: string[];
    removed_at: Date | string;
    later_index: string | number | null;
    later_rules: string[] | null;
    later_until: Date | string | null;
  }>`
    SELECT r.entity, r.through_ledger_index, r.lifted_ledger_index, r.rules_triggered, r.removed_at,
      n.ledger_index AS later_index, n.rules_triggered AS later_rules, n.block_until AS later_until
    FROM decision_block_removals r
    LEFT JOIN LATERAL (
      SELECT d.ledger_index, d.rules_triggered, d.block_until FROM decisions d
      WHERE d.tenant_id = r.tenant_id AND d.entity = r.entity AND d.ledger_index > r.through_ledger_index AND d.block_until > ${new Date(nowMs)}
      ORDER BY d.block_until DESC LIMIT 1
    ) n ON true
    WHERE r.tenant_id = ${tenantId} AND r.blocked_until > ${new Date(horizonMs)}
    ORDER BY r.removed_at`.execute(tx);
  return rows.map((r) => {
    const removedAt = new Date(r.removed_at);
    return {
      entity: r.entity,
      through: Number(r.through_ledger_index),
      removedAtMs: removedAt.getTime(),
      lifted: toBlock({ ledger_index: r.lifted_ledger_index, entity: r.entity, rules_triggered: r.rules_triggered, block_until: removedAt }),
      ...(r.later_index !== null && r.later_until !== null
        ? { later: toBlock({ ledger_index: r.later_index, entity: r.entity, rules_triggered: r.later_rules ?? [], block_until: r.later_until }) }
        : {}),
    };
  });
}

/**
 * Applies removals to a bouncer set's blocks (one per IP): a held block a removal covers ends at
 * the removal, unless a later decision keeps the IP blocked, which then answers for it.
 */
export function applyLifts(blocks: Map<string, Block>, lifts: readonly LiftRow[]): void {
  for (const lift of lifts) {
    const ip = lift.lifted.ip;
    const held = blocks.get(ip);
    if (held && held.ledgerIndex <= lift.through && held.untilMs > lift.removedAtMs) blocks.set(ip, lift.lifted);
    const now = blocks.get(ip);
    if (lift.later && (!now || lift.later.untilMs > now.untilMs || now.ledgerIndex <= lift.through)) blocks.set(ip, lift.later);
  }
}

/**
 * Lifted IPs a pull at `nowMs` after one at `lastPullAtMs` lists as deleted: those removed since
 * the window before the last pull (a process may learn of a removal a few seconds late, and a
 * repeated delete is harmless to a bouncer) and not blocked again since.
 */
export function liftedSince(lifts: readonly LiftRow[], blocks: ReadonlyMap<string, Block>, lastPullAtMs: number, nowMs: number): Block[] {
  const out = new Map<string, Block>();
  for (const lift of lifts) {
    if (lift.removedAtMs <= lastPullAtMs - LIFT_REPORT_WINDOW_MS || lift.removedAtMs > nowMs) continue;
    const current = blocks.get(lift.lifted.ip);
    if (current && current.untilMs > nowMs) continue;
    out.set(lift.lifted.ip, lift.lifted);
  }
  return [...out.values()];
}
