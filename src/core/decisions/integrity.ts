import { createHash } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import { canonicalize } from '../../platform/crypto/canonical-json.js';
import type { Database } from '../../platform/db/database.js';
import type { DecisionsTable } from '../../platform/db/schema.js';

/**
 * Is a decisions row still what was appended to the ledger? Each row is stored with its ledger
 * record (the same transaction, DecisionService.plan), so every column the record carries must
 * equal it, and the event must hash to the record's event_digest. The ledger itself is checked
 * against signed checkpoints by `frostgate verify`; this catches the cheaper tampering of
 * editing a row the API serves (score, threat_level, ...) while the ledger stays intact.
 */
export type DecisionIntegrity =
  | { readonly status: 'match' }
  /** Columns that differ from the ledger record (`event`: the event no longer hashes to event_digest). */
  | { readonly status: 'mismatch'; readonly fields: string[] }
  /** No readable ledger entry at the row's ledger_index. */
  | { readonly status: 'missing'; readonly detail: string };

export type DecisionRow = Selectable<DecisionsTable>;

const iso = (t: Date | string) => new Date(t).toISOString();

/** The ledger record a row was appended as, rebuilt from its columns (the shape DecisionService.plan writes). */
export function ledgerRecordOf(row: DecisionRow): Record<string, unknown> {
  return {
    type: 'decision',
    decision_id: row.decision_id,
    tenant_id: row.tenant_id,
    event_id: row.event_id,
    event_digest: row.event_digest,
    entity: row.entity,
    threat_level: row.threat_level,
    score: row.score,
    rules_triggered: row.rules_triggered,
    mitigations: row.mitigations,
    explanation: row.explanation,
    decision_diff: row.decision_diff ?? null,
    ruleset_version: row.ruleset_version,
    doctrine_version: row.doctrine_version,
    occurred_at: iso(row.occurred_at),
    block_until: row.block_until === null ? null : iso(row.block_until),
    path: row.path,
  };
}

/** Compares a row with the record_json of the ledger entry at its ledger_index (null: none). */
export function decisionIntegrity(row: DecisionRow, recordJson: string | null | undefined): DecisionIntegrity {
  if (recordJson === null || recordJson === undefined) return { status: 'missing', detail: `no ledger entry at index ${Number(row.ledger_index)}` };
  const rebuilt = ledgerRecordOf(row);
  const eventDigest = createHash('sha256').update(canonicalize(row.event)).digest('hex');
  // The common case costs one canonical serialisation and a string compare.
  if (canonicalize(rebuilt) === recordJson && eventDigest === row.event_digest) return { status: 'match' };
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(recordJson);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    record = parsed as Record<string, unknown>;
  } catch {
    return { status: 'missing', detail: `the ledger entry at index ${Number(row.ledger_index)} is not a JSON record` };
  }
  const fields = new Set<string>();
  for (const key of new Set([...Object.keys(rebuilt), ...Object.keys(record)])) {
    const have = Object.hasOwn(rebuilt, key) ? canonicalize(rebuilt[key]) : undefined;
    const want = Object.hasOwn(record, key) ? canonicalize(record[key]) : undefined;
    if (have !== want) fields.add(key === 'type' ? 'ledger_index' : key);
  }
  if (eventDigest !== record.event_digest) fields.add('event');
  // A row pointing at another decision's entry differs in everything: say where it points.
  if (fields.has('decision_id')) fields.add('ledger_index');
  return fields.size === 0 ? { status: 'match' } : { status: 'mismatch', fields: [...fields].sort() };
}

export interface RowProblem {
  readonly decision_id: string;
  readonly ledger_index: number;
  readonly integrity: Exclude<DecisionIntegrity, { status: 'match' }>;
}

export interface DecisionRowsVerification {
  readonly ok: boolean;
  readonly rowsChecked: number;
  /** Rows that differ from their ledger record, or point at no entry (the first 1,000). */
  readonly mismatched: readonly RowProblem[];
  readonly mismatchedCount: number;
  /** Ledger entries recording a decision that has no row pointing at them: a deleted row (the first 1,000). */
  readonly unrowed: ReadonlyArray<{ readonly index: number; readonly decision_id: string }>;
  readonly unrowedCount: number;
}

const PAGE = 5000;
/** Reported individually up to this many; the counts stay exact. */
const MAX_LISTED = 1000;

/**
 * Checks every decisions row of a tenant against the ledger entry it names, and every decision
 * recorded in the ledger for a row. Rows are paged by (ledger_index, decision_id), so a row whose
 * ledger_index was moved outside the log, or two rows naming one entry, are still visited.
 */
export async function verifyDecisionRows(db: Database, tenantId: string, onProgress?: (done: number) => void): Promise<DecisionRowsVerification> {
  const mismatched: RowProblem[] = [];
  let mismatchCount = 0;
  let rowsChecked = 0;
  let after: { index: number; id: string } | undefined;
  for (;;) {
    const page = await db.withTenant(tenantId, async (tx) => {
      let q = tx
        .selectFrom('decisions as d')
        .leftJoin('ledger_entries as e', (j) => j.onRef('e.tenant_id', '=', 'd.tenant_id').on('e.log', '=', 'decisions').onRef('e.idx', '=', 'd.ledger_index'))
        .selectAll('d')
        .select('e.record_json')
        .where('d.tenant_id', '=', tenantId);
      if (after) q = q.where(sql<boolean>`(d.ledger_index, d.decision_id) > (${after.index}, ${after.id})`);
      return q.orderBy('d.ledger_index').orderBy('d.decision_id').limit(PAGE).execute();
    });
    for (const { record_json: recordJson, ...row } of page) {
      const integrity = decisionIntegrity(row, recordJson);
      if (integrity.status !== 'match') {
        mismatchCount++;
        if (mismatched.length < MAX_LISTED) mismatched.push({ decision_id: row.decision_id, ledger_index: Number(row.ledger_index), integrity });
      }
    }
    rowsChecked += page.length;
    onProgress?.(rowsChecked);
    if (page.length < PAGE) break;
    const last = page[page.length - 1]!;
    after = { index: Number(last.ledger_index), id: last.decision_id };
  }
  const orphans = await db.withTenant(tenantId, (tx) =>
    tx
      .selectFrom('ledger_entries as e')
      .select(['e.idx', 'e.record_json'])
      .where('e.tenant_id', '=', tenantId)
      .where('e.log', '=', 'decisions')
      .where((eb) =>
        eb.not(
          eb.exists(
            eb.selectFrom('decisions as d').select('d.decision_id').whereRef('d.tenant_id', '=', 'e.tenant_id').whereRef('d.ledger_index', '=', 'e.idx'),
          ),
        ),
      )
      .orderBy('e.idx')
      .execute(),
  );
  const unrowed: Array<{ index: number; decision_id: string }> = [];
  for (const o of orphans) {
    let record: { type?: unknown; decision_id?: unknown } | undefined;
    try {
      record = JSON.parse(o.record_json) as typeof record;
    } catch {
      continue; // an unreadable entry is the log verification's finding
    }
    if (record?.type === 'decision' && typeof record.decision_id === 'string') unrowed.push({ index: Number(o.idx), decision_id: record.decision_id });
  }
  return {
    ok: mismatchCount === 0 && unrowed.length === 0,
    rowsChecked,
    mismatched,
    mismatchedCount: mismatchCount,
    unrowed: unrowed.slice(0, MAX_LISTED),
    unrowedCount: unrowed.length,
  };
}
