import type { Tx } from '../../platform/db/database.js';
import type { ChangeStatus, GovernedKind } from '../../platform/db/schema.js';
import type { CanaryResult } from './canary.js';
import { approvalsOf, loadChange, type ChangeRow } from './store.js';

export interface ChangeView {
  readonly id: string;
  readonly kind: GovernedKind;
  readonly version: string;
  readonly status: ChangeStatus;
  readonly origin: 'human' | 'analyzer';
  readonly risk: 'low' | 'medium' | 'high';
  readonly risk_reasons: string[];
  readonly required_approvals: number;
  readonly approver_scope: string;
  readonly approvals: Array<{ principal: string; subject: string; decision: 'approve' | 'reject'; reason: string | null; at: string }>;
  readonly justification: string;
  readonly author: string;
  readonly base_version: string;
  readonly previous_version: string | null;
  readonly canary: CanaryResult | null;
  readonly content: unknown;
  readonly created_at: string;
  readonly expires_at: string;
  readonly deployed_at: string | null;
  readonly rolled_back_at: string | null;
  readonly rollback_reason: string | null;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

/** A change as the API shows it, with its approvals. */
export async function changeView(tx: Tx, row: ChangeRow): Promise<ChangeView> {
  const approvals = await approvalsOf(tx, row.id);
  return {
    id: row.id,
    kind: row.kind,
    version: row.version,
    status: row.status,
    origin: row.origin,
    risk: row.risk,
    risk_reasons: row.risk_reasons,
    required_approvals: row.required_approvals,
    approver_scope: row.approver_scope,
    approvals: approvals.map((a) => ({ principal: a.principal_key, subject: a.principal_subject, decision: a.decision, reason: a.reason, at: iso(a.at)! })),
    justification: row.justification,
    author: row.author_key,
    base_version: row.base_version,
    previous_version: row.previous_version,
    canary: (row.canary as CanaryResult | null) ?? null,
    content: row.content,
    created_at: iso(row.created_at)!,
    expires_at: iso(row.expires_at)!,
    deployed_at: iso(row.deployed_at),
    rolled_back_at: iso(row.rolled_back_at),
    rollback_reason: row.rollback_reason,
  };
}

/** The change `id` as the API shows it, read afresh in `tx`. */
export async function reloadView(tx: Tx, tenantId: string, id: string): Promise<ChangeView> {
  return changeView(tx, await loadChange(tx, tenantId, id));
}
