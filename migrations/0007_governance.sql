-- Governance: versioned governed objects per tenant (ruleset, doctrine, rate-limit policy), the
-- active version of each, change requests and their approvals. Every operation also writes an
-- entry to the tenant's audit ledger in the same transaction.

CREATE TABLE governed_versions (
  tenant_id  text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  kind       text NOT NULL CHECK (kind IN ('ruleset', 'doctrine', 'ratelimit')),
  version    text NOT NULL,
  content    jsonb NOT NULL,
  change_id  text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind, version)
);

CREATE TABLE governed_active (
  tenant_id        text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  kind             text NOT NULL CHECK (kind IN ('ruleset', 'doctrine', 'ratelimit')),
  version          text NOT NULL,
  change_id        text NOT NULL,
  deployed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE governance_changes (
  id                 text PRIMARY KEY CHECK (id ~ '^chg_[a-z0-9]{20}$'),
  tenant_id          text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  kind               text NOT NULL CHECK (kind IN ('ruleset', 'doctrine', 'ratelimit')),
  version            text NOT NULL,
  content            jsonb NOT NULL,
  justification      text NOT NULL,
  origin             text NOT NULL CHECK (origin IN ('human', 'analyzer')),
  risk               text NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
  risk_reasons       text[] NOT NULL,
  required_approvals integer NOT NULL CHECK (required_approvals >= 1),
  approver_scope     text NOT NULL,
  status             text NOT NULL CHECK (status IN ('proposed', 'approved', 'deployed', 'rejected', 'withdrawn', 'expired', 'rolled_back')),
  author_key         text NOT NULL,
  author_subject     text NOT NULL,
  base_version       text NOT NULL,
  previous_version   text,
  canary             jsonb,
  created_at         timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  deployed_at        timestamptz,
  rolled_back_at     timestamptz,
  rollback_reason    text
);

CREATE TABLE governance_approvals (
  change_id         text NOT NULL REFERENCES governance_changes(id),
  tenant_id         text NOT NULL CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  principal_key     text NOT NULL,
  principal_subject text NOT NULL,
  decision          text NOT NULL CHECK (decision IN ('approve', 'reject')),
  reason            text,
  at                timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (change_id, principal_key),
  UNIQUE (change_id, principal_subject)
);

CREATE INDEX governed_versions_tenant_idx ON governed_versions (tenant_id);
CREATE INDEX governed_active_tenant_idx ON governed_active (tenant_id);
CREATE INDEX governance_changes_tenant_idx ON governance_changes (tenant_id, created_at);
CREATE INDEX governance_approvals_tenant_idx ON governance_approvals (tenant_id);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['governed_versions', 'governed_active', 'governance_changes', 'governance_approvals'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
      USING (tenant_id = current_setting('app.tenant_id', true))
      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
  END LOOP;
END $$;

GRANT SELECT, INSERT ON governed_versions, governance_approvals TO frostgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON governed_active TO frostgate_app;
GRANT SELECT, INSERT, UPDATE ON governance_changes TO frostgate_app;
