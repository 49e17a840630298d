-- Early removal of a block: an operator lifts an IP's block before it ends (issue 25). Decisions
-- are never updated (each is a ledger record), so a removal is a row of its own, with its entry in
-- the tenant's audit log: it ends every block of the entity decided up to through_ledger_index, and
-- a later decision blocks the IP again. Bouncers see the lifted IP in their stream's `deleted`.
CREATE TABLE decision_block_removals (
  tenant_id            text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  entity               text NOT NULL CHECK (entity LIKE 'ip:%'),
  -- The blocks lifted: the entity's decisions up to this ledger index; the one ending last is
  -- lifted_ledger_index (its id and rules are what bouncers are told was deleted).
  through_ledger_index bigint NOT NULL,
  lifted_ledger_index  bigint NOT NULL,
  rules_triggered      text[] NOT NULL,
  -- When the lifted block would have ended: past it the removal changes nothing, and is not read.
  blocked_until        timestamptz NOT NULL,
  removed_at           timestamptz NOT NULL,
  removed_by           text NOT NULL,
  reason               text NOT NULL CHECK (reason <> ''),
  audit_index          bigint NOT NULL,
  PRIMARY KEY (tenant_id, entity, through_ledger_index)
);
CREATE INDEX decision_block_removals_until_idx ON decision_block_removals (tenant_id, blocked_until);
ALTER TABLE decision_block_removals ENABLE ROW LEVEL SECURITY;
ALTER TABLE decision_block_removals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON decision_block_removals
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- Append-only, like the decisions it ends: no UPDATE or DELETE for the application.
GRANT SELECT, INSERT ON decision_block_removals TO frostgate_app;
