import { sql } from 'kysely';
import type { Database, Tx } from '../platform/db/database.js';
import type { LedgerName } from '../platform/db/schema.js';
import { canonicalize } from '../platform/crypto/canonical-json.js';
import { AppError } from '../platform/http/problem.js';
import type { Logger } from '../platform/log.js';
import { signCheckpoint } from './checkpoint.js';
import { DbMerkleNodeStore } from './db-store.js';
import { LedgerError } from './errors.js';
import { hashLeaf } from './hash.js';
import { consistencyProof, inclusionProof, MerkleFrontier, rootAt } from './merkle.js';
import type { MerkleNode } from './node-store.js';
import type { LedgerSigningKey } from './signing-key.js';

export const LEDGER_NAMES: readonly LedgerName[] = ['decisions', 'audit'];

export interface AppendedEntry {
  readonly index: number;
  readonly leafHash: Buffer;
}

export interface StoredCheckpoint {
  readonly origin: string;
  readonly tree_size: number;
  readonly root_hash: string;
  readonly note: string;
  readonly key_id: string;
  readonly created_at: string;
}

export interface LedgerOptions {
  /** Log origin prefix; each log is `<origin>/<tenant>/<log>`. */
  readonly origin: string;
  /** A new checkpoint when the head moved and the last one is this old (seconds). */
  readonly checkpointIntervalS: number;
  /** ... or this many entries were appended since the last checkpoint. */
  readonly checkpointMaxEntries: number;
}

export const DEFAULT_LEDGER_OPTIONS: LedgerOptions = { origin: 'frostgate.ledger', checkpointIntervalS: 10, checkpointMaxEntries: 1000 };

/** What appending records to a log writes: its entries, the completed Merkle nodes, the new frontier. */
export interface PlannedAppend {
  readonly frontier: MerkleFrontier;
  readonly entries: AppendedEntry[];
  readonly nodes: MerkleNode[];
  readonly rows: Array<{ idx: number; record_json: string }>;
}

/**
 * Hashes records onto a frontier: each record is canonicalised once (RFC 8785) and that text is
 * both the stored entry and the leaf. Pure, so a writer can plan before it takes the head lock.
 */
export function planAppend(start: MerkleFrontier, records: readonly unknown[]): PlannedAppend {
  let frontier = start;
  const entries: AppendedEntry[] = [];
  const nodes: MerkleNode[] = [];
  const rows: Array<{ idx: number; record_json: string }> = [];
  for (const record of records) {
    const json = canonicalize(record);
    const leafHash = hashLeaf(Buffer.from(json, 'utf8'));
    const result = frontier.append(leafHash);
    frontier = result.frontier;
    for (const node of result.nodes) nodes.push(node);
    rows.push({ idx: result.index, record_json: json });
    entries.push({ index: result.index, leafHash });
  }
  return { frontier, entries, nodes, rows };
}

/**
 * The one ledger of the platform. append() runs inside the caller's tenant transaction, so a
 * record and its ledger entry commit or vanish together: nothing exists outside the log. The
 * decisions log is appended by DecisionService's group commit instead (the same planAppend(),
 * stored by the fg_decision_group_append SQL function (migration 0019) with its decision rows in one statement).
 */
export class LedgerService {
  constructor(
    private readonly db: Database,
    readonly signingKey: LedgerSigningKey,
    readonly options: LedgerOptions = DEFAULT_LEDGER_OPTIONS,
    /** The security log, told of every integrity failure a read finds. */
    private readonly security?: Pick<Logger, 'error'>,
  ) {}

  originOf(tenantId: string, log: LedgerName): string {
    return `${this.options.origin}/${tenantId}/${log}`;
  }

  /** Appends records in order; returns their indices. Serialised per log by the head row lock. */
  async append(tx: Tx, tenantId: string, log: LedgerName, records: readonly unknown[]): Promise<AppendedEntry[]> {
    if (records.length === 0) return [];
    await tx
      .insertInto('ledger_heads')
      .values({ tenant_id: tenantId, log, size: 0 })
      .onConflict((oc) => oc.columns(['tenant_id', 'log']).doNothing())
      .execute();
    const head = await tx
      .selectFrom('ledger_heads')
      .select('size')
      .where('tenant_id', '=', tenantId)
      .where('log', '=', log)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const size = Number(head.size);
    const store = new DbMerkleNodeStore(tx, tenantId, log);
    // Always read under the head lock, never cached across transactions: a cached frontier of a
    // rolled-back append has the right size as soon as another node appends in its place, and
    // building on it would write nodes that no inclusion proof verifies against (chaos test
    // test/chaos/two-nodes-ledger.test.ts). popcount(size) primary-key reads in one query.
    const planned = planAppend(await MerkleFrontier.load(store, size), records);
    const rows = planned.rows;
    await sql`
      INSERT INTO ledger_entries (tenant_id, log, idx, record_json)
      SELECT ${tenantId}, ${log}, q.idx, q.record_json
      FROM unnest(${rows.map((r) => r.idx)}::bigint[], ${rows.map((r) => r.record_json)}::text[]) AS q(idx, record_json)`.execute(tx);
    await store.putNodes(planned.nodes);
    await tx
      .updateTable('ledger_heads')
      .set({ size: planned.frontier.size, updated_at: sql`now()` })
      .where('tenant_id', '=', tenantId)
      .where('log', '=', log)
      .execute();
    return planned.entries;
  }

  async size(tenantId: string, log: LedgerName): Promise<number> {
    return this.db.withTenant(tenantId, async (tx) => this.sizeIn(tx, tenantId, log));
  }

  private async sizeIn(tx: Tx, tenantId: string, log: LedgerName): Promise<number> {
    const head = await tx.selectFrom('ledger_heads').select('size').where('tenant_id', '=', tenantId).where('log', '=', log).executeTakeFirst();
    return head ? Number(head.size) : 0;
  }

  /** The latest checkpoint, issuing a new one when the log grew and `fresh` is asked or the last is due. */
  async checkpoint(tenantId: string, log: LedgerName, opts: { fresh?: boolean } = {}): Promise<StoredCheckpoint> {
    return this.db.withTenant(tenantId, async (tx) => {
      const latest = await this.latestCheckpointIn(tx, tenantId, log);
      const size = await this.sizeIn(tx, tenantId, log);
      const due =
        !latest ||
        (size > latest.tree_size &&
          (opts.fresh ||
            size - latest.tree_size >= this.options.checkpointMaxEntries ||
            Date.now() - Date.parse(latest.created_at) >= this.options.checkpointIntervalS * 1000));
      if (!due) return latest;
      return this.issueIn(tx, tenantId, log, size);
    });
  }

  private async issueIn(tx: Tx, tenantId: string, log: LedgerName, size: number): Promise<StoredCheckpoint> {
    const root = await rootAt(new DbMerkleNodeStore(tx, tenantId, log), size);
    const origin = this.originOf(tenantId, log);
    const note = signCheckpoint({ origin, treeSize: size, rootHash: root }, this.signingKey.signer);
    await tx
      .insertInto('ledger_signing_keys')
      .values({ key_id: this.signingKey.keyId, vkey: this.signingKey.vkey, retired_at: null })
      .onConflict((oc) => oc.column('key_id').doNothing())
      .execute();
    const row = await tx
      .insertInto('ledger_checkpoints')
      .values({ tenant_id: tenantId, log, tree_size: size, root_hash: root, note, key_id: this.signingKey.keyId })
      .onConflict((oc) => oc.columns(['tenant_id', 'log', 'tree_size']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) return (await this.latestCheckpointIn(tx, tenantId, log))!;
    return {
      origin,
      tree_size: size,
      root_hash: root.toString('base64'),
      note,
      key_id: this.signingKey.keyId,
      created_at: new Date(row.created_at).toISOString(),
    };
  }

  private async latestCheckpointIn(tx: Tx, tenantId: string, log: LedgerName): Promise<StoredCheckpoint | undefined> {
    const row = await tx
      .selectFrom('ledger_checkpoints')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('log', '=', log)
      .orderBy('tree_size', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      origin: this.originOf(tenantId, log),
      tree_size: Number(row.tree_size),
      root_hash: Buffer.from(row.root_hash).toString('base64'),
      note: row.note,
      key_id: row.key_id,
      created_at: new Date(row.created_at).toISOString(),
    };
  }

  /** The log's checkpoints by size, those above `after` only when given. */
  async checkpoints(tenantId: string, log: LedgerName, opts: { after?: number } = {}): Promise<StoredCheckpoint[]> {
    return this.db.withTenant(tenantId, async (tx) => {
      let q = tx.selectFrom('ledger_checkpoints').selectAll().where('tenant_id', '=', tenantId).where('log', '=', log);
      if (opts.after !== undefined) q = q.where('tree_size', '>', opts.after);
      const rows = await q.orderBy('tree_size').execute();
      return rows.map((row) => ({
        origin: this.originOf(tenantId, log),
        tree_size: Number(row.tree_size),
        root_hash: Buffer.from(row.root_hash).toString('base64'),
        note: row.note,
        key_id: row.key_id,
        created_at: new Date(row.created_at).toISOString(),
      }));
    });
  }

  /** Every verifier key that ever signed a checkpoint (rotation keeps old ones verifiable). */
  async verifierKeys(): Promise<string[]> {
    const rows = await this.db.db.selectFrom('ledger_signing_keys').select('vkey').orderBy('first_used_at').execute();
    const keys = rows.map((r) => r.vkey);
    return keys.includes(this.signingKey.vkey) ? keys : [...keys, this.signingKey.vkey];
  }

  async inclusion(tenantId: string, log: LedgerName, index: number, treeSize: number): Promise<{ leafHash: Buffer; proof: Buffer[]; root: Buffer }> {
    return this.db.withTenant(tenantId, async (tx) => {
      const size = await this.sizeIn(tx, tenantId, log);
      if (treeSize > size) throw new AppError('unprocessable', `tree_size ${treeSize} is beyond the log size ${size}`, { log_size: size });
      if (index >= treeSize) throw new AppError('unprocessable', `index ${index} is not below tree_size ${treeSize}`);
      const store = new DbMerkleNodeStore(tx, tenantId, log);
      const [leafHash, proof, root] = await this.fromStoredNodes(
        tenantId,
        log,
        Promise.all([store.getNode(0, index), inclusionProof(store, index, treeSize), rootAt(store, treeSize)]),
      );
      return { leafHash, proof, root };
    });
  }

  async consistency(tenantId: string, log: LedgerName, from: number, to: number): Promise<{ proof: Buffer[]; fromRoot: Buffer; toRoot: Buffer }> {
    return this.db.withTenant(tenantId, async (tx) => {
      const size = await this.sizeIn(tx, tenantId, log);
      if (to > size) throw new AppError('unprocessable', `to ${to} is beyond the log size ${size}`, { log_size: size });
      if (from > to) throw new AppError('unprocessable', `from ${from} is larger than to ${to}`);
      const store = new DbMerkleNodeStore(tx, tenantId, log);
      const [proof, fromRoot, toRoot] = await this.fromStoredNodes(
        tenantId,
        log,
        Promise.all([consistencyProof(store, from, to), rootAt(store, from), rootAt(store, to)]),
      );
      return { proof, fromRoot, toRoot };
    });
  }

  /**
   * Entries [start, end) as stored, each checked against the log: it parses, and its leaf hash is
   * the stored leaf of the Merkle tree, with no entry below the head missing. A row that fails is
   * an integrity failure of the server (someone with database access edited or removed it), never
   * the client's fault: 500 integrity_failure, in the security log.
   */
  async entries(tenantId: string, log: LedgerName, start: number, end: number): Promise<Array<{ index: number; record: unknown; leaf_hash: string }>> {
    return this.db.withTenant(tenantId, async (tx) => {
      const rows = await tx
        .selectFrom('ledger_entries')
        .select(['idx', 'record_json'])
        .where('tenant_id', '=', tenantId)
        .where('log', '=', log)
        .where('idx', '>=', start)
        .where('idx', '<', end)
        .orderBy('idx')
        .execute();
      const size = await this.sizeIn(tx, tenantId, log);
      const fail = (index: number, reason: string): never => {
        throw this.integrityFailure(tenantId, log, index, reason);
      };
      const expected = Math.max(0, Math.min(end, size) - start);
      const present = new Set(rows.map((r) => Number(r.idx)));
      for (let i = start; i < start + expected; i++) if (!present.has(i)) fail(i, 'entry below the head is missing');
      const leaves = await this.fromStoredNodes(
        tenantId,
        log,
        new DbMerkleNodeStore(tx, tenantId, log).getNodes(rows.map((r) => ({ level: 0, index: Number(r.idx) }))),
      );
      return rows.map((r, i) => {
        const index = Number(r.idx);
        if (index >= size) fail(index, 'entry beyond the head');
        let record: unknown;
        try {
          record = JSON.parse(r.record_json) as unknown;
        } catch {
          fail(index, 'record is not JSON');
        }
        const leafHash = hashLeaf(Buffer.from(r.record_json, 'utf8'));
        if (!leafHash.equals(leaves[i]!)) fail(index, 'record does not hash to its stored leaf');
        return { index, record, leaf_hash: leafHash.toString('base64') };
      });
    });
  }

  /** A read found the stored log damaged: the security log hears of it, the client gets 500 integrity_failure. */
  private integrityFailure(tenantId: string, log: LedgerName, index: number | undefined, reason: string): AppError {
    this.security?.error({ type: 'ledger_integrity', success: false, reason, tenant_id: tenantId, log, index }, 'ledger fails its integrity check');
    const at = index === undefined ? '' : ` at entry ${index}`;
    return new AppError(
      'integrity_failure',
      `ledger ${log} of this tenant failed its integrity check${at}: stored data was changed ` +
        `outside FrostGate; this is in the security log, and frostgate verify locates the damage`,
      { log, ...(index === undefined ? {} : { index }) },
    );
  }

  /** Proofs and leaves read from ledger_nodes: a node missing below the head means the table was changed. */
  private async fromStoredNodes<T>(tenantId: string, log: LedgerName, read: Promise<T>): Promise<T> {
    try {
      return await read;
    } catch (err) {
      if (err instanceof LedgerError && err.code === 'merkle_node_missing') throw this.integrityFailure(tenantId, log, undefined, err.message);
      throw err;
    }
  }
}
