import { sql } from 'kysely';
import type { Tx } from '../platform/db/database.js';
import type { LedgerName } from '../platform/db/schema.js';
import { missingNode, type MerkleNode, type WritableMerkleNodeStore } from './node-store.js';
import type { NodeId } from './tree-shape.js';

/**
 * The node store of one (tenant, log) inside a tenant transaction: proofs read their nodes with
 * one query; appends insert the completed nodes in the transaction that stores the record.
 */
export class DbMerkleNodeStore implements WritableMerkleNodeStore {
  constructor(
    private readonly tx: Tx,
    private readonly tenantId: string,
    private readonly log: LedgerName,
  ) {}

  async getNode(level: number, index: number): Promise<Buffer> {
    const [hash] = await this.getNodes([{ level, index }]);
    return hash!;
  }

  async getNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    if (ids.length === 0) return [];
    // unnest + join so the planner does one primary-key lookup per node (a row-value IN list
    // makes it scan the whole log).
    const rows = await sql<{ level: number; idx: number | string; hash: Uint8Array }>`
      SELECT n.level, n.idx, n.hash
      FROM unnest(${ids.map((i) => i.level)}::smallint[], ${ids.map((i) => i.index)}::bigint[]) AS q(level, idx)
      JOIN ledger_nodes n ON n.tenant_id = ${this.tenantId} AND n.log = ${this.log} AND n.level = q.level AND n.idx = q.idx`
      .execute(this.tx)
      .then((r) => r.rows);
    const byKey = new Map(rows.map((r) => [`${r.level}:${Number(r.idx)}`, Buffer.from(r.hash)]));
    return ids.map((id) => {
      const hash = byKey.get(`${id.level}:${id.index}`);
      if (!hash) throw missingNode(id.level, id.index);
      return hash;
    });
  }

  async putNodes(nodes: readonly MerkleNode[]): Promise<void> {
    if (nodes.length === 0) return;
    // Three array parameters instead of five per row: binding thousands of parameters dominates
    // the cost of a batch append otherwise.
    await sql`
      INSERT INTO ledger_nodes (tenant_id, log, level, idx, hash)
      SELECT ${this.tenantId}, ${this.log}, q.level, q.idx, decode(q.hash, 'hex')
      FROM unnest(${nodes.map((n) => n.level)}::smallint[], ${nodes.map((n) => n.index)}::bigint[], ${nodes.map((n) => n.hash.toString('hex'))}::text[]) AS q(level, idx, hash)`.execute(
      this.tx,
    );
  }
}
