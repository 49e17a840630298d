import type { ColumnType, Generated } from 'kysely';

/** Timestamps are written as Date or ISO strings and read back as Date. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** A timestamp the database fills in (DEFAULT now()). */
type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Bytes = ColumnType<Uint8Array, Uint8Array, Uint8Array>;

export interface TenantsTable {
  id: string;
  name: Generated<string>;
  created_at: GeneratedTimestamp;
  disabled_at: Timestamp | null;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  digest: Bytes;
  name: Generated<string>;
  scopes: string[];
  created_at: GeneratedTimestamp;
  expires_at: Timestamp | null;
  revoked_at: Timestamp | null;
  last_used_at: Timestamp | null;
  created_by: string | null;
  /** The minting principal's identity: the minting key's owner, or 'operator' (0016). */
  created_by_identity: ColumnType<string | null, string | null | undefined, string | null>;
  /** Who the key acts for (a person or system); approvals compare owners. */
  owner: ColumnType<string, string | undefined, string>;
}

export interface PlatformStateTable {
  key: string;
  value: ColumnType<unknown, string, string>;
  updated_at: GeneratedTimestamp;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  checksum: string;
  applied_at: GeneratedTimestamp;
}

export type LedgerName = 'decisions' | 'audit';

export interface LedgerHeadsTable {
  tenant_id: string;
  log: LedgerName;
  size: number;
  updated_at: GeneratedTimestamp;
}

export interface LedgerEntriesTable {
  tenant_id: string;
  log: LedgerName;
  idx: number;
  record_json: string;
  created_at: GeneratedTimestamp;
}

export interface LedgerNodesTable {
  tenant_id: string;
  log: LedgerName;
  level: number;
  idx: number;
  hash: Bytes;
}

export interface LedgerCheckpointsTable {
  tenant_id: string;
  log: LedgerName;
  tree_size: number;
  root_hash: Bytes;
  note: string;
  key_id: string;
  created_at: GeneratedTimestamp;
}

export interface LedgerSigningKeysTable {
  key_id: string;
  vkey: string;
  first_used_at: GeneratedTimestamp;
  retired_at: Timestamp | null;
}

export type ScenarioStateName = 'pending' | 'provisioning' | 'running' | 'grading' | 'scored' | 'destroyed' | 'failed' | 'expired';

export interface ScenariosTable {
  scenario_id: string;
  tenant_id: string;
  template_id: string;
  template_version: string;
  track: string;
  subject: string;
  state: ColumnType<ScenarioStateName, ScenarioStateName | undefined, ScenarioStateName>;
  expires_at: Timestamp;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
  error: string | null;
  devices: ColumnType<unknown, string | undefined, string>;
  runtime_ref: string | null;
  /** The attempt the lab is on: a reset of a graded scenario starts the next (migrations/0030). */
  attempt: ColumnType<number, number | undefined, number>;
}

export type GovernedKind = 'ruleset' | 'doctrine' | 'ratelimit';
export type ChangeStatus = 'proposed' | 'approved' | 'deployed' | 'rejected' | 'withdrawn' | 'expired' | 'rolled_back';
type Json = ColumnType<unknown, string, string>;

export interface GovernedVersionsTable {
  tenant_id: string;
  kind: GovernedKind;
  version: string;
  content: Json;
  change_id: string;
  created_at: GeneratedTimestamp;
}

export interface GovernedActiveTable {
  tenant_id: string;
  kind: GovernedKind;
  version: string;
  change_id: string;
  deployed_at: GeneratedTimestamp;
}

export interface GovernanceChangesTable {
  id: string;
  tenant_id: string;
  kind: GovernedKind;
  version: string;
  content: Json;
  justification: string;
  origin: 'human' | 'analyzer';
  risk: 'low' | 'medium' | 'high';
  risk_reasons: string[];
  required_approvals: number;
  approver_scope: string;
  status: ChangeStatus;
  author_key: string;
  author_subject: string;
  base_version: string;
  previous_version: string | null;
  canary: ColumnType<unknown, string | null, string | null>;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
  deployed_at: Timestamp | null;
  rolled_back_at: Timestamp | null;
  rollback_reason: string | null;
}

export interface GovernanceApprovalsTable {
  change_id: string;
  tenant_id: string;
  principal_key: string;
  principal_subject: string;
  decision: 'approve' | 'reject';
  reason: string | null;
  at: GeneratedTimestamp;
}

export interface DecisionsTable {
  decision_id: string;
  tenant_id: string;
  event_id: string | null;
  event_digest: string;
  event: Json;
  entity: string;
  threat_level: 'none' | 'low' | 'medium' | 'high' | 'critical';
  score: number;
  rules_triggered: string[];
  mitigations: Json;
  explanation: string;
  ruleset_version: string;
  doctrine_version: string;
  decision_diff: ColumnType<unknown, string | null, string | null>;
  ledger_index: number;
  path: 'defend' | 'ingest';
  occurred_at: Timestamp;
  created_at: GeneratedTimestamp;
  block_until: Timestamp | null;
}

export interface IngestBatchesTable {
  batch_id: string;
  tenant_id: string;
  event_count: number;
  received_at: GeneratedTimestamp;
  decision_ids: ColumnType<string[], string[] | undefined, string[]>;
  completed_at: Timestamp | null;
  error: string | null;
  /** False while the batch's message is not yet taken by a queue outside the database (migration 0017). */
  queued: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface BouncerPullsTable {
  key_id: string;
  tenant_id: string;
  last_pull_at: Timestamp;
  last_ledger_index: ColumnType<number, number, number>;
}

/** A console sign-in (0025): the cookie secret's digest, the IdP subject, the mapped tenant and scopes. */
export interface ConsoleSessionsTable {
  id: string;
  tenant_id: string;
  digest: Bytes;
  subject: string;
  name: Generated<string>;
  email: Generated<string>;
  scopes: string[];
  created_at: Timestamp;
  last_seen_at: Timestamp;
  expires_at: Timestamp;
  revoked_at: Timestamp | null;
  revoked_by: string | null;
  user_agent: Generated<string>;
  ip: Generated<string>;
}

/** An early removal of an IP's blocks (0040): append-only, with its audit entry. */
export interface DecisionBlockRemovalsTable {
  tenant_id: string;
  entity: string;
  through_ledger_index: ColumnType<number, number, never>;
  lifted_ledger_index: ColumnType<number, number, never>;
  rules_triggered: string[];
  blocked_until: Timestamp;
  removed_at: Timestamp;
  removed_by: string;
  reason: string;
  audit_index: ColumnType<number, number, never>;
}

/** Every table the application queries, for Kysely's type checking. */
export interface DB {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  platform_state: PlatformStateTable;
  schema_migrations: SchemaMigrationsTable;
  ledger_heads: LedgerHeadsTable;
  ledger_entries: LedgerEntriesTable;
  ledger_nodes: LedgerNodesTable;
  ledger_checkpoints: LedgerCheckpointsTable;
  ledger_signing_keys: LedgerSigningKeysTable;
  scenarios: ScenariosTable;
  governed_versions: GovernedVersionsTable;
  governed_active: GovernedActiveTable;
  governance_changes: GovernanceChangesTable;
  governance_approvals: GovernanceApprovalsTable;
  decisions: DecisionsTable;
  ingest_batches: IngestBatchesTable;
  bouncer_pulls: BouncerPullsTable;
  console_sessions: ConsoleSessionsTable;
  decision_block_removals: DecisionBlockRemovalsTable;
}
