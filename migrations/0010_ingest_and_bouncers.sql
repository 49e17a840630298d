-- Batched ingestion (/ingest) and CrowdSec-protocol bouncer pulls.
--
-- A batch row is written in the same transaction that makes the batch durable (embedded queue) or
-- just before the JetStream publish; the consumer fills decision_ids (event order) as it decides.
CREATE TABLE ingest_batches (
  batch_id      text PRIMARY KEY CHECK (batch_id ~ '^ing_[a-z0-9]{24}$'),
  tenant_id     text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  event_count   integer NOT NULL CHECK (event_count BETWEEN 1 AND 1000),
  received_at   timestamptz NOT NULL DEFAULT now(),
  decision_ids  text[] NOT NULL DEFAULT '{}',
  completed_at  timestamptz,
  error         text
);
CREATE INDEX ingest_batches_tenant_idx ON ingest_batches (tenant_id, received_at DESC);
ALTER TABLE ingest_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_batches
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_batches TO frostgate_app;

-- Decisions of one tenant are totally ordered by their ledger index (decisions committed in one
-- group share created_at); "previous decision about this entity" and paging follow that order.
CREATE INDEX decisions_ledger_order_idx ON decisions (tenant_id, ledger_index DESC);
CREATE INDEX decisions_entity_order_idx ON decisions (tenant_id, entity, ledger_index DESC);
DROP INDEX decisions_tenant_idx;
DROP INDEX decisions_entity_idx;

-- Where each bouncer key's /v1/decisions/stream left off: decisions after last_ledger_index are
-- new to it (ledger indexes become visible in order: appends hold the head lock until commit),
-- blocks that ended after last_pull_at are deleted for it.
CREATE TABLE bouncer_pulls (
  key_id            text PRIMARY KEY,
  tenant_id         text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  last_pull_at      timestamptz NOT NULL,
  last_ledger_index bigint NOT NULL
);
ALTER TABLE bouncer_pulls ENABLE ROW LEVEL SECURITY;
ALTER TABLE bouncer_pulls FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bouncer_pulls
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON bouncer_pulls TO frostgate_app;
