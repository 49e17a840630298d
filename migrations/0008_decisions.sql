-- Decision records: every decision of /defend and /ingest, with its event (for canary replays),
-- its diff against the previous decision about the same entity, and its ledger index. The
-- decision row and its ledger entry commit in one transaction.
CREATE TABLE decisions (
  decision_id      text PRIMARY KEY CHECK (decision_id ~ '^dec_[a-z0-9]{24}$'),
  tenant_id        text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  event_id         text,
  event_digest     text NOT NULL,
  event            jsonb NOT NULL,
  entity           text NOT NULL,
  threat_level     text NOT NULL CHECK (threat_level IN ('none', 'low', 'medium', 'high', 'critical')),
  score            integer NOT NULL,
  rules_triggered  text[] NOT NULL,
  mitigations      jsonb NOT NULL,
  explanation      text NOT NULL,
  ruleset_version  text NOT NULL,
  doctrine_version text NOT NULL,
  decision_diff    jsonb,
  ledger_index     bigint NOT NULL,
  path             text NOT NULL CHECK (path IN ('defend', 'ingest')),
  occurred_at      timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  block_until      timestamptz,
  -- seed P1 #10: high and critical decisions must carry their diff
  CHECK (threat_level NOT IN ('high', 'critical') OR decision_diff IS NOT NULL)
);
CREATE UNIQUE INDEX decisions_event_id_idx ON decisions (tenant_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX decisions_tenant_idx ON decisions (tenant_id, created_at DESC, decision_id DESC);
CREATE INDEX decisions_entity_idx ON decisions (tenant_id, entity, created_at DESC);
CREATE INDEX decisions_level_idx ON decisions (tenant_id, threat_level);
CREATE INDEX decisions_block_idx ON decisions (tenant_id, block_until) WHERE block_until IS NOT NULL;
ALTER TABLE decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE decisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON decisions
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON decisions TO frostgate_app;
